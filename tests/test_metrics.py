"""compute_metrics on hand-made confusion cases, edge cases, and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmenc.comparison.metrics import Metrics, compute_metrics


def one_hot(predicted: list[int], num_labels: int) -> np.ndarray:
    """Scores whose argmax is ``predicted``, with the other labels ranked by index."""
    scores = np.tile(-np.arange(num_labels, dtype=np.float64), (len(predicted), 1)) / 100
    scores[np.arange(len(predicted)), predicted] = 1.0
    return scores


def test_perfect_predictions():
    truth = [0, 1, 2, 2, 1, 0]
    m = compute_metrics(one_hot(truth, 3), truth, 3)
    assert (m.top1, m.top5, m.mean_recall, m.macro_f1) == (1.0, 1.0, 1.0, 1.0)
    assert m.per_class_recall == [1.0, 1.0, 1.0]
    assert m.confusion == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert m.support == [2, 2, 2]


def test_all_wrong():
    truth = [0, 1, 2, 3, 4, 5]
    predicted = [(t + 1) % 6 for t in truth]
    m = compute_metrics(one_hot(predicted, 6), truth, 6)
    assert (m.top1, m.mean_recall, m.macro_f1) == (0.0, 0.0, 0.0)
    assert m.per_class_recall == [0.0] * 6
    assert all(m.confusion[t][(t + 1) % 6] == 1 for t in truth)
    assert sum(map(sum, m.confusion)) == 6


def test_a_class_never_predicted_has_f1_zero():
    truth = [0, 0, 1, 1, 2, 2]
    predicted = [0, 0, 1, 1, 1, 1]
    m = compute_metrics(one_hot(predicted, 3), truth, 3)
    assert m.confusion == [[2, 0, 0], [0, 2, 0], [0, 2, 0]]
    assert m.per_class_recall == [1.0, 1.0, 0.0]
    assert m.top1 == pytest.approx(4 / 6)
    assert m.mean_recall == pytest.approx(2 / 3)
    # F1: class 0 = 1; class 1: precision 1/2, recall 1 -> 2/3; class 2 (never predicted) = 0
    assert m.macro_f1 == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_a_class_without_examples_is_left_out_of_the_means():
    truth = [0, 0, 1, 1]
    predicted = [0, 2, 1, 1]  # label 2 has no examples but is predicted once
    m = compute_metrics(one_hot(predicted, 3), truth, 3)
    assert m.per_class_recall[:2] == [0.5, 1.0] and math.isnan(m.per_class_recall[2])
    assert m.mean_recall == pytest.approx(0.75)
    # class 0: P 1, R 1/2 -> 2/3; class 1: P 1, R 1 -> 1; class 2 left out
    assert m.macro_f1 == pytest.approx((2 / 3 + 1) / 2)
    assert m.confusion[0] == [1, 0, 1] and m.support == [2, 2, 0]


def test_top5_counts_the_five_best_labels():
    # label 0 true everywhere; its rank is 1..7 in the seven rows
    scores = np.array([np.roll(np.arange(7, 0, -1), r) for r in range(7)], dtype=np.float64)
    m = compute_metrics(scores, [0] * 7, 7)
    assert m.top1 == pytest.approx(1 / 7)
    assert m.top5 == pytest.approx(5 / 7)


@pytest.mark.parametrize("num_labels", [2, 3, 4])
def test_top5_with_fewer_than_five_labels_is_top_k(num_labels):
    truth = list(range(num_labels))
    predicted = [(t + 1) % num_labels for t in truth]
    m = compute_metrics(one_hot(predicted, num_labels), truth, num_labels)
    assert m.top1 == 0.0
    assert m.top5 == 1.0


def test_ties_go_to_the_lower_label_index():
    scores = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    m = compute_metrics(scores, [1, 2], 3)
    assert m.confusion == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert m.top1 == 0.0


def test_torch_tensors_give_the_same_metrics():
    rng = np.random.default_rng(0)
    scores = rng.random((40, 6)).astype(np.float32)
    truth = rng.integers(0, 6, 40)
    from_numpy = compute_metrics(scores, truth.tolist(), 6)
    from_torch = compute_metrics(torch.from_numpy(scores), torch.from_numpy(truth).tolist(), 6)
    assert from_torch == from_numpy


def test_agrees_with_scikit_learn():
    from sklearn import metrics as skm

    rng = np.random.default_rng(1)
    n, k = 300, 8
    truth = rng.integers(0, k - 1, n)  # the last label has no examples
    scores = rng.random((n, k))
    scores[np.arange(n), truth] += rng.random(n)
    predicted = scores.argmax(axis=1)
    present = sorted(set(truth.tolist()))
    m = compute_metrics(scores, truth.tolist(), k)
    assert m.top1 == pytest.approx(skm.accuracy_score(truth, predicted))
    assert m.top5 == pytest.approx(
        skm.top_k_accuracy_score(truth, scores, k=5, labels=list(range(k)))
    )
    assert m.mean_recall == pytest.approx(
        skm.recall_score(truth, predicted, labels=present, average="macro")
    )
    assert m.macro_f1 == pytest.approx(
        skm.f1_score(truth, predicted, labels=present, average="macro")
    )
    assert m.confusion == skm.confusion_matrix(truth, predicted, labels=list(range(k))).tolist()
    assert math.isnan(m.per_class_recall[-1])


def test_no_examples_gives_nan_rates():
    m = compute_metrics(np.zeros((0, 3)), [], 3)
    assert all(math.isnan(v) for v in (m.top1, m.top5, m.mean_recall, m.macro_f1))
    assert m.confusion == [[0] * 3] * 3


@pytest.mark.parametrize(
    ("scores", "targets", "message"),
    [
        (np.zeros((2, 4)), [0, 1], r"shape \(n, 3\)"),
        (np.zeros(3), [0], r"shape \(n, 3\)"),
        (np.zeros((2, 3)), [0], "expected 2 targets"),
        (np.zeros((2, 3)), [0, 3], r"target\(s\) at \[1\] are outside 0..2: \[3\]"),
        (np.zeros((2, 3)), [-1, 0], "outside"),
        (np.zeros((2, 3)), [0.0, 1.0], "integers"),
        (np.array([[0.1, 0.2, 0.3], [np.nan, 0.1, 0.2]]), [0, 1], r"example\(s\) \[1\]"),
    ],
)
def test_bad_input_is_refused_clearly(scores, targets, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(scores, targets, 3)


def test_dict_round_trip_keeps_nan():
    m = compute_metrics(one_hot([0, 2, 1, 1], 3), [0, 0, 1, 1], 3)
    data = m.to_dict()
    assert data["per_class_recall"][2] is None
    back = Metrics.from_dict(data)
    assert back.confusion == m.confusion and back.top1 == m.top1
    assert math.isnan(back.per_class_recall[2])
