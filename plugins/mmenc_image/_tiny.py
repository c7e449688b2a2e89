"""Tiny classifiers for the image tasks' tests: tiny-vit's and tiny-timm's 2-layer 32-d ViTs on
32 px images (patch 8) with classification heads and seeded weights, written in the real
formats and loaded back like real checkpoints.

- ``tiny_vit_classifier()``: transformers ``ViTForImageClassification`` + ``ViTImageProcessor``,
  six labels in ``id2label``;
- ``tiny_timm_classifier()``: timm's hub folder (config.json + model.safetensors) of a
  VisionTransformer with a five-class head, ``label_names`` and ``label_descriptions``.

The heads are initialised wide (std 0.2 / 0.5) so that scores are spread: near-equal scores
would make label order a coin toss between two implementations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmenc_vit._tiny import SIZE, TIMM_SHAPE, VIT_SHAPE

from mmenc.tiny import materialize, seeded

VERSION = 1
VIT_LABELS = ("cat", "dog", "bird", "fish", "horse", "frog")
TIMM_LABEL_NAMES = ("n0", "n1", "n2", "n3", "n4")
TIMM_DESCRIPTIONS = {"n0": "apple", "n1": "banana", "n2": "cherry", "n3": "grape", "n4": "lemon"}


def tiny_vit_classifier() -> Path:
    return materialize(f"tiny-vit-classifier-v{VERSION}", _build_vit)


def tiny_timm_classifier() -> Path:
    return materialize(f"tiny-timm-classifier-v{VERSION}", _build_timm)


def _build_vit(folder: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        **VIT_SHAPE,
        initializer_range=0.2,
        id2label=dict(enumerate(VIT_LABELS)),
        label2id={label: i for i, label in enumerate(VIT_LABELS)},
    )
    with seeded(0):
        model = ViTForImageClassification(config)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}).save_pretrained(folder)


def _build_timm(folder: Path) -> None:
    import timm
    import torch
    from timm.models import save_for_hf

    with seeded(0):
        model: Any = timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            **TIMM_SHAPE,
            num_classes=len(TIMM_LABEL_NAMES),
        )
        torch.nn.init.normal_(model.head.weight, std=0.5)
    save_for_hf(
        model,
        str(folder),
        model_config={
            "label_names": list(TIMM_LABEL_NAMES),
            "label_descriptions": TIMM_DESCRIPTIONS,
            "pretrained_cfg": {"tag": "seeded_random", "license": None},
        },
        safe_serialization=True,
    )
