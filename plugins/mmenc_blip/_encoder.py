"""The BLIP encoder: contrastive embeddings, image-text matching and captioning.

Embeddings follow ``BlipForImageTextRetrieval.forward(use_itm_head=False)`` exactly: the CLS
token of the vision model's last hidden state through ``vision_proj``, the CLS token of the
text encoder (no cross-attention) through ``text_proj``. ``match`` follows the
``use_itm_head=True`` branch. A captioning checkpoint embeds images with the vision model's
pooled output and captions with the model's own ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from mmenc.base import BaseEncoder
from mmenc.errors import InvalidInputError, UnsupportedModalityError
from mmenc.hub import hub_errors
from mmenc.inputs import as_batch, text_problems, text_token_limit

_MODEL_CLASSES = {
    "retrieval": "BlipForImageTextRetrieval",
    "captioning": "BlipForConditionalGeneration",
}
_EXAMPLES = {
    "retrieval": "'blip-itm-base-coco' (Salesforce/blip-itm-base-coco)",
    "captioning": "'blip-image-captioning-base' (Salesforce/blip-image-captioning-base)",
}


class BlipEncoder(BaseEncoder):
    """A BLIP retrieval checkpoint (texts + images, ``match``) or captioning one (images,
    ``caption``); ``task`` says which, from the config's ``architectures``."""

    family = "blip"
    shared_space = True

    def __init__(
        self,
        ref: str,
        *,
        task: str,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        revision: str = "main",
    ) -> None:
        import transformers

        if task not in _MODEL_CLASSES:
            raise ValueError(f"unknown BLIP task {task!r}; use one of {sorted(_MODEL_CLASSES)}")
        model_class = getattr(transformers, _MODEL_CLASSES[task])
        with hub_errors(ref):
            self.processor = transformers.BlipProcessor.from_pretrained(ref, revision=revision)
            self.model = model_class.from_pretrained(ref, revision=revision, dtype=dtype)
        self.model.to(device).eval()
        self.task = task
        self.tokenizer = self.processor.tokenizer
        config = self.model.config
        if task == "retrieval":
            self.modalities = frozenset({"text", "image"})
            embed_dim = config.image_text_hidden_size
        else:  # the caption decoder's text states are not in the image embedding space
            self.modalities = frozenset({"image"})
            self.shared_space = False
            embed_dim = config.vision_config.hidden_size
        self.max_length = text_token_limit(self.tokenizer, config.text_config)
        super().__init__(name=name, embed_dim=embed_dim, device=device, dtype=dtype)

    # -- embeddings -----------------------------------------------------------------------
    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self._tokenize(texts)
        hidden = self.model.text_encoder(**tokens).last_hidden_state
        return self.model.text_proj(hidden[:, 0, :])

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        pixels = self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"]
        return pixels[0]

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        vision = self.model.vision_model(pixel_values=self._pixels(images))
        if self.task == "captioning":
            return vision.pooler_output
        return self.model.vision_proj(vision.last_hidden_state[:, 0, :])

    # -- extras ---------------------------------------------------------------------------
    def match(
        self, images: Sequence[Any], texts: Sequence[str], *, batch_size: int = 32
    ) -> torch.Tensor:
        """Probability (n,) that ``texts[i]`` describes ``images[i]``: softmax of the
        image-text matching head, index 1. Needs a retrieval checkpoint."""
        self._require_task("retrieval", "match()")
        images, texts = as_batch(images, "image"), as_batch(texts, "text")
        if len(images) != len(texts):
            raise ValueError(
                f"match() scores aligned pairs (images[i], texts[i]), but got {len(images)} "
                f"images and {len(texts)} texts; pass lists of the same length (for every "
                "image against every text use similarity())"
            )
        if problems := text_problems(texts):
            raise InvalidInputError(problems, "text")
        out = torch.empty(len(images), dtype=torch.float32)
        with torch.inference_mode():
            for indices, prepared, problems in self._prepared_batches(images, batch_size):
                if problems:
                    raise InvalidInputError(problems, "image")
                batch = [prepared[i] for i in indices]
                out[indices] = self._match_batch(batch, [texts[i] for i in indices])
        return out

    def caption(
        self,
        images: Sequence[Any],
        prompt: str | None = None,
        max_new_tokens: int = 30,
        *,
        batch_size: int = 32,
        **generate_kwargs: Any,
    ) -> list[str]:
        """A caption per image from the model's ``generate`` (its generation config: greedy for
        the BLIP checkpoints). A ``prompt`` ("a picture of") starts every caption and stays in
        it, as in transformers. Needs a captioning checkpoint."""
        self._require_task("captioning", "caption()")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None, got {type(prompt).__name__}")
        items = as_batch(images, "image")
        captions: list[str] = []
        with torch.inference_mode():
            for indices, prepared, problems in self._prepared_batches(items, batch_size):
                if problems:
                    raise InvalidInputError(problems, "image")
                batch = [prepared[i] for i in indices]
                captions += self._caption_batch(batch, prompt, max_new_tokens, generate_kwargs)
        return captions

    # -- helpers --------------------------------------------------------------------------
    def _match_batch(self, images: list[torch.Tensor], texts: list[str]) -> torch.Tensor:
        image_states = self.model.vision_model(pixel_values=self._pixels(images)).last_hidden_state
        image_mask = torch.ones(image_states.shape[:-1], dtype=torch.long, device=self.device)
        hidden = self.model.text_encoder(
            **self._tokenize(texts),
            encoder_hidden_states=image_states,
            encoder_attention_mask=image_mask,
        ).last_hidden_state
        logits = self.model.itm_head(hidden[:, 0, :]).float()
        return logits.softmax(dim=-1)[:, 1].cpu()

    def _caption_batch(
        self,
        images: list[torch.Tensor],
        prompt: str | None,
        max_new_tokens: int,
        generate_kwargs: dict[str, Any],
    ) -> list[str]:
        inputs: dict[str, Any] = {"pixel_values": self._pixels(images)}
        if prompt is not None:
            inputs.update(self._tokenize([prompt] * len(images)))
        ids = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {key: value.to(self.device) for key, value in tokens.items()}

    def _pixels(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(images).to(self.device, self.model.dtype)

    def _require_task(self, task: str, what: str) -> None:
        if self.task != task:
            raise UnsupportedModalityError(
                f"{self.name!r} is a BLIP {self.task} checkpoint ({_MODEL_CLASSES[self.task]}), "
                f"and {what} needs a {task} checkpoint ({_MODEL_CLASSES[task]}): load "
                f"{_EXAMPLES[task]} or another {_MODEL_CLASSES[task]} model"
            )
