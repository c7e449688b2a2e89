"""zero-shot-classification: scores for labels the model never saw, by NLI entailment.

Each (text, label) pair becomes a premise / hypothesis pair (``"This example is {label}."``).
All pairs of a call are tokenized at once, sorted by length and run in batches, so a batch
mixes texts and labels and pads little, instead of one forward pass per text or per pair.
Scores follow transformers' pipeline: a softmax of the entailment logits over the labels, or,
with ``multi_label`` (or a single label), entailment against contradiction for each label.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.inputs import check_nonblank_text
from mmenc.tasks.hf import TransformersPipeline
from mmenc_text._classify import HEADS, sequence_logits, warn_cut


class ZeroShotClassificationPipeline(TransformersPipeline):
    """``{'sequence', 'labels', 'scores'}`` per text, labels sorted by score.

    Options: ``candidate_labels`` (a list, or one string of comma-separated labels; may also be
    passed as the second argument), ``hypothesis_template`` (with ``{}`` where the label goes)
    and ``multi_label`` (each label scored on its own rather than the scores summing to one).
    """

    model_class = "AutoModelForSequenceClassification"
    heads = HEADS

    defaults: ClassVar[dict[str, Any]] = {
        "candidate_labels": None,
        "hypothesis_template": "This example is {}.",
        "multi_label": False,
    }
    default_batch_size: ClassVar[int] = 16

    def __init__(self, model: Any, preprocessor: Any = None, **kwargs: Any) -> None:
        super().__init__(model, preprocessor, **kwargs)
        self.entailment_id, self.contradiction_id = nli_label_ids(model.config)

    def __call__(self, inputs: Any, candidate_labels: Any = None, **options: Any) -> Any:
        """``classifier(text, ["sports", "politics"])`` as in transformers."""
        if candidate_labels is not None:
            options["candidate_labels"] = candidate_labels
        return super().__call__(inputs, **options)

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        return check_nonblank_text(item)

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = dict(super()._checked_options(options))
        if options.get("candidate_labels") is not None:
            options["candidate_labels"] = parse_labels(options["candidate_labels"])
        if "hypothesis_template" in options:
            check_template(options["hypothesis_template"])
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        labels = options["candidate_labels"]
        if labels is None:
            raise ValueError(
                f"{self.task} needs candidate_labels: classifier(text, candidate_labels="
                "['sports', 'politics']) or one comma-separated string"
            )
        hypotheses = [options["hypothesis_template"].format(label) for label in labels]
        premises = [text for text in items for _ in labels]
        logits, cut = sequence_logits(
            self, premises, hypotheses * len(items), truncation="only_first"
        )
        warn_cut(self, sorted({i // len(labels) for i in cut}))
        scores = self._scores(logits.view(len(items), len(labels), -1), options["multi_label"])
        results = []
        for text, row in zip(items, scores, strict=True):
            order = row.argsort(descending=True, stable=True).tolist()
            results.append(
                {
                    "sequence": text,
                    "labels": [labels[i] for i in order],
                    "scores": row[order].tolist(),
                }
            )
        return results

    def _scores(self, logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
        """(texts, labels) scores from (texts, labels, classes) logits."""
        if multi_label or logits.shape[1] == 1:
            ids = [self.contradiction_id, self.entailment_id]
            return logits[..., ids].softmax(-1)[..., 1]
        return logits[..., self.entailment_id].softmax(-1)


def nli_label_ids(config: Any) -> tuple[int, int]:
    """The ids of the entailment and contradiction labels, from ``config.id2label``.

    A model without a contradiction label (``entailment`` / ``not_entailment``) is scored
    against its first label, or its last when entailment is first, as transformers does.
    """
    labels = {int(i): str(label).lower() for i, label in config.id2label.items()}
    entailment = next((i for i, label in labels.items() if label.startswith("entail")), None)
    if entailment is None:
        name = getattr(config, "name_or_path", "") or "the model"
        raise IncompatibleModelError(
            f"zero-shot-classification needs an NLI model with an 'entailment' label; "
            f"{name!r} has the labels {list(config.id2label.values())}. Pick a model trained "
            "on NLI (MNLI), such as facebook/bart-large-mnli."
        )
    contradiction = next((i for i, label in labels.items() if label.startswith("contradict")), None)
    if contradiction is None:
        contradiction = max(labels) if entailment == 0 else 0
    return entailment, contradiction


def parse_labels(labels: Any) -> list[str]:
    """A list of labels from a list or a comma-separated string; never empty."""
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",")]
        labels = [label for label in labels if label]
    elif isinstance(labels, (list, tuple)) and all(isinstance(label, str) for label in labels):
        labels = list(labels)
    else:
        raise ValueError(
            f"candidate_labels must be a list of str or a comma-separated str, not {labels!r}"
        )
    if not labels:
        raise ValueError("candidate_labels is empty; pass at least one label")
    blank = [i for i, label in enumerate(labels) if not label.strip()]
    if blank:
        raise ValueError(f"candidate_labels has empty label(s) at position(s) {blank}")
    return labels


def check_template(template: Any) -> None:
    """A hypothesis template must take the label at its one ``{}``."""
    if not isinstance(template, str) or "{}" not in template:
        raise ValueError(
            f"hypothesis_template must contain {{}} where the label goes, e.g. "
            f"'This example is {{}}.'; got {template!r}"
        )
    try:
        template.format("label")
    except (IndexError, KeyError, ValueError) as exc:
        raise ValueError(
            f"hypothesis_template {template!r} must have exactly one {{}} and no other braces "
            f"(write {{{{ }}}} for a literal brace): {exc!r}"
        ) from None
