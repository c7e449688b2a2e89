"""text-classification / sentiment-analysis: a label and its score per text, or per text pair.

Outputs are shaped like transformers' pipeline: ``[{'label', 'score'}]`` for one text,
one dict per text for a list, and a sorted list of dicts per text once ``top_k`` is given.
Texts are tokenized in one call, sorted by token count and run in batches that pad little.
The batching helpers here serve zero-shot classification too, which scores text pairs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from mmenc.inputs import check_nonblank_text
from mmenc.tasks.base import checked_choice, is_positive_int
from mmenc.tasks.hf import FUNCTIONS, TransformersPipeline, apply_function, default_function

logger = logging.getLogger("mmenc")

HEADS = ("ForSequenceClassification",)
PAIR_KEYS = frozenset({"text", "text_pair"})


class _BestLabel:
    """``top_k``'s default: the best label alone, as a dict (transformers' shape when no
    ``top_k`` is given), where any given ``top_k`` returns a list."""

    def __repr__(self) -> str:
        return "<best label>"


BEST = _BestLabel()


class TextClassificationPipeline(TransformersPipeline):
    """Scores of a sequence classifier's labels for texts or ``{"text", "text_pair"}`` dicts.

    ``top_k``: how many labels per text, best first (None: all); ``function_to_apply``:
    ``"softmax"``, ``"sigmoid"``, ``"none"`` or ``"default"`` (sigmoid for multi-label models
    and single-logit heads, none for regression, softmax otherwise); ``return_logits``: the
    raw logits as scores, like ``function_to_apply="none"``. ``num_labels`` / ``id2label``
    put a new, untrained head on the model's body.
    """

    model_class = "AutoModelForSequenceClassification"
    heads = HEADS
    new_head_allowed = True

    defaults: ClassVar[dict[str, Any]] = {
        "top_k": BEST,
        "function_to_apply": "default",
        "return_logits": False,
    }

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """As transformers: one text without ``top_k`` still gives a list, ``[{...}]``."""
        result = super().__call__(inputs, **options)
        top_k = options.get("top_k", self.options["top_k"])
        return [result] if isinstance(inputs, str) and top_k is BEST else result

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        if isinstance(item, dict):
            if "text" not in item or not set(item) <= PAIR_KEYS:
                return f"a text pair is a dict with keys 'text' and 'text_pair', not {sorted(item)}"
            return next(
                filter(None, (check_nonblank_text(item[key]) for key in sorted(item))), None
            )
        if isinstance(item, (list, tuple)):
            return "a text pair is passed as {'text': ..., 'text_pair': ...}, not as a list"
        return check_nonblank_text(item)

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(super()._checked_options(options))
        top_k = options.get("top_k")
        if top_k is not None and top_k is not BEST and not is_positive_int(top_k):
            raise ValueError(
                f"top_k must be a positive integer or None (all labels), not {top_k!r}"
            )
        if "function_to_apply" in options:
            function = options["function_to_apply"]
            options["function_to_apply"] = checked_choice("function_to_apply", function, FUNCTIONS)
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        texts = [item["text"] if isinstance(item, dict) else item for item in items]
        pairs = [item.get("text_pair") if isinstance(item, dict) else None for item in items]
        function = self._function(options)
        logits, cut = sequence_logits(self, texts, pairs, truncation="longest_first")
        warn_cut(self, cut)
        scores = apply_function(function, logits)
        labels = self.model.config.id2label
        top_k = options["top_k"]
        results: list[Any] = []
        for row in scores.tolist():
            ranked = sorted(range(len(row)), key=lambda i: -row[i])
            ranked = ranked[:top_k] if isinstance(top_k, int) else ranked
            best = [{"label": labels[i], "score": row[i]} for i in ranked]
            results.append(best[0] if top_k is BEST else best)
        return results

    def _function(self, options: dict[str, Any]) -> str:
        """The function that turns logits into scores, resolving ``"default"`` from the
        model's ``problem_type`` and label count as transformers does."""
        function: str = options["function_to_apply"]
        if options["return_logits"]:
            if function not in ("default", "none"):
                raise ValueError(
                    f"return_logits=True returns the raw logits; it contradicts "
                    f"function_to_apply={function!r} (drop one of them)"
                )
            return "none"
        return default_function(self.model.config) if function == "default" else function


def sequence_logits(
    pipeline: TransformersPipeline,
    texts: list[str],
    pairs: list[str | None],
    *,
    truncation: str,
) -> tuple[torch.Tensor, list[int]]:
    """Float32 logits (len(texts), num_labels) in input order, and the indices of the items
    that were cut to fit the model (by ``truncation``, a tokenizer strategy).

    Items are sorted by token count so that each batch pads little.
    """
    model, tokenizer = pipeline.model, pipeline.tokenizer
    rows, cut = _encode(tokenizer, texts, pairs, pipeline.max_tokens, truncation)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    # as transformers' pipelines: a classifier needs no decoder cache (BART's decoder)
    takes_cache = "use_cache" in inspect.signature(model.forward).parameters
    extra = {"use_cache": False} if takes_cache else {}
    logits = torch.empty(len(rows), model.config.num_labels)
    with torch.inference_mode():
        for chunk in pipeline.batches(order):
            batch = tokenizer.pad([rows[i] for i in chunk], return_tensors="pt")
            logits[chunk] = model(**batch.to(model.device), **extra).logits.float().cpu()
    return logits, cut


def warn_cut(pipeline: TransformersPipeline, cut: Sequence[int]) -> None:
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (" ..." if len(cut) > 10 else "")
        logger.warning(
            "%s: %d input(s) are longer than the model takes (%d tokens) and were cut to fit: "
            "item(s) %s",
            pipeline.task,
            len(cut),
            pipeline.max_tokens,
            shown,
        )


def _encode(
    tokenizer: Any, texts: list[str], pairs: list[str | None], limit: int, truncation: str
) -> tuple[list[dict[str, list[int]]], list[int]]:
    """Unpadded model inputs per item; only the items over ``limit`` tokens are re-tokenized
    with truncation, so the caller learns which were cut."""
    rows = _tokenize(tokenizer, texts, pairs, {"verbose": False})  # we warn ourselves
    cut = [i for i, row in enumerate(rows) if len(row["input_ids"]) > limit]
    if cut:
        kwargs = {"truncation": truncation, "max_length": limit}
        try:
            shortened = _tokenize(
                tokenizer, [texts[i] for i in cut], [pairs[i] for i in cut], kwargs
            )
        except Exception as exc:  # the tokenizer found no way to cut: a huge second text
            raise ValueError(
                f"cannot cut the input to the model's {limit} tokens by {truncation!r}: {exc}. "
                "Shorten the text pair (or the labels / hypothesis template)."
            ) from exc
        for i, row in zip(cut, shortened, strict=True):
            rows[i] = row
    return rows, cut


def _tokenize(
    tokenizer: Any, texts: list[str], pairs: list[str | None], kwargs: dict[str, Any]
) -> list[dict[str, list[int]]]:
    """One tokenizer call for the single texts and one for the pairs (a call takes one kind)."""
    rows: list[dict[str, list[int]]] = [{} for _ in texts]
    for paired in (False, True):
        indices = [i for i, pair in enumerate(pairs) if (pair is not None) == paired]
        if not indices:
            continue
        args = [[texts[i] for i in indices]]
        if paired:
            args.append([pairs[i] for i in indices])  # type: ignore[misc]
        encoded = tokenizer(*args, **kwargs)
        for n, i in enumerate(indices):
            rows[i] = {key: values[n] for key, values in encoded.items()}
    return rows
