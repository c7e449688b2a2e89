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
from pathlib import Path
from typing import Any, ClassVar

import torch

from mmenc.inputs import check_text, text_token_limit
from mmenc.tasks.base import Pipeline
from mmenc.tasks.hf import load_pretrained

logger = logging.getLogger("mmenc")

HEADS = ("ForSequenceClassification",)
FUNCTIONS = ("default", "softmax", "sigmoid", "none")
PAIR_KEYS = frozenset({"text", "text_pair"})


class _BestLabel:
    """``top_k``'s default: the best label alone, as a dict (transformers' shape when no
    ``top_k`` is given), where any given ``top_k`` returns a list."""

    def __repr__(self) -> str:
        return "<best label>"


BEST = _BestLabel()


class TextClassificationPipeline(Pipeline):
    """Scores of a sequence classifier's labels for texts or ``{"text", "text_pair"}`` dicts.

    ``top_k``: how many labels per text, best first (None: all); ``function_to_apply``:
    ``"softmax"``, ``"sigmoid"``, ``"none"`` or ``"default"`` (sigmoid for multi-label models
    and single-logit heads, none for regression, softmax otherwise); ``return_logits``: the
    raw logits as scores, like ``function_to_apply="none"``.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "top_k": BEST,
        "function_to_apply": "default",
        "return_logits": False,
    }

    @classmethod
    def build(
        cls,
        model: Any,
        *,
        task: str,
        tokenizer: Any = None,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int | None = None,
        revision: str | None = None,
        num_labels: int | None = None,
        id2label: dict[Any, str] | Sequence[str] | None = None,
        **options: Any,
    ) -> TextClassificationPipeline:
        """``num_labels`` / ``id2label`` put a new, untrained head on the model's body."""
        head = head_options(num_labels, id2label)
        if head and not isinstance(model, (str, Path)):
            raise ValueError(
                f"{task}: num_labels / id2label build a new head while loading; pass the model "
                "by name or folder, or give the model object its head yourself"
            )
        model, tokenizer = load_pretrained(
            model,
            task=task,
            model_class="AutoModelForSequenceClassification",
            heads=HEADS,
            preprocessor=tokenizer,
            revision=revision,
            device=device,
            dtype=dtype,
            new_head=bool(head),
            **head,
        )
        return cls(model, tokenizer, task=task, batch_size=batch_size, options=options)

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """As transformers: one text without ``top_k`` still gives a list, ``[{...}]``."""
        result = super().__call__(inputs, **options)
        top_k = options.get("top_k", self.options["top_k"])
        return [result] if isinstance(inputs, str) and top_k is BEST else result

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        if isinstance(item, dict):
            if "text" not in item or not set(item) <= PAIR_KEYS:
                return f"a text pair is a dict with keys 'text' and 'text_pair', not {sorted(item)}"
            return next(filter(None, (check_words(item[key]) for key in sorted(item))), None)
        if isinstance(item, (list, tuple)):
            return "a text pair is passed as {'text': ..., 'text_pair': ...}, not as a list"
        return check_words(item)

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(super()._checked_options(options))
        top_k = options.get("top_k")
        if top_k is not None and top_k is not BEST and not _positive_int(top_k):
            raise ValueError(
                f"top_k must be a positive integer or None (all labels), not {top_k!r}"
            )
        if "function_to_apply" in options:
            name = str(options["function_to_apply"]).lower()
            if name not in FUNCTIONS:
                raise ValueError(
                    f"function_to_apply must be one of {', '.join(FUNCTIONS)}, "
                    f"not {options['function_to_apply']!r}"
                )
            options["function_to_apply"] = name
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        texts = [item["text"] if isinstance(item, dict) else item for item in items]
        pairs = [item.get("text_pair") if isinstance(item, dict) else None for item in items]
        function = self._function(options)
        logits, cut = sequence_logits(self, texts, pairs, truncation="longest_first")
        warn_cut(self, cut)
        scores = _apply(function, logits)
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
        if function != "default":
            return function
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification" or config.num_labels == 1:
            return "sigmoid"
        return "softmax"


def head_options(
    num_labels: int | None, id2label: dict[Any, str] | Sequence[str] | None
) -> dict[str, Any]:
    """``from_pretrained`` keywords for a new classification head, or {} for the model's own.

    ``id2label`` may be a list of labels or a dict (JSON keys are strings); without it the
    labels are LABEL_0 ... LABEL_{n-1}.
    """
    if id2label is None:
        if num_labels is None:
            return {}
        if not _positive_int(num_labels):
            raise ValueError(f"num_labels must be a positive integer, not {num_labels!r}")
        return {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    if isinstance(id2label, str):
        raise ValueError(f"id2label must be a dict or a list of labels, not the str {id2label!r}")
    pairs = id2label.items() if isinstance(id2label, dict) else enumerate(id2label)
    labels = {int(i): str(label) for i, label in pairs}
    if sorted(labels) != list(range(len(labels))) or not labels:
        raise ValueError(f"id2label must number its labels 0, 1, 2, ...; got ids {sorted(labels)}")
    if num_labels is not None and num_labels != len(labels):
        raise ValueError(f"num_labels={num_labels} but id2label has {len(labels)} labels")
    return {
        "id2label": labels,
        "label2id": {label: i for i, label in labels.items()},
        "ignore_mismatched_sizes": True,
    }


def check_words(item: Any) -> str | None:
    """Why ``item`` is not a text to classify: not a str, or empty (nothing to score)."""
    why = check_text(item)
    if why is None and not item.strip():
        return "the text is empty: there is nothing to classify"
    return why


def sequence_logits(
    pipeline: Pipeline, texts: list[str], pairs: list[str | None], *, truncation: str
) -> tuple[torch.Tensor, list[int]]:
    """Float32 logits (len(texts), num_labels) in input order, and the indices of the items
    that were cut to fit the model (by ``truncation``, a tokenizer strategy).

    Items are sorted by token count so that each batch pads little.
    """
    model, tokenizer = pipeline.model, pipeline.tokenizer
    limit = text_token_limit(tokenizer, model.config)
    rows, cut = _encode(tokenizer, texts, pairs, limit, truncation)
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


def warn_cut(pipeline: Pipeline, cut: Sequence[int]) -> None:
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (" ..." if len(cut) > 10 else "")
        logger.warning(
            "%s: %d input(s) are longer than the model takes (%d tokens) and were cut to fit: "
            "item(s) %s",
            pipeline.task,
            len(cut),
            text_token_limit(pipeline.tokenizer, pipeline.model.config),
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


def _apply(function: str, logits: torch.Tensor) -> torch.Tensor:
    if function == "softmax":
        return logits.softmax(-1)
    if function == "sigmoid":
        return logits.sigmoid()
    return logits


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
