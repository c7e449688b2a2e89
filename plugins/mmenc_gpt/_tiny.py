"""tiny-gpt2: a 2-layer GPT-2 with seeded weights and a byte-level BPE trained here, offline.

GPT-2's own vocabulary is not available offline, so the tokenizer is trained by the project on
a corpus generated in code from a fixed seed; training is deterministic, so every machine builds
the same vocabulary. The folder is written like a real checkpoint (config.json, safetensors,
tokenizer.json) and loaded back through the same ``from_pretrained`` path.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmenc.tiny import materialize, save_seeded

if TYPE_CHECKING:
    from tokenizers import Tokenizer

VERSION = 1
VOCAB_SIZE = 1000
END_OF_TEXT = "<|endoftext|>"
MAX_POSITIONS = 128

_ENGLISH = [
    "a", "an", "the", "of", "on", "in", "at", "to", "and", "or", "with", "from", "by", "for",
    "photo", "picture", "cat", "dog", "bird", "car", "house", "tree", "river", "city", "field",
    "sun", "night", "morning", "green", "red", "blue", "small", "big", "old", "new", "runs",
    "sleeps", "jumps", "over", "under", "across", "sentence", "text", "model", "encoder",
    "language", "image", "about", "much", "longer", "zebra",
]  # fmt: skip
_SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ch", "qu"]


def tiny_gpt2() -> Path:
    return materialize(f"tiny-gpt2-v{VERSION}", _build)


def training_corpus(n_lines: int = 4000, seed: int = 0) -> Iterator[str]:
    """Deterministic sentences: English words and seeded pseudo-words, digits and punctuation."""
    rng = random.Random(seed)
    invented = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(1500)]
    words = _ENGLISH * 10 + invented
    for _ in range(n_lines):
        sentence = " ".join(rng.choices(words, k=rng.randint(3, 14)))
        yield sentence.capitalize() + rng.choice([".", "!", "?", ", 42.", " in 2024."])


def train_tokenizer(
    vocab_size: int = VOCAB_SIZE,
    corpus: Iterable[str] | None = None,
    special_tokens: Sequence[str] = (END_OF_TEXT,),
) -> Tokenizer:
    """A GPT-2 style byte-level BPE (no prefix space, all 256 bytes in the alphabet), trained on
    ``corpus`` (``training_corpus()`` by default), its special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus() if corpus is None else corpus, trainer=trainer)
    return tokenizer


def bpe_parts(tokenizer: Tokenizer) -> tuple[dict[str, int], list[Any]]:
    """A trained BPE's vocabulary and merges, as transformers' BPE tokenizer classes take them:
    the merges as pairs (which they accept, though their ``merges`` is typed as strings)."""
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(pair) for pair in model["merges"]]


def _build(folder: Path) -> None:
    # transformers v5: GPT2Tokenizer is the fast (tokenizers-backed) class; GPT2TokenizerFast
    # is an alias of it.
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    vocab, merges = bpe_parts(train_tokenizer())
    tokenizer = GPT2Tokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        model_max_length=MAX_POSITIONS,
    )
    end = vocab[END_OF_TEXT]
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=MAX_POSITIONS,
        bos_token_id=end,
        eos_token_id=end,
    )
    save_seeded(GPT2LMHeadModel, config, tokenizer, folder)
