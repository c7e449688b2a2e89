"""The LiT image tower and its folder format.

A tower is a timm backbone (its pooled features, ``num_classes=0``) plus a linear projection
into the frozen text encoder's embedding space, and the learned temperature of the contrastive
loss. A trained model is a folder with two files: ``model.safetensors`` (the tower) and
``lit_config.json`` (the text encoder's name, the backbone, the preprocessing, how it was
trained). ``mmenc.load(folder)`` opens it as an encoder of family ``lit``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

CONFIG_FILE = "lit_config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "mmenc-lit/1"
INITIAL_TEMPERATURE = 0.07  # CLIP's: logits = cos / 0.07 at the start of training
MAX_LOGIT_SCALE = 100.0  # CLIP's cap on exp(logit_scale), which keeps training stable


class ImageTower(nn.Module):
    """timm backbone -> pooled features -> linear projection to ``embed_dim``."""

    def __init__(
        self,
        backbone: str,
        embed_dim: int,
        *,
        pretrained: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        import timm

        super().__init__()
        model: Any = timm.create_model(
            backbone_name(backbone), pretrained=pretrained, num_classes=0, **(options or {})
        )
        self.backbone = model
        features = int(getattr(model, "head_hidden_size", None) or model.num_features)
        self.projection = nn.Linear(features, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / INITIAL_TEMPERATURE)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(pixels))

    def scale(self) -> float:
        """exp(logit_scale), capped as in training: the factor on cosines before a softmax."""
        return float(self.logit_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    def data_config(self) -> dict[str, Any]:
        """The backbone's own input size, mean and std (timm's pretrained config)."""
        from timm.data import resolve_model_data_config

        return dict(resolve_model_data_config(self.backbone))


def backbone_name(name: str) -> str:
    """A timm architecture name, with or without mmenc's ``timm:`` prefix."""
    return name[len("timm:") :] if name.lower().startswith("timm:") else name


def to_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """uint8 (3, size, size): the shorter side resized to ``size`` (bicubic), then the centre
    crop, as CLIP preprocesses. Training caches these; the encoder makes them the same way."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.convert("RGB").resize(
        (max(size, round(width * scale)), max(size, round(height * scale))),
        Image.Resampling.BICUBIC,
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    return (
        torch.frombuffer(bytearray(cropped.tobytes()), dtype=torch.uint8)
        .view(size, size, 3)
        .permute(2, 0, 1)
    )


def normalise(pixels: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """float (n, 3, s, s) from uint8 pixels, scaled to [0, 1] and standardised by the config's
    mean and std."""
    mean = torch.tensor(config["mean"], device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(config["std"], device=pixels.device).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


def save_model(folder: Path, tower: ImageTower, config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``lit_config.json`` (each through a temporary name, so
    an interrupted save leaves the previous epoch's files whole)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in tower.state_dict().items()}
    _replace(folder / WEIGHTS_FILE, lambda path: save_file(weights, str(path)))
    text = json.dumps(config, indent=2) + "\n"
    _replace(folder / CONFIG_FILE, lambda path: path.write_text(text, encoding="utf-8"))


def load_model(folder: Path) -> tuple[ImageTower, dict[str, Any]]:
    """The tower and config of a saved LiT folder, on the CPU in float32."""
    from safetensors.torch import load_file

    config = read_config(folder)
    tower = ImageTower(
        config["image_backbone"], config["embed_dim"], options=config.get("backbone_options")
    )
    tower.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return tower.eval(), config


def read_config(folder: Path) -> dict[str, Any]:
    from mmenc.hub import unavailable

    for needed in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / needed).is_file():
            raise unavailable(str(folder), needed, "a LiT model folder needs both files")
    config: dict[str, Any] = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise ValueError(
            f"{folder / CONFIG_FILE} has format {config.get('format')!r}; this mmenc reads "
            f"{FORMAT!r} (upgrade mmenc, or retrain with this version)"
        )
    return config


def _replace(final: Path, write: Any) -> None:
    temporary = final.with_name(f".{final.name}.tmp")
    write(temporary)
    temporary.replace(final)
