"""feature-extraction: a text encoder's token states, or a pooled sentence embedding.

Token states come as transformers' pipeline gives them: per text a nested list (or, with
``return_tensors=True``, a tensor) of shape (1, tokens, hidden). ``pool=True`` gives one vector
per text, the mean of the token states over the attention mask: the same as the registered
encoder's ``encode_text(..., normalize=False)``, or ``encode_text`` itself with
``normalize=True``. Texts longer than ``max_length`` are truncated to it, as ``encode_text``
does; it defaults to a sentence-transformers folder's ``max_seq_length``, else the model's limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mmenc.pooling import POOLINGS, pool
from mmenc.tasks.hf import TransformersPipeline, checkpoint_for


class FeatureExtractionPipeline(TransformersPipeline):
    """Reads hidden states of a text model (``AutoModel``); see the module docstring."""

    model_class = "AutoModel"
    heads = ("",)  # every checkpoint has a base model whose states can be read

    defaults: ClassVar[dict[str, Any]] = {
        "pool": False,
        "normalize": False,
        "return_tensors": False,
        "max_length": None,
    }

    @classmethod
    def build(cls, model: Any, **kwargs: Any) -> FeatureExtractionPipeline:
        """``max_length`` defaults to what ``encode_text`` truncates to (a sentence-transformers
        folder's ``max_seq_length``), so that pooled embeddings equal it."""
        pipeline = super().build(model, **kwargs)
        if pipeline.options["max_length"] is None and isinstance(model, (str, Path)):
            from mmenc_bert._encoder import SentenceTransformersConfig

            length = SentenceTransformersConfig.read(checkpoint_for(model)).max_length
            pipeline.options.update(pipeline._checked_options({"max_length": length}))
        return pipeline

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        mode = options.get("pool", False)
        if not isinstance(mode, bool) and mode not in POOLINGS:
            raise ValueError(
                f"pool must be True, False or one of {', '.join(POOLINGS)}; not {mode!r}"
            )
        length = options.get("max_length")
        if length is not None and (
            isinstance(length, bool)
            or not isinstance(length, int)
            or not 1 < length <= self.max_tokens
        ):
            raise ValueError(
                f"max_length must be an integer from 2 to the model's limit of {self.max_tokens}, "
                f"not {length!r}"
            )
        return options

    def _run(self, items: list[str], options: dict[str, Any]) -> list[Any]:
        mode = "mean" if options["pool"] is True else options["pool"] or None
        if options["normalize"] and mode is None:
            raise ValueError("normalize=True applies to pooled embeddings; pass pool=True as well")
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        results: list[Any] = [None] * len(items)
        with torch.inference_mode():
            for chunk in self.batches(order):
                batch = self.tokenizer(
                    [items[i] for i in chunk],
                    padding=True,
                    truncation=True,
                    max_length=options["max_length"] or self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                states = self.model(**batch).last_hidden_state
                rows = _rows(states, batch["attention_mask"], mode, options["normalize"])
                for i, row in zip(chunk, rows, strict=True):
                    results[i] = row.cpu() if options["return_tensors"] else row.tolist()
        return results


def _rows(
    states: torch.Tensor, mask: torch.Tensor, mode: str | None, normalize: bool
) -> list[torch.Tensor]:
    """Per text: its pooled vector, or its (1, tokens, hidden) states without the padding."""
    if mode is None:
        return [states[b, mask[b].bool()].float().unsqueeze(0) for b in range(len(states))]
    pooled = pool(states, mask, mode)
    return list(F.normalize(pooled, dim=-1) if normalize else pooled)
