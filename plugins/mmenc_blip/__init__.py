"""mmenc plugin: BLIP (transformers) — image-text retrieval embeddings, matching and captioning.

A BLIP checkpoint is one of two kinds, told apart by ``architectures`` in its config.json:

* retrieval (``BlipForImageTextRetrieval``, e.g. Salesforce/blip-itm-base-coco): text and image
  embeddings in one shared space (the model's contrastive projections) plus ``match()``, the
  image-text matching probability;
* captioning (``BlipForConditionalGeneration``, e.g. Salesforce/blip-image-captioning-base):
  ``caption()`` plus image embeddings (the vision model's pooled output). It has no text
  embedding: its text tower is a caption decoder, not an encoder into the image space.

Imports no torch: the encoder lives in ``_encoder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from mmenc import EncoderSpec, MmencError, hookimpl
from mmenc.hub import hf_reference, model_config

FAMILY = "blip"
RETRIEVAL = "retrieval"
CAPTIONING = "captioning"
ARCHITECTURES = {
    "BlipForImageTextRetrieval": RETRIEVAL,
    "BlipForConditionalGeneration": CAPTIONING,
}
MODALITIES = {RETRIEVAL: frozenset({"text", "image"}), CAPTIONING: frozenset({"image"})}


class UnsupportedCheckpointError(MmencError, ValueError):
    """A BLIP checkpoint of an architecture mmenc does not use (e.g. question answering)."""


def task_of(config: Mapping[str, Any]) -> str | None:
    """``"retrieval"`` or ``"captioning"`` from a BLIP config's architectures, else None."""
    for architecture in config.get("architectures") or ():
        if architecture in ARCHITECTURES:
            return ARCHITECTURES[architecture]
    return None


def _tiny_path(task: str) -> str:
    from mmenc_blip._tiny import tiny_blip

    return str(tiny_blip(task))


def _load(ref: str | Callable[[], str], task: str, **kwargs: Any) -> Any:
    from mmenc_blip._encoder import BlipEncoder

    return BlipEncoder(ref() if callable(ref) else ref, task=task, **kwargs)


def _unsupported(ref: str, architectures: list[str], **_: Any) -> Any:
    raise UnsupportedCheckpointError(
        f"{ref!r} is a BLIP checkpoint with architectures {architectures}, which mmenc does not "
        "encode with; use an image-text retrieval checkpoint (BlipForImageTextRetrieval, e.g. "
        "Salesforce/blip-itm-base-coco) or a captioning one (BlipForConditionalGeneration, e.g. "
        "Salesforce/blip-image-captioning-base)"
    )


def _spec(name: str, ref: str | Callable[[], str], task: str, **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities=MODALITIES[task],
        factory=partial(_load, ref, task),
        checkpoint=ref,
        **fields,
    )


@hookimpl
def mmenc_encoders() -> Iterator[EncoderSpec]:
    yield _spec(
        "blip-itm-base-coco",
        "Salesforce/blip-itm-base-coco",
        RETRIEVAL,
        aliases=("Salesforce/blip-itm-base-coco",),
        description="BLIP ViT-B image-text retrieval (COCO): shared 256-d space + match()",
        source="hf:Salesforce/blip-itm-base-coco",
    )
    yield _spec(
        "blip-image-captioning-base",
        "Salesforce/blip-image-captioning-base",
        CAPTIONING,
        aliases=("Salesforce/blip-image-captioning-base",),
        description="BLIP ViT-B captioning: caption() + 768-d image embeddings (no text)",
        source="hf:Salesforce/blip-image-captioning-base",
    )
    yield _spec(
        "tiny-blip",
        partial(_tiny_path, RETRIEVAL),
        RETRIEVAL,
        description="2-layer 32-d BLIP retrieval model, seeded weights, real WordPiece vocab",
        source="built locally (tests)",
    )
    yield _spec(
        "tiny-blip-captioning",
        partial(_tiny_path, CAPTIONING),
        CAPTIONING,
        description="2-layer 32-d BLIP captioning model, seeded weights, real WordPiece vocab",
        source="built locally (tests)",
    )


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    ref = hf_reference(name)
    if ref is None:
        return None
    config = model_config(ref)
    if not config or config.get("model_type") != "blip":
        return None
    task = task_of(config)
    if task is None:
        architectures = list(config.get("architectures") or [])
        return EncoderSpec(
            name=name,
            family=FAMILY,
            modalities=MODALITIES[CAPTIONING],
            factory=partial(_unsupported, ref, architectures),
            source=ref,
            description=f"unsupported BLIP architecture {architectures}",
        )
    return _spec(name, ref, task, source=ref, description=f"BLIP {task} checkpoint")
