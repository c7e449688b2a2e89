"""mmenc plugin: CLIP-family encoders (text and image in one space) from transformers and open_clip.

Registers OpenAI CLIP ViT-B/32, SigLIP base, LAION's open_clip ViT-B/32 and three tiny test models,
and resolves ``open_clip:ARCH/TAG``, ``open_clip:hf-hub:ORG/NAME``, open_clip folders
(``open_clip_config.json``), and ``hf:`` names, hub ids and folders whose config.json is a CLIP or
SigLIP model. Imports no torch: the encoders live in ``_encoder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mmenc import EncoderSpec, hookimpl
from mmenc.hub import hf_reference, is_local, model_config

FAMILY = "clip"
MODALITIES = frozenset({"text", "image"})
HF_MODEL_TYPES = frozenset({"clip", "siglip"})
OPEN_CLIP_PREFIX = "open_clip:"
OPEN_CLIP_CONFIG = "open_clip_config.json"


def _tiny_clip() -> str:
    from mmenc_clip._tiny import tiny_clip

    return str(tiny_clip())


def _tiny_siglip() -> str:
    from mmenc_clip._tiny import tiny_siglip

    return str(tiny_siglip())


def _tiny_openclip() -> str:
    from mmenc_clip._tiny import tiny_openclip

    return str(tiny_openclip())


def _load_hf(ref: str | Callable[[], str], **kwargs: Any) -> Any:
    from mmenc_clip._encoder import HFClipEncoder

    return HFClipEncoder(ref() if callable(ref) else ref, **kwargs)


def _load_open_clip(
    model_name: str | Callable[[], str], pretrained: str | None = None, **kwargs: Any
) -> Any:
    from mmenc_clip._encoder import OpenClipEncoder

    if callable(model_name):
        model_name = "local-dir:" + model_name()
    return OpenClipEncoder(model_name, pretrained, **kwargs)


def _hf_spec(name: str, ref: str | Callable[[], str], **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities=MODALITIES,
        factory=partial(_load_hf, ref),
        checkpoint=ref,
        **fields,
    )


def _open_clip_spec(
    name: str, model_name: str | Callable[[], str], pretrained: str | None = None, **fields: Any
) -> EncoderSpec:
    factory = partial(_load_open_clip, model_name, pretrained)
    return EncoderSpec(name=name, family=FAMILY, modalities=MODALITIES, factory=factory, **fields)


@hookimpl
def mmenc_encoders() -> Iterator[EncoderSpec]:
    yield _hf_spec(
        "clip-vit-b-32",
        "openai/clip-vit-base-patch32",
        aliases=("openai/clip-vit-base-patch32",),
        description="OpenAI CLIP ViT-B/32 (512-d, text and image), transformers",
        source="hf:openai/clip-vit-base-patch32",
    )
    yield _hf_spec(
        "siglip-base-patch16-224",
        "google/siglip-base-patch16-224",
        aliases=("google/siglip-base-patch16-224",),
        description="Google SigLIP base 16/224 (768-d, sigmoid scores)",
        source="hf:google/siglip-base-patch16-224",
    )
    yield _open_clip_spec(
        "openclip-vit-b-32-laion2b",
        "ViT-B-32",
        "laion2b_s34b_b79k",
        description="open_clip ViT-B/32 trained on LAION-2B (512-d)",
        source="open_clip:ViT-B-32/laion2b_s34b_b79k",
    )
    yield _hf_spec(
        "tiny-clip",
        _tiny_clip,
        description="2-layer 32-d transformers CLIPModel, seeded weights, OpenAI's BPE tokenizer",
        source="built locally (tests)",
    )
    yield _hf_spec(
        "tiny-siglip",
        _tiny_siglip,
        description="2-layer 32-d transformers SiglipModel, seeded weights, CLIP BPE tokenizer",
        source="built locally (tests)",
    )
    yield _open_clip_spec(
        "tiny-openclip",
        _tiny_openclip,
        description="2-layer 32-d open_clip CLIP in open_clip's folder layout, seeded weights",
        source="built locally (tests)",
    )


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    if name.startswith(OPEN_CLIP_PREFIX):
        return _resolve_open_clip(name)
    ref = hf_reference(name)
    if ref is None:
        return None
    if is_local(ref) and (Path(ref) / OPEN_CLIP_CONFIG).is_file():
        return _open_clip_spec(name, "local-dir:" + ref, source=ref, description="open_clip folder")
    config = model_config(ref)
    model_type = config.get("model_type") if config else None
    if model_type in HF_MODEL_TYPES:
        return _hf_spec(name, ref, source=ref, description=f"transformers {model_type} model")
    return None


def _resolve_open_clip(name: str) -> EncoderSpec:
    """``open_clip:ARCH/TAG``, ``open_clip:hf-hub:ORG/NAME``, ``open_clip:local-dir:PATH`` or
    ``open_clip:PATH``; the architecture and tag are checked when the model is loaded."""
    rest = name[len(OPEN_CLIP_PREFIX) :]
    if rest.startswith(("hf-hub:", "local-dir:")):
        return _open_clip_spec(name, rest, source=rest)
    if Path(rest).expanduser().is_dir():
        path = str(Path(rest).expanduser())
        return _open_clip_spec(name, "local-dir:" + path, source=path)
    arch, _, tag = rest.partition("/")
    return _open_clip_spec(name, arch, tag or None, source=name)
