"""tiny-vit and tiny-timm: 2-layer 32-d ViTs on 32 px images (patch 8) with seeded weights,
written in the real on-disk formats (transformers save_pretrained + ViTImageProcessor; timm's
hub folder: config.json with architecture/model_args/pretrained_cfg + model.safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmenc.tiny import materialize, seeded

VERSION = 1
SIZE, PATCH, DIM, DEPTH, HEADS = 32, 8, 32, 2, 2
# The tiny ViT's shape as ViTConfig and as timm.create_model("vit_tiny_patch16_224", ...) take it.
VIT_SHAPE: dict[str, Any] = {
    "image_size": SIZE,
    "patch_size": PATCH,
    "hidden_size": DIM,
    "num_hidden_layers": DEPTH,
    "num_attention_heads": HEADS,
    "intermediate_size": 2 * DIM,
}
TIMM_SHAPE: dict[str, Any] = {
    "img_size": SIZE,
    "patch_size": PATCH,
    "embed_dim": DIM,
    "depth": DEPTH,
    "num_heads": HEADS,
}


def tiny_vit() -> Path:
    return materialize(f"tiny-vit-v{VERSION}", _build_vit)


def tiny_timm() -> Path:
    return materialize(f"tiny-timm-v{VERSION}", _build_timm)


def _build_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(**VIT_SHAPE)
    with seeded(0):
        model = ViTModel(config, add_pooling_layer=False)  # as in ViT classification checkpoints
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}).save_pretrained(folder)


def _build_timm(folder: Path) -> None:
    import timm
    from timm.models import save_for_hf

    with seeded(0):
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **TIMM_SHAPE)
    save_for_hf(
        model,
        str(folder),
        model_config={"pretrained_cfg": {"tag": "seeded_random", "license": None}},
        safe_serialization=True,
    )
