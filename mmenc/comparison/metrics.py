"""Classification metrics of one zero-shot run, computed from its score matrix.

Conventions, chosen so that a report never silently mixes definitions:

- The prediction is the highest score; ties go to the lower label index (as ``argmax``), and
  top-k ranks tied labels the same way, so top-1 is exactly the accuracy of ``argmax``.
- ``top5`` with fewer than 5 labels is top-K accuracy over all K labels, that is 1.0.
- A class with no examples has recall NaN in ``per_class_recall`` and is left out of
  ``mean_recall`` and ``macro_f1``: averaging in a 0 (or a 1) for it would measure nothing.
  Predictions *of* such a class still count as mistakes against the true class.
- The F1 of a class that has examples but is never predicted is 0 (its precision is undefined,
  its recall 0).
- With no examples at all every rate is NaN and the confusion matrix is all zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Rates in [0, 1] (NaN where undefined, see the module docstring) and the confusion matrix,
    ``confusion[true][pred]`` counts, one row and one column per label."""

    top1: float
    top5: float
    mean_recall: float
    macro_f1: float
    per_class_recall: list[float]
    confusion: list[list[int]]

    @property
    def support(self) -> list[int]:
        """Examples per true class (the confusion matrix's row sums)."""
        return [sum(row) for row in self.confusion]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; NaN becomes None (JSON has no NaN)."""
        return {key: _nan_to_none(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        """The inverse of ``to_dict``: None becomes NaN again."""
        return cls(
            top1=_rate(data["top1"]),
            top5=_rate(data["top5"]),
            mean_recall=_rate(data["mean_recall"]),
            macro_f1=_rate(data["macro_f1"]),
            per_class_recall=[_rate(v) for v in data["per_class_recall"]],
            confusion=[[int(c) for c in row] for row in data["confusion"]],
        )


def compute_metrics(scores: Any, targets: Sequence[int], num_labels: int) -> Metrics:
    """Top-1, top-5, mean per-class recall, macro-F1 and the confusion matrix.

    ``scores`` is an (n, K) ``torch.Tensor`` or array (probabilities or any monotone score;
    only the ranking matters), ``targets`` the n true label indices, ``num_labels`` K.
    """
    matrix = _score_matrix(scores, num_labels)
    truth = _targets(targets, len(matrix), num_labels)
    if not len(truth):
        nan = math.nan
        zeros = [[0] * num_labels for _ in range(num_labels)]
        return Metrics(nan, nan, nan, nan, [nan] * num_labels, zeros)
    ranking = np.argsort(-matrix, axis=1, kind="stable")  # stable: ties in label order
    predicted = ranking[:, 0]
    confusion = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    in_top5 = (ranking[:, :5] == truth[:, None]).any(axis=1)
    recall, f1 = _per_class(confusion)
    present = confusion.sum(axis=1) > 0
    return Metrics(
        top1=float(np.mean(predicted == truth)),
        top5=float(np.mean(in_top5)),
        mean_recall=float(recall[present].mean()),
        macro_f1=float(f1[present].mean()),
        per_class_recall=[float(r) for r in recall],
        confusion=confusion.tolist(),
    )


def _per_class(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall (NaN for a class without examples) and F1 (0 where precision + recall is 0)."""
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, hits / support, np.nan)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        total = precision + np.nan_to_num(recall)
        f1 = np.where(total > 0, 2 * precision * np.nan_to_num(recall) / total, 0.0)
    return recall, f1


def _score_matrix(scores: Any, num_labels: int) -> np.ndarray:
    if hasattr(scores, "detach"):  # a torch.Tensor, without importing torch here
        scores = scores.detach().float().cpu().numpy()
    matrix = np.asarray(scores, dtype=np.float64)
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}.")
    if matrix.ndim != 2 or matrix.shape[1] != num_labels:
        raise ValueError(
            f"scores must have shape (n, {num_labels}) (one column per label), "
            f"got {tuple(matrix.shape)}."
        )
    bad_rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad_rows):
        raise ValueError(
            f"scores of example(s) {bad_rows[:10].tolist()} are not finite (NaN or inf): "
            "leave failed inputs out before computing metrics."
        )
    return matrix


def _targets(targets: Sequence[int], n: int, num_labels: int) -> np.ndarray:
    truth = np.asarray(targets)
    if truth.ndim != 1 or len(truth) != n:
        raise ValueError(f"expected {n} targets (one per row of scores), got {truth.shape}.")
    if len(truth) and not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"targets must be label indices (integers), got dtype {truth.dtype}.")
    bad = np.flatnonzero((truth < 0) | (truth >= num_labels))
    if len(bad):
        raise ValueError(
            f"target(s) at {bad[:10].tolist()} are outside 0..{num_labels - 1}: "
            f"{truth[bad[:10]].tolist()}."
        )
    return truth.astype(np.int64)


def _rate(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
