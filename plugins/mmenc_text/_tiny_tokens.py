"""Tiny seeded checkpoints for the token-level text tasks: two masked LMs and a CoNLL tagger,
and the byte-level BPE tokenizer that every tiny RoBERTa / BART text checkpoint uses.

Random weights with real tokenizers: bert-base-uncased's WordPiece vocabulary (shipped inside
the MiniLM package) and a byte-level BPE trained offline by ``mmenc_gpt``'s trainer, with
RoBERTa's special tokens. Each is written as a complete model folder and loaded back with
``from_pretrained``, so tests go through the same path as real checkpoints (the default
fill-mask model, distilroberta-base, is a RoBERTa; the default NER model is a BERT).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmenc_bert._tiny import wordpiece_tokenizer
from mmenc_gpt._tiny import bpe_parts, train_tokenizer

from mmenc.tiny import materialize, save_seeded, seeded

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

VERSION = 3
MAX_TOKENS = 128
CONLL_LABELS = ("O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
"""The labels of dbmdz/bert-large-cased-finetuned-conll03-english, in its order."""
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_SMALL: dict[str, Any] = {"num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_masked_lm() -> Path:
    """A 2-layer BertForMaskedLM with the bert-base-uncased WordPiece vocabulary."""
    return materialize(f"tiny-bert-mlm-v{VERSION}", _build_bert_mlm)


def tiny_roberta_masked_lm() -> Path:
    """A 2-layer RobertaForMaskedLM with a byte-level BPE and a ``<mask>`` token."""
    return materialize(f"tiny-roberta-mlm-v{VERSION}", _build_roberta_mlm)


def tiny_ner() -> Path:
    """A 2-layer BertForTokenClassification with the CoNLL-2003 B-/I- labels."""
    return materialize(f"tiny-bert-ner-v{VERSION}", _build_ner)


def bpe_tokenizer(
    corpus: Iterable[str] | None = None,
    vocab_size: int = 1000,
    model_max_length: int = MAX_TOKENS,
) -> PreTrainedTokenizerBase:
    """A RoBERTa / BART tokenizer (byte-level BPE, ``<s> a </s></s> b </s>`` pairs) trained on
    ``corpus`` (``mmenc_gpt``'s by default), ``<s> <pad> </s> <unk> <mask>`` at ids 0-4, and a
    ``<mask>`` that swallows the space before it, as in roberta-base."""
    from transformers import AddedToken, RobertaTokenizer

    vocab, merges = bpe_parts(train_tokenizer(vocab_size, corpus, ROBERTA_SPECIALS))
    return RobertaTokenizer(
        vocab=vocab,
        merges=merges,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),  # type: ignore[arg-type]
        model_max_length=model_max_length,
    )


def _build_bert_mlm(folder: Path) -> None:
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, max_position_embeddings=MAX_TOKENS, **_SMALL
    )
    save_seeded(BertForMaskedLM, config, tokenizer, folder)


def _build_roberta_mlm(folder: Path) -> None:
    from transformers import RobertaConfig, RobertaForMaskedLM

    tokenizer = bpe_tokenizer()
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        max_position_embeddings=MAX_TOKENS + 2,  # RoBERTa's positions start after the pad id
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **_SMALL,
    )
    save_seeded(RobertaForMaskedLM, config, tokenizer, folder)


def _build_ner(folder: Path) -> None:
    from transformers import BertConfig, BertForTokenClassification

    tokenizer = wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        max_position_embeddings=MAX_TOKENS,
        id2label=dict(enumerate(CONLL_LABELS)),
        label2id={label: i for i, label in enumerate(CONLL_LABELS)},
        **_SMALL,
    )
    with seeded(0):
        model = BertForTokenClassification(config)
    _calibrate(model, tokenizer)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _calibrate(model: Any, tokenizer: PreTrainedTokenizerBase) -> None:
    """Make the random tagger behave like a trained one: confident, every label in use, "O" the
    commonest. A random encoder gives every token a large shared component, which alone would
    pick one label everywhere; the classifier is centred on it and scaled up."""
    import torch

    batch = tokenizer(
        "the quick brown fox jumps over the lazy dog near paris in 2024 .", return_tensors="pt"
    )
    with torch.no_grad():
        shared = model.eval().bert(**batch).last_hidden_state[0].mean(0)
        model.classifier.weight.mul_(30.0)
        model.classifier.bias.copy_(-model.classifier.weight @ shared)
        model.classifier.bias[CONLL_LABELS.index("O")] += 1.0
