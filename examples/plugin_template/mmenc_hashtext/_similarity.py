"""A task: rank sentences by similarity to a source sentence, with any mmenc text encoder.

Subclass ``mmenc.tasks.Pipeline``: declare the call options in ``defaults``, say why an input is
invalid in ``_check``, compute one result per input in ``_run``. The base class handles one input
or a list, unknown options, bad-input reports and ``save_pretrained``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mmenc
from mmenc.inputs import check_text
from mmenc.tasks.base import Pipeline


class SentenceSimilarityPipeline(Pipeline):
    """``{"source_sentence": str, "sentences": [str, ...]}`` → ``[{"sentence", "score"}]``."""

    defaults: ClassVar[dict[str, Any]] = {"top_k": None}

    @classmethod
    def build(
        cls,
        model: Any,
        *,
        task: str,
        tokenizer: Any,
        device: Any,
        dtype: Any,
        batch_size: int | None,
        revision: str | None,
        **options: Any,
    ) -> SentenceSimilarityPipeline:
        """Called by ``mmenc.pipeline``; ``options`` become call defaults (unknown ones raise)."""
        named = isinstance(model, str)
        encoder = mmenc.load(model, device=device, dtype=dtype) if named else model
        return cls(
            encoder,
            task=task,
            batch_size=batch_size,
            options=options,
            model_reference=model if named else None,
        )

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        if not isinstance(item, dict) or not {"source_sentence", "sentences"} <= item.keys():
            return "expected a dict with 'source_sentence' and 'sentences'"
        if not isinstance(item["sentences"], list) or not item["sentences"]:
            return "'sentences' must be a non-empty list of texts"
        for text in [item["source_sentence"], *item["sentences"]]:
            if why := check_text(text):
                return why
        return None

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        results = []
        for item in items:
            scores = self.model.similarity([item["source_sentence"]], item["sentences"])[0]
            pairs = zip(item["sentences"], scores.tolist(), strict=True)
            ranked = [{"sentence": s, "score": score} for s, score in pairs]
            ranked.sort(key=lambda r: -r["score"])
            results.append(ranked[: options["top_k"]])
        return results
