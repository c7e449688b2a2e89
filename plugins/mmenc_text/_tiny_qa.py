"""tiny-qa: a 2-layer DistilBERT question-answering checkpoint with seeded weights and the real
bert-base-uncased WordPiece vocabulary, for tests and demos of the question-answering task."""

from __future__ import annotations

from pathlib import Path

from mmenc_bert._tiny import wordpiece_tokenizer

from mmenc.tiny import materialize, seeded

VERSION = 1


def tiny_qa() -> Path:
    """The folder of the tiny QA checkpoint (built once per ``MMENC_CACHE``)."""
    return materialize(f"tiny-qa-v{VERSION}", _build)


def _build(folder: Path) -> None:
    import torch
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering, DistilBertTokenizer

    tokenizer = wordpiece_tokenizer(DistilBertTokenizer)
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=128,
    )
    with seeded(0):
        model = DistilBertForQuestionAnswering(config)
        # The default 0.02 init gives near-equal logits; a wider head spreads the span scores,
        # so tests compare clearly ranked answers rather than near-ties.
        torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
