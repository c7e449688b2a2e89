"""Tiny seeded encoder-decoder checkpoints for the summarization, translation and text2text tests.

Four shapes of seq2seq model that the pipelines treat differently, each written like a real
checkpoint (config.json, safetensors, tokenizer files) and loaded back through
``from_pretrained``:

- ``tiny_bart``: a BART summarizer (byte-level BPE), with ``task_specific_params`` for
  summarization like distilbart-cnn's;
- ``tiny_t5``: a T5 (Unigram vocabulary) with t5-base's task prefixes
  (``"summarize: "``, ``"translate English to French: "``);
- ``tiny_multilingual``: an NLLB-style M2M100 whose tokenizer knows three language codes and
  marks the source language itself; the target language is forced as the first decoded token;
- ``tiny_m2m100``: an M2M100 with M2M100's own tokenizer, a sentencepiece one with no character
  offsets (as Marian's), and M2M100's 100 two-letter language codes.

No vocabulary of these models is available offline, so the tokenizers are trained here on the
deterministic corpus of ``mmenc_gpt._tiny``. Every limit is small (64 tokens) so that the
tests can exercise the splitting of long inputs cheaply.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmenc_gpt._tiny import bpe_parts, training_corpus

from mmenc.tiny import materialize, save_seeded
from mmenc_text._tiny_tokens import bpe_tokenizer

VERSION = 5
MAX_TOKENS = 64
VOCAB_SIZE = 1000
LANGUAGES = ("eng_Latn", "fra_Latn", "deu_Latn")
_PREFIX_WORDS = "Translate translate English French German to summarize: summary."

# Small values with the shape of the real ones (distilbart-cnn's, t5-base's), so that the
# defaults a model carries for a task are exercised, and fast.
SUMMARIZATION_PARAMS = {
    "early_stopping": True,
    "length_penalty": 2.0,
    "max_length": 12,
    "min_length": 4,
    "no_repeat_ngram_size": 3,
    "num_beams": 2,
}
T5_TASK_PARAMS = {
    "summarization": {**SUMMARIZATION_PARAMS, "prefix": "summarize: "},
    "translation_en_to_de": {
        "early_stopping": True,
        "max_length": 12,
        "num_beams": 2,
        "prefix": "translate English to German: ",
    },
    "translation_en_to_fr": {
        "early_stopping": True,
        "max_length": 12,
        "num_beams": 2,
        "prefix": "translate English to French: ",
    },
}
# A wider initialisation than the default 0.02 makes the untrained models' outputs differ from
# one input to the next, so that a mixed-up batch would show in the tests.
_SMALL: dict[str, Any] = {
    "init_std": 0.5,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}


def tiny_bart() -> Path:
    return materialize(f"tiny-seq2seq-bart-v{VERSION}", _build_bart)


def tiny_t5() -> Path:
    return materialize(f"tiny-seq2seq-t5-v{VERSION}", _build_t5)


def tiny_multilingual() -> Path:
    return materialize(f"tiny-seq2seq-multilingual-v{VERSION}", _build_multilingual)


def tiny_m2m100() -> Path:
    return materialize(f"tiny-seq2seq-m2m100-v{VERSION}", _build_m2m100)


def _corpus() -> Iterator[str]:
    yield from training_corpus()
    yield from [_PREFIX_WORDS] * 20  # so that the task prefixes are words, not characters


def _build_bart(folder: Path) -> None:
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = bpe_tokenizer(model_max_length=MAX_TOKENS)
    # task_specific_params: undeclared by v5's typed config signatures, saved all the same
    config = BartConfig(  # type: ignore[call-arg]
        vocab_size=len(tokenizer),
        d_model=32,
        max_position_embeddings=MAX_TOKENS,
        **_SMALL,
        task_specific_params={"summarization": SUMMARIZATION_PARAMS},
        **special_ids(tokenizer, decoder_start="</s>"),
    )
    save_seeded(BartForConditionalGeneration, config, tokenizer, folder)


def _build_t5(folder: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    # T5's layout: <pad> 0, </s> 1, <unk> 2, then the pieces with their unigram scores
    model = _sentencepiece("unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    pieces = _processor(model)
    vocab = [(pieces.id_to_piece(i), pieces.get_score(i)) for i in range(pieces.get_piece_size())]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=MAX_TOKENS)
    config = T5Config(  # type: ignore[call-arg]  # task_specific_params, as above
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        task_specific_params=T5_TASK_PARAMS,
        **special_ids(tokenizer, decoder_start="<pad>"),
    )
    save_seeded(T5ForConditionalGeneration, config, tokenizer, folder)


def _build_multilingual(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    vocab, merges = bpe_parts(bpe)
    tokenizer = NllbTokenizer(
        vocab=vocab,
        merges=merges,
        extra_special_tokens=list(LANGUAGES),
        src_lang=LANGUAGES[0],
        model_max_length=MAX_TOKENS,
    )
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=32,
        max_position_embeddings=MAX_TOKENS,
        **_SMALL,
        **special_ids(tokenizer, decoder_start="</s>"),
    )
    save_seeded(M2M100ForConditionalGeneration, config, tokenizer, folder)


def _build_m2m100(folder: Path) -> None:
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    model = _sentencepiece("bpe", unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)
    pieces = _processor(model)
    words = [pieces.id_to_piece(i) for i in range(1, pieces.get_piece_size())]  # 0 is <unk>
    # fairseq's order: the four special tokens first, then the sentencepiece pieces
    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>", *words])}
    with tempfile.TemporaryDirectory() as files:
        (Path(files) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(files) / "spm.model").write_bytes(model)
        tokenizer = M2M100Tokenizer(
            vocab_file=str(Path(files) / "vocab.json"),
            spm_file=str(Path(files) / "spm.model"),
            src_lang="en",
            model_max_length=MAX_TOKENS,
            # listed as in real checkpoints' tokenizer_config.json: v5 marks the language
            # tokens special (skipped in decoding) only when they are passed in
            additional_special_tokens=[f"__{c}__" for c in FAIRSEQ_LANGUAGE_CODES["m2m100"]],
        )
    # the language codes and "madeup words" take the ids after the vocabulary
    size = len(vocab) + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=size,
        d_model=32,
        max_position_embeddings=MAX_TOKENS,
        **_SMALL,
        **special_ids(tokenizer, decoder_start="</s>"),
    )
    save_seeded(M2M100ForConditionalGeneration, config, tokenizer, folder)


def _sentencepiece(model_type: str, **piece_ids: Any) -> bytes:
    """A sentencepiece model trained on the corpus, single-threaded so that every machine gets
    the same pieces and scores (the ``tokenizers`` unigram trainer's scores vary in the last
    digits from run to run)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=_corpus(),
        model_writer=model,
        vocab_size=VOCAB_SIZE // 2,
        model_type=model_type,
        num_threads=1,
        minloglevel=2,
        **piece_ids,
    )
    return model.getvalue()


def _processor(model: bytes) -> Any:
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_proto=model)


def special_ids(tokenizer: Any, decoder_start: str) -> dict[str, Any]:
    """The special token ids of an encoder-decoder config; decoding starts at ``decoder_start``."""
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "decoder_start_token_id": tokenizer.convert_tokens_to_ids(decoder_start),
    }
