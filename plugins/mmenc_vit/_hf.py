"""Image encoders on transformers' AutoModel with the checkpoint's own AutoImageProcessor.

Default pooling (``pooling=None``) is the model's standard image feature:

- ViT-style models with a class token (vit, deit, dinov2, vit_msn): the CLS token of the final,
  layer-normed hidden state, the vector their classification heads read. ViT's ``pooler_output``
  is a dense+tanh layer that classification checkpoints such as google/vit-base-patch16-224 do
  not contain, so it would be random there; ask for it with ``pooling="pooler"``.
- Models without one (beit, swin, convnext, resnet...): ``pooler_output`` (average pooling,
  plus BEiT's layer norm), which is what their classification heads read.

``pooling="mean"`` averages the patch tokens (class/register tokens left out) or feature map.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from mmenc.base import BaseEncoder
from mmenc.hub import hub_errors

CLS_TYPES = frozenset({"vit", "deit", "dinov2", "dinov2_with_registers", "vit_msn"})
"""Model types whose first token is a class token, pooled by default."""
OPTIONAL_POOLER_TYPES = frozenset({"vit", "deit"})
"""Model types whose AutoModel adds a dense pooler only when ``add_pooling_layer=True``."""
POOLINGS = ("cls", "mean", "pooler")


class TransformersImageEncoder(BaseEncoder):
    """Any transformers image backbone: AutoImageProcessor per image, AutoModel per batch."""

    family = "vit"
    modalities = frozenset({"image"})

    def __init__(
        self,
        ref: str,
        *,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        pooling: str | None = None,
        revision: str | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        with hub_errors(ref):
            config = AutoConfig.from_pretrained(ref, revision=revision)
            self.pooling = _check_pooling(pooling, config.model_type)
            extra = {}
            if config.model_type in OPTIONAL_POOLER_TYPES:
                extra["add_pooling_layer"] = self.pooling == "pooler"
            self.processor = AutoImageProcessor.from_pretrained(ref, revision=revision)
            self.model = AutoModel.from_pretrained(ref, revision=revision, dtype=dtype, **extra)
        self.model.to(device).eval()
        self.patch_size = _first(getattr(config, "patch_size", None))
        dim = _output_dim(config, self.pooling)
        super().__init__(name=name, embed_dim=dim, device=device, dtype=dtype)

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        pixels = torch.stack(images).to(self.device, dtype=self.dtype)
        output = self.model(pixel_values=pixels)
        if self.pooling == "pooler":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise ValueError(f"{self.name!r} has no pooler; use pooling='cls' or 'mean'")
            return pooled.flatten(1)
        hidden = output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        return self._mean(hidden, pixels)

    def _mean(self, hidden: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """Mean over patch tokens (3-D states; class/register tokens, the ones beyond the
        patch grid, left out) or over the feature map (4-D states of conv nets)."""
        if hidden.ndim == 4:
            return hidden.float().mean(dim=(2, 3))
        prefix = 0
        if self.patch_size:
            patches = (pixels.shape[-2] // self.patch_size) * (pixels.shape[-1] // self.patch_size)
            prefix = max(hidden.shape[1] - patches, 0)
        return hidden[:, prefix:].float().mean(dim=1)


def _check_pooling(pooling: str | None, model_type: str) -> str:
    if pooling is None:
        return "cls" if model_type in CLS_TYPES else "pooler"
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    if pooling == "cls" and model_type not in CLS_TYPES:
        raise ValueError(
            f"pooling='cls' needs a model with a class token; {model_type!r} has none: "
            "use pooling='pooler' or 'mean'"
        )
    return pooling


def _first(value: Any) -> int | None:
    """A patch size given as an int or an (h, w) pair; None if absent."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return int(value) if value else None


def _output_dim(config: Any, pooling: str) -> int:
    """Width of the pooled output: the last stage of hierarchical models, else hidden_size."""
    if pooling == "pooler" and getattr(config, "pooler_output_size", None):
        return int(config.pooler_output_size)
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    return int(config.hidden_size)
