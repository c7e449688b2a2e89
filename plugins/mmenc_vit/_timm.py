"""Image encoders on timm: ``create_model(..., num_classes=0)`` gives the pooled pre-logits
features (the model's own global pooling and norm), and preprocessing comes from the model's
pretrained data config (``resolve_model_data_config`` + ``create_transform``), exactly as timm
evaluates it."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mmenc.base import BaseEncoder
from mmenc.errors import UnknownEncoderError
from mmenc.hub import hub_errors, offline, unavailable

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class TimmImageEncoder(BaseEncoder):
    """A timm model given as a registry name (``arch.tag``), ``local-dir:PATH`` or
    ``hf-hub:ORG/NAME``; embeddings are its pooled pre-logits features."""

    family = "vit"
    modalities = frozenset({"image"})

    def __init__(self, source: str, *, name: str, device: torch.device, dtype: torch.dtype) -> None:
        import timm
        from timm.data import create_transform, resolve_model_data_config

        ref = _weights_ref(source, name)
        with hub_errors(ref):
            model: Any = timm.create_model(source, pretrained=True, num_classes=0)
        self.model = model.to(device=device, dtype=dtype).eval()
        self.transform = create_transform(**resolve_model_data_config(model))
        dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
        super().__init__(name=name, embed_dim=dim, device=device, dtype=dtype)

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        return self.model(torch.stack(images).to(self.device, dtype=self.dtype))


def _weights_ref(source: str, name: str) -> str:
    """Where the weights of ``source`` live, for error messages; raises at once (before building
    the model) for an unknown architecture, an incomplete folder or weights missing offline."""
    if source.startswith("local-dir:"):
        folder = source[len("local-dir:") :]
        _check_folder(folder)
        return folder
    if source.startswith("hf-hub:"):
        return source[len("hf-hub:") :]
    import timm

    arch = source.split(".", 1)[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(source, timm.list_models(), n=3, cutoff=0.6)
        raise UnknownEncoderError(f"timm:{source}", [f"timm:{c}" for c in close])
    cfg = timm.models.get_pretrained_cfg(source)
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id and offline() and not _cached(hub_id):
        raise unavailable(hub_id, "model.safetensors", f"timm model {source!r}")
    return hub_id or source


def _check_folder(folder: str) -> None:
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise unavailable(folder, "config.json", "a timm folder needs config.json")
    if not any(next(path.glob(f"*{ext}"), None) for ext in (".safetensors", ".bin", ".pth")):
        raise unavailable(folder, "model.safetensors", "a timm folder needs a weights file")


def _cached(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(hub_id, f), str) for f in WEIGHT_FILES)
