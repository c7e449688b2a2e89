"""image-to-text: a caption per image from a BLIP captioning model (BlipForConditionalGeneration),
``[{'generated_text'}]`` per image as transformers v4's image-to-text pipeline gave it.

A ``prompt`` ("a picture of") makes the caption continue it (BLIP's conditional captioning);
the prompt stays at the start of the text, as BLIP generates it. Decoding is the model's
generation config (greedy for the BLIP checkpoints) unless ``generate_kwargs`` say otherwise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from mmenc.inputs import check_nonblank_text, decode_image
from mmenc.tasks.hf import TransformersPipeline
from mmenc_image._common import ImagePipeline


class ImageToTextPipeline(ImagePipeline, TransformersPipeline):
    model_class = "AutoModelForImageTextToText"
    heads = ("BlipForConditionalGeneration",)
    preprocessor_class = "AutoProcessor"

    defaults: ClassVar[dict[str, Any]] = {
        "prompt": None,
        "max_new_tokens": None,
        "generate_kwargs": None,
    }

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        prompt = options.get("prompt")
        if prompt is not None and (why := check_nonblank_text(prompt)):
            raise ValueError(f"prompt must be a non-empty str or None: {why}")
        tokens = options.get("max_new_tokens")
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
            raise TypeError(f"max_new_tokens must be an integer, not {tokens!r}")
        if tokens is not None and tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {tokens}")
        extra = options.get("generate_kwargs")
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"generate_kwargs must be a dict, not {type(extra).__name__}")
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        generate = dict(options["generate_kwargs"] or {})
        if options["max_new_tokens"] is not None:
            if "max_new_tokens" in generate:
                raise ValueError(
                    "max_new_tokens is given twice: as an option and in generate_kwargs"
                )
            generate["max_new_tokens"] = options["max_new_tokens"]
        results: list[Any] = []
        with torch.inference_mode():
            for batch in self.batches(items):
                results += self._captions(
                    [decode_image(item) for item in batch], options["prompt"], generate
                )
        return results

    def _captions(
        self, images: list[Any], prompt: str | None, generate: dict[str, Any]
    ) -> list[list[dict[str, str]]]:
        """One list per image: its caption, or several with ``num_return_sequences``."""
        text = None if prompt is None else [prompt] * len(images)
        inputs = self.preprocessor(images=images, text=text, return_tensors="pt")
        inputs = inputs.to(self.model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        ids = self.model.generate(**inputs, **generate)
        texts = [t.strip() for t in self.preprocessor.batch_decode(ids, skip_special_tokens=True)]
        per_image = len(texts) // len(images)
        return [
            [{"generated_text": t} for t in texts[i * per_image : (i + 1) * per_image]]
            for i in range(len(images))
        ]
