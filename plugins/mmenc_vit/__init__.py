"""mmenc plugin: image backbones from transformers (ViT, DeiT, DINOv2, BEiT, Swin, ConvNeXt...)
and timm.

Registers google/vit-base-patch16-224, facebook/deit-small-patch16-224, timm's
vit_base_patch16_224.augreg2_in21k_ft_in1k and two tiny test models, and resolves ``timm:NAME``,
timm folders and hub repos (config.json with "architecture"), and ``hf:`` names, hub ids and
folders whose config.json is an image backbone. Imports no torch: the encoders live in
``_hf`` and ``_timm``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mmenc import EncoderSpec, hookimpl
from mmenc.hub import hf_reference, is_local, model_config

FAMILY = "vit"
IMAGE_BACKBONE_TYPES = frozenset({
    "vit", "deit", "dinov2", "dinov2_with_registers", "vit_msn", "beit",
    "swin", "swinv2", "convnext", "convnextv2", "resnet", "regnet",
})  # fmt: skip
"""transformers model types whose AutoModel gives a CLS token or a parameter-free/trained pooler."""

TIMM_SOURCES = ("hf-hub:", "local-dir:")
IMAGE = frozenset({"image"})

Ref = str | Callable[[], str]


def _tiny_vit_path() -> str:
    from mmenc_vit._tiny import tiny_vit

    return str(tiny_vit())


def _tiny_timm_source() -> str:
    from mmenc_vit._tiny import tiny_timm

    return f"local-dir:{tiny_timm()}"


def _load_hf(ref: Ref, **kwargs: Any) -> Any:
    from mmenc_vit._hf import TransformersImageEncoder

    return TransformersImageEncoder(ref() if callable(ref) else ref, **kwargs)


def _load_timm(target: Ref, **kwargs: Any) -> Any:
    from mmenc_vit._timm import TimmImageEncoder

    return TimmImageEncoder(target() if callable(target) else target, **kwargs)


def _hf_spec(name: str, ref: Ref, **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities=IMAGE,
        factory=partial(_load_hf, ref),
        checkpoint=ref,
        **fields,
    )


def _timm_spec(name: str, target: Ref, **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities=IMAGE,
        factory=partial(_load_timm, target),
        **fields,
    )


def timm_source(target: str) -> str:
    """What timm.create_model should get for the part after ``timm:``: a registry name
    (``arch.tag``), ``local-dir:PATH`` for a folder, or ``hf-hub:ORG/NAME`` for a hub repo."""
    if target.startswith(TIMM_SOURCES):
        return target
    if Path(target).expanduser().is_dir():
        return f"local-dir:{Path(target).expanduser()}"
    if "/" in target:
        return f"hf-hub:{target}"
    return target


@hookimpl
def mmenc_encoders() -> Iterator[EncoderSpec]:
    yield _hf_spec(
        "vit-base-patch16-224",
        "google/vit-base-patch16-224",
        aliases=("google/vit-base-patch16-224",),
        description="ViT-B/16 (ImageNet-21k pre-trained, 1k fine-tuned), CLS embedding (768-d)",
        source="hf:google/vit-base-patch16-224",
    )
    yield _hf_spec(
        "deit-small-patch16-224",
        "facebook/deit-small-patch16-224",
        aliases=("facebook/deit-small-patch16-224",),
        description="DeiT-S/16 (ImageNet-1k), CLS embedding (384-d)",
        source="hf:facebook/deit-small-patch16-224",
    )
    yield _timm_spec(
        "timm-vit-base-patch16-224",
        "vit_base_patch16_224.augreg2_in21k_ft_in1k",
        aliases=("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",),
        description="timm ViT-B/16 augreg2 in21k→in1k, pooled pre-logits (768-d)",
        source="timm:vit_base_patch16_224.augreg2_in21k_ft_in1k",
    )
    yield _hf_spec(
        "tiny-vit",
        _tiny_vit_path,
        description="2-layer 32-d transformers ViT (32 px, patch 8) with seeded random weights",
        source="built locally (tests)",
    )
    yield _timm_spec(
        "tiny-timm",
        _tiny_timm_source,
        description="2-layer 32-d timm VisionTransformer (32 px, patch 8), seeded random weights",
        source="built locally (tests)",
    )


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    if name.lower().startswith("timm:"):
        target = name[len("timm:") :]
        return _timm_spec(name, timm_source(target), source=target, description="timm model")
    ref = hf_reference(name)
    if ref is None:
        return None
    config = model_config(ref)
    if not config:
        return None
    if "architecture" in config and "model_type" not in config:
        target = f"local-dir:{ref}" if is_local(ref) else f"hf-hub:{ref}"
        return _timm_spec(name, target, source=ref, description=f"timm {config['architecture']}")
    if config.get("model_type") in IMAGE_BACKBONE_TYPES:
        return _hf_spec(name, ref, source=ref, description=f"{config['model_type']} image encoder")
    return None
