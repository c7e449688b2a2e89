"""``LitEncoder``: texts through the frozen text encoder, images through the trained tower,
both into the text encoder's space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

import mmenc
from mmenc.base import BaseEncoder
from mmenc.encoder import Encoder
from mmenc.train.lit_model import ImageTower, load_model, normalise, to_pixels


class LitEncoder(BaseEncoder):
    """A LiT model: ``encode_text`` is the text encoder's, ``encode_image`` the tower's, and
    ``logit_scale`` the temperature learned in training (used by zero-shot scoring)."""

    family = "lit"
    modalities = frozenset({"text", "image"})
    shared_space = True

    def __init__(
        self,
        tower: ImageTower,
        config: dict[str, Any],
        text_encoder: Encoder,
        *,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.tower = tower.to(device=device, dtype=dtype)
        self.config = config
        self.text_encoder = text_encoder
        super().__init__(name=name, embed_dim=config["embed_dim"], device=device, dtype=dtype)

    @classmethod
    def from_folder(
        cls, folder: Path, *, name: str, device: torch.device, dtype: torch.dtype
    ) -> LitEncoder:
        tower, config = load_model(Path(folder))
        text = mmenc.load(config["text_encoder"], device=device, dtype=dtype)
        return cls(tower.eval(), config, text, name=name, device=device, dtype=dtype)

    @property
    def logit_scale(self) -> float:
        return self.tower.scale()

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        return self.text_encoder.encode_text(texts, batch_size=len(texts), normalize=False)

    def _text_lengths(self, texts: list[str]) -> list[int]:
        lengths = getattr(self.text_encoder, "_text_lengths", None)
        return lengths(texts) if lengths else super()._text_lengths(texts)

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        return to_pixels(image, self.config["image_size"])

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        pixels = normalise(torch.stack(images).to(self.device), self.config)
        return self.tower(pixels.to(self.dtype))
