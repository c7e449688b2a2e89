"""image-text-matching: how well a text describes an image, ``{'score', 'method'}`` per pair.

``method="itm"`` is BLIP's image-text matching head (``score`` = its probability that the pair
matches, 0..1); ``"cosine"`` is the cosine of the two embeddings in the encoder's shared space
(-1..1), for CLIP-like encoders, which have no matching head. The default, ``"auto"``, uses the
head when the encoder has one.

A pair is ``{"image": ..., "text": ...}`` or a tuple ``(image, text)``; a list holds several.
``pipe(images, text=...)`` pairs every image with one text, or ``images[i]`` with ``text[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from mmenc.inputs import check_nonblank_text
from mmenc_image._common import EncoderPipeline, image_problem

METHODS = ("auto", "itm", "cosine")


class ImageTextMatchingPipeline(EncoderPipeline):
    defaults: ClassVar[dict[str, Any]] = {"text": None, "method": "auto"}
    needs = frozenset({"text", "image"})
    shared_space = True
    examples = "'blip-itm-base-coco' (matching head) or 'clip-vit-b-32' (cosine)"

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """Scores for one pair or a list of pairs, or for images paired with ``text=``."""
        text = {**self.options, **self._checked_options(options)}["text"]
        if text is None:
            return super().__call__(inputs, **options)
        single = super()._is_single(inputs)  # inputs are images here
        images = [inputs] if single else list(inputs)
        texts = [text] * len(images) if isinstance(text, str) else list(text)
        if len(texts) != len(images):
            raise ValueError(
                f"{self.task}: text= has {len(texts)} texts for {len(images)} images; pass one "
                "text for all images or one per image"
            )
        results = super().__call__(list(zip(images, texts, strict=True)), **options)
        return results[0] if single else results

    def _is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (Mapping, tuple))

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        if options.get("method", "auto") not in METHODS:
            raise ValueError(
                f"method must be one of {', '.join(METHODS)}, not {options['method']!r}"
            )
        text = options.get("text")
        if text is not None and not isinstance(text, (str, list, tuple)):
            raise TypeError(f"text must be a str or a list of str, not {type(text).__name__}")
        if options.get("method") == "itm" and not _has_matching_head(self.encoder):
            raise ValueError(
                f"{self.encoder.name!r} has no image-text matching head; use method='cosine' "
                "or a BLIP retrieval model such as 'blip-itm-base-coco'"
            )
        return options

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        pair = _pair(item)
        if isinstance(pair, str):
            return pair
        image, text = pair
        return image_problem(image) or check_nonblank_text(text)

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        images, texts = zip(*map(_pair, items), strict=True)
        method = options["method"]
        if method == "auto":
            method = "itm" if _has_matching_head(self.encoder) else "cosine"
        if method == "itm":
            scores = self.encoder.match(list(images), list(texts), batch_size=self.batch_size)
        else:
            scores = self._cosine(list(images), list(texts))
        return [{"score": score, "method": method} for score in scores.tolist()]

    def _cosine(self, images: list[Any], texts: list[str]) -> torch.Tensor:
        """Row-wise cosine; a text repeated across pairs is embedded once."""
        row_of = {text: row for row, text in enumerate(dict.fromkeys(texts))}
        text_rows = self.encoder.encode_text(list(row_of), batch_size=self.batch_size)
        chosen = text_rows[[row_of[text] for text in texts]]
        image_rows = self.encoder.encode_image(images, batch_size=self.batch_size)
        return (image_rows * chosen).sum(dim=-1)


def _has_matching_head(encoder: Any) -> bool:
    return callable(getattr(encoder, "match", None))


def _pair(item: Any) -> tuple[Any, Any] | str:
    """(image, text) from a pair, or why it is not one."""
    if isinstance(item, Mapping):
        if set(item) != {"image", "text"}:
            return f"a pair dict needs exactly the keys 'image' and 'text', got {sorted(item)}"
        return item["image"], item["text"]
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1]
    return (
        f"expected an (image, text) tuple or {{'image': ..., 'text': ...}}, got "
        f"{type(item).__name__}; to score images against one text pass text=..."
    )
