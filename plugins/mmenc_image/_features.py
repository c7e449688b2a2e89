"""image-feature-extraction: one embedding per image from any image encoder — exactly what
``encode_image`` gives (the encoder's own pooling: CLS token, pooled pre-logits, projected
CLIP embedding ...)."""

from __future__ import annotations

from typing import Any, ClassVar

from mmenc_image._common import EncoderPipeline


class ImageFeatureExtractionPipeline(EncoderPipeline):
    """A list of ``embed_dim`` floats per image (a 1-D float32 tensor with
    ``return_tensors=True``); unit length unless ``normalize=False``."""

    defaults: ClassVar[dict[str, Any]] = {"normalize": True, "return_tensors": False}

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        for name in ("normalize", "return_tensors"):
            if name in options and not isinstance(options[name], bool):
                raise TypeError(f"{name} must be True or False, not {options[name]!r}")
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        embeddings = self.encoder.encode_image(
            items, batch_size=self.batch_size, normalize=options["normalize"]
        )
        return list(embeddings) if options["return_tensors"] else embeddings.tolist()
