"""Tiny seeded sequence classifiers for the text-classification and zero-shot tests.

Each is written like a real checkpoint (config.json, safetensors, tokenizer files) and loaded
back through ``from_pretrained``:

- ``tiny_sentiment``: a DistilBERT with NEGATIVE / POSITIVE labels, like the sst-2 default;
- ``tiny_multi_label``: a BERT whose ``problem_type`` is ``multi_label_classification``;
- ``tiny_nli``: a BART with bart-large-mnli's labels (contradiction, neutral, entailment) and a
  byte-level BPE;
- ``tiny_nli_bert``: a BERT NLI model with entailment first (id 0) and token type ids.

The WordPiece models use the bert-base-uncased vocabulary shipped with all-MiniLM-L6-v2; the
byte-level BPE is trained deterministically (``_tiny_tokens.bpe_tokenizer``), as no BART
vocabulary is available offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmenc_bert._tiny import wordpiece_tokenizer

from mmenc.tiny import materialize, save_seeded
from mmenc_text._tiny_seq2seq import special_ids
from mmenc_text._tiny_tokens import bpe_tokenizer

VERSION = 2
MAX_TOKENS = 128
SENTIMENT_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
MULTI_LABELS = {0: "joy", 1: "anger", 2: "fear", 3: "surprise"}
MNLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
# Weights ten times wider than the default 0.02, so that scores differ clearly between texts and
# labels (near-ties would make the order of labels depend on float noise).
INIT_STD = 0.2
_BERT_SIZE: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": MAX_TOKENS,
    "initializer_range": INIT_STD,
}


def tiny_sentiment() -> Path:
    return materialize(f"tiny-classify-sentiment-v{VERSION}", _build_sentiment)


def tiny_multi_label() -> Path:
    return materialize(f"tiny-classify-multi-label-v{VERSION}", _build_multi_label)


def tiny_nli() -> Path:
    return materialize(f"tiny-classify-nli-bart-v{VERSION}", _build_nli)


def tiny_nli_bert() -> Path:
    return materialize(f"tiny-classify-nli-bert-v{VERSION}", _build_nli_bert)


def _build_sentiment(folder: Path) -> None:
    from transformers import DistilBertConfig, DistilBertTokenizer
    from transformers import DistilBertForSequenceClassification as Model

    tokenizer = wordpiece_tokenizer(DistilBertTokenizer)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=MAX_TOKENS,
        initializer_range=INIT_STD,
        **_labels(SENTIMENT_LABELS),
    )
    save_seeded(Model, config, tokenizer, folder)


def _build_multi_label(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        **_labels(MULTI_LABELS),
        problem_type="multi_label_classification",
        **_BERT_SIZE,
    )
    save_seeded(BertForSequenceClassification, config, tokenizer, folder)


def _build_nli(folder: Path) -> None:
    from transformers import BartConfig, BartForSequenceClassification

    tokenizer = bpe_tokenizer(model_max_length=MAX_TOKENS)
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=MAX_TOKENS,
        init_std=INIT_STD,
        **special_ids(tokenizer, decoder_start="</s>"),
        **_labels(MNLI_LABELS),
    )
    save_seeded(BartForSequenceClassification, config, tokenizer, folder)


def _build_nli_bert(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = wordpiece_tokenizer()
    labels = {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}
    config = BertConfig(vocab_size=tokenizer.vocab_size, **_labels(labels), **_BERT_SIZE)
    save_seeded(BertForSequenceClassification, config, tokenizer, folder)


def _labels(id2label: dict[int, str]) -> dict[str, Any]:
    """Both label maps, as real checkpoints carry them (transformers' zero-shot reads label2id)."""
    return {"id2label": id2label, "label2id": {label: i for i, label in id2label.items()}}
