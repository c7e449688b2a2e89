"""The encoders behind the clip family: transformers CLIP / SigLIP, and open_clip models.

Each uses its checkpoint's own tokenizer and image preprocessing, so embeddings equal the
reference library's. ``logit_scale`` / ``logit_bias`` / ``score_activation`` say how the model
turns cosine similarities into scores: softmax over ``logit_scale * cos`` for CLIP, a sigmoid of
``logit_scale * cos + logit_bias`` per pair for SigLIP.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mmenc.base import BaseEncoder
from mmenc.errors import UnknownEncoderError, WeightsUnavailableError
from mmenc.hub import hub_errors, model_config
from mmenc.inputs import text_token_limit
from mmenc_clip import HF_MODEL_TYPES


class _ClipBase(BaseEncoder):
    family = "clip"
    modalities = frozenset({"text", "image"})
    shared_space = True
    logit_scale: float
    logit_bias: float | None
    score_activation: str

    def _set_scores(self, log_scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.logit_scale = float(log_scale.float().exp())
        self.logit_bias = None if bias is None else float(bias.float())
        self.score_activation = "softmax" if bias is None else "sigmoid"


class HFClipEncoder(_ClipBase):
    """transformers ``CLIPModel`` / ``SiglipModel`` with the folder's tokenizer and image processor.

    SigLIP pools the last token and was trained without an attention mask, so its texts are
    padded to the tokenizer's maximum length (as SigLIP requires); CLIP pads to the longest.
    """

    def __init__(
        self,
        ref: str,
        *,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        revision: str | None = None,
    ) -> None:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        config = model_config(ref) or {}
        self.model_type = config.get("model_type")
        if self.model_type not in HF_MODEL_TYPES:
            raise ValueError(
                f"{ref!r} is not a CLIP or SigLIP checkpoint (config.json model_type is "
                f"{self.model_type!r}); pass a folder or hub id of a CLIPModel or SiglipModel"
            )
        with hub_errors(ref):
            self.tokenizer = AutoTokenizer.from_pretrained(ref, revision=revision)
            self.image_processor = AutoImageProcessor.from_pretrained(ref, revision=revision)
            self.model = AutoModel.from_pretrained(ref, revision=revision, dtype=dtype)
        self.model.to(device).eval()
        self.padding = "max_length" if self.model_type == "siglip" else "longest"
        self.max_length = text_token_limit(self.tokenizer, self.model.config.text_config)
        bias = getattr(self.model, "logit_bias", None)
        self._set_scores(self.model.logit_scale.detach(), None if bias is None else bias.detach())
        super().__init__(name=name, embed_dim=_hf_embed_dim(self.model), device=device, dtype=dtype)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts,
            padding=self.padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        return self.model.get_text_features(**batch).pooler_output

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        pixels = torch.stack(images).to(self.device, self.dtype)
        return self.model.get_image_features(pixel_values=pixels).pooler_output


def _hf_embed_dim(model: Any) -> int:
    projection = getattr(model, "text_projection", None)  # CLIP
    if projection is not None:
        return int(projection.out_features)
    return int(model.config.vision_config.hidden_size)  # SigLIP: both heads give this size


class OpenClipEncoder(_ClipBase):
    """An open_clip model with its own tokenizer and ``preprocess`` transform.

    ``model_name`` is a built-in architecture (with ``pretrained`` a tag or checkpoint file), or
    ``hf-hub:ORG/NAME`` / ``local-dir:PATH`` as open_clip spells them.
    """

    def __init__(
        self,
        model_name: str,
        pretrained: str | None = None,
        *,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        import open_clip

        model_name, pretrained = _check_open_clip_name(model_name, pretrained)
        try:
            with hub_errors(model_name.partition(":")[2] or model_name):
                model, preprocess = open_clip.create_model_from_pretrained(
                    model_name, pretrained=pretrained, device=device
                )
        except RuntimeError as exc:
            raise _open_clip_unavailable(model_name, pretrained, exc) from exc
        self.model = model.to(dtype=dtype).eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        bias = getattr(model, "logit_bias", None)
        self._set_scores(model.logit_scale.detach(), None if bias is None else bias.detach())
        embed_dim = (open_clip.get_model_config(model_name) or {}).get("embed_dim")
        super().__init__(
            name=name, embed_dim=embed_dim or self._probe_dim(), device=device, dtype=dtype
        )

    def _probe_dim(self) -> int:
        with torch.inference_mode():
            tokens = self.tokenizer([""]).to(next(self.model.parameters()).device)
            return int(self.model.encode_text(tokens).shape[-1])

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        return self.preprocess(image)

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        pixels = torch.stack(images).to(self.device, self.dtype)
        return self.model.encode_image(pixels)


def _check_open_clip_name(model_name: str, pretrained: str | None) -> tuple[str, str | None]:
    """Canonical architecture name and tag, or ``UnknownEncoderError`` with close matches."""
    import open_clip

    if model_name.startswith(("hf-hub:", "local-dir:")):
        return model_name, None
    archs = {a.lower(): a for a in open_clip.list_models()}
    arch = archs.get(model_name.lower())
    if arch is None:
        close = difflib.get_close_matches(model_name.lower(), archs, n=3, cutoff=0.6)
        suggestions = [f"open_clip:{archs[c]}/TAG" for c in close]
        raise UnknownEncoderError(f"open_clip:{model_name}/{pretrained or ''}", suggestions)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    tag = (pretrained or "").lower()
    if tag in tags:
        return arch, tag
    if pretrained and Path(pretrained).is_file():
        return arch, pretrained
    ranked = difflib.get_close_matches(tag, tags, n=8, cutoff=0) if tag else tags[:8]
    raise UnknownEncoderError(
        f"open_clip:{arch}/{pretrained or 'TAG'}", [f"open_clip:{arch}/{t}" for t in ranked]
    )


def _open_clip_unavailable(
    model_name: str, pretrained: str | None, cause: RuntimeError
) -> WeightsUnavailableError:
    import open_clip
    from huggingface_hub.constants import HF_HUB_CACHE

    what = f"open_clip {model_name!r}" + (
        f" with pretrained tag {pretrained!r}" if pretrained else ""
    )
    reason = (str(cause).splitlines() or [type(cause).__name__])[0].rstrip(".")
    repo = (
        open_clip.get_pretrained_cfg(model_name, pretrained).get("hf_hub", "") if pretrained else ""
    )
    repo = repo.strip("/") or model_name.removeprefix("hf-hub:")
    call = f"open_clip.create_model_from_pretrained({model_name!r}, pretrained={pretrained!r})"
    return WeightsUnavailableError(
        f"weights unavailable: {what} is not in the Hugging Face cache ({HF_HUB_CACHE}) or could "
        f"not be downloaded ({reason}). To fix: where there is network, run `hf download {repo}` "
        f"or `{call}` once with the same HF_HOME, or pass a local folder holding "
        "open_clip_config.json and open_clip_model.safetensors."
    )
