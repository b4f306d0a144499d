"""Tests of ``stabcheck.worker.metrics``: hand-computed tables, then scikit-learn as the oracle."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from stabcheck.errors import InternalError
from stabcheck.worker.metrics import average_precision, classification_metrics, roc_auc

# --------------------------------------------------------------------------- hand-computed

# Each case: true, pred, n_classes, and the expected values of some keys.
_CASES = {
    "binary-mixed": (
        [0, 0, 0, 0, 1, 1],
        [0, 0, 1, 0, 1, 0],
        2,
        {
            "n": 6,
            "accuracy": 4 / 6,
            "true_counts": [4, 2],
            "pred_counts": [4, 2],
            "recall": [3 / 4, 1 / 2],
            "precision": [3 / 4, 1 / 2],
            "f1": [3 / 4, 1 / 2],
            "macro_f1": (3 / 4 + 1 / 2) / 2,
            "balanced_accuracy": (3 / 4 + 1 / 2) / 2,
            "confusion": [[3, 1], [1, 1]],
            "minority_class": 1,
            "minority_recall": 1 / 2,
        },
    ),
    "never-predicted": (  # the minority collapses: class 1 has 2 true samples, 0 predictions
        [0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0],
        2,
        {
            "accuracy": 3 / 5,
            "pred_counts": [5, 0],
            "recall": [1.0, 0.0],
            "precision": [3 / 5, None],
            "f1": [2 * (3 / 5) / (1 + 3 / 5), 0.0],
            "macro_f1": (0.75 + 0.0) / 2,
            "balanced_accuracy": 0.5,
            "confusion": [[3, 0], [2, 0]],
            "minority_class": 1,
            "minority_recall": 0.0,
        },
    ),
    "absent-from-true": (  # class 2 never occurs but is predicted once
        [0, 0, 1, 1],
        [0, 2, 1, 1],
        3,
        {
            "true_counts": [2, 2, 0],
            "pred_counts": [1, 2, 1],
            "recall": [1 / 2, 1.0, None],
            "precision": [1.0, 1.0, 0.0],
            "f1": [2 / 3, 1.0, None],
            "macro_f1": (2 / 3 + 1.0) / 2,
            "balanced_accuracy": 0.75,
            "confusion": [[1, 0, 1], [0, 2, 0], [0, 0, 0]],
            "minority_class": 0,  # tie on 2 samples: the lower recall wins
            "minority_recall": 0.5,
        },
    ),
    "absent-everywhere": (  # class 1 neither true nor predicted: all undefined
        [0, 2, 2],
        [0, 2, 0],
        3,
        {
            "recall": [1.0, None, 1 / 2],
            "precision": [1 / 2, None, 1.0],
            "f1": [2 / 3, None, 2 / 3],
            "macro_f1": 2 / 3,
            "minority_class": 0,
            "minority_recall": 1.0,
        },
    ),
    "all-one-class": (
        [1, 1, 1],
        [1, 1, 1],
        2,
        {
            "accuracy": 1.0,
            "true_counts": [0, 3],
            "recall": [None, 1.0],
            "precision": [None, 1.0],
            "f1": [None, 1.0],
            "macro_f1": 1.0,
            "balanced_accuracy": 1.0,
            "confusion": [[0, 0], [0, 3]],
            "minority_class": 1,
            "minority_recall": 1.0,
        },
    ),
    "all-wrong": (
        [0, 1, 2],
        [1, 2, 0],
        3,
        {
            "accuracy": 0.0,
            "recall": [0.0, 0.0, 0.0],
            "precision": [0.0, 0.0, 0.0],
            "f1": [0.0, 0.0, 0.0],
            "macro_f1": 0.0,
            "balanced_accuracy": 0.0,
        },
    ),
    "overcorrected": (  # balanced weights over-predict the rare class
        [0, 0, 0, 0, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        2,
        {
            "accuracy": 4 / 8,
            "pred_counts": [2, 6],
            "recall": [2 / 6, 1.0],
            "precision": [1.0, 2 / 6],
            "f1": [0.5, 0.5],
            "minority_class": 1,
            "minority_recall": 1.0,
        },
    ),
}


@pytest.mark.parametrize("case", list(_CASES), ids=list(_CASES))
def test_hand_computed(case: str) -> None:
    true, pred, k, expected = _CASES[case]
    got = classification_metrics(np.array(true), np.array(pred), k)
    for key, value in expected.items():
        assert _close(got[key], value), (key, got[key], value)


@pytest.mark.parametrize(
    ("true", "scores", "expected"),
    [
        # ranked 0.9(+) 0.8(-) 0.7(+) 0.1(-): P@R=.5 is 1, P@R=1 is 2/3
        ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], 0.5 * 1.0 + 0.5 * (2 / 3)),
        ([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 1.0),  # perfect ranking
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.5 * (1 / 3) + 0.5 * (2 / 4)),
        # a tie between a positive and a negative at the top enters as one threshold
        ([1, 0, 1], [0.5, 0.5, 0.1], 0.5 * (1 / 2) + 0.5 * (2 / 3)),
        ([1, 1, 1], [0.3, 0.2, 0.1], 1.0),  # only positives
        ([0, 1, 0], [2.0, -1.0, -3.0], 1 / 2),  # logits rank the same as probabilities
    ],
)
def test_pr_auc_hand_computed(true: list[int], scores: list[float], expected: float) -> None:
    got = classification_metrics(np.array(true), np.zeros(len(true), int), 2, np.array(scores))
    assert got["pr_auc"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("true", "k", "scores"),
    [
        ([0, 0, 0], 2, [0.1, 0.2, 0.3]),  # class 1 absent
        ([0, 1, 2], 3, [0.1, 0.2, 0.3]),  # multi-class
        ([0, 1, 1], 2, None),  # no scores
        ([0, 1, 1], 2, [0.1, np.nan, 0.3]),  # a diverged model's NaN output
        ([], 2, []),
    ],
)
def test_pr_auc_none(true: list[int], k: int, scores: list[float] | None) -> None:
    s = None if scores is None else np.array(scores, dtype=float)
    got = classification_metrics(np.array(true, dtype=int), np.array(true, dtype=int), k, s)
    assert got["pr_auc"] is None


def test_scores_as_a_column_are_accepted() -> None:
    true = np.array([1, 0, 1, 0])
    flat = classification_metrics(true, true, 2, np.array([0.9, 0.8, 0.7, 0.1]))
    column = classification_metrics(true, true, 2, np.array([[0.9], [0.8], [0.7], [0.1]]))
    assert flat["pr_auc"] == column["pr_auc"]


def test_empty_input_has_no_warnings_and_no_division() -> None:
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        got = classification_metrics(np.array([], dtype=np.int64), np.array([]), 3, np.array([]))
    assert got == {
        "n": 0,
        "accuracy": 0.0,
        "true_counts": [0, 0, 0],
        "pred_counts": [0, 0, 0],
        "recall": [None, None, None],
        "precision": [None, None, None],
        "f1": [None, None, None],
        "macro_f1": None,
        "balanced_accuracy": None,
        "pr_auc": None,
        "confusion": [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
        "minority_class": None,
        "minority_recall": None,
        "unpredicted_auc": [],
        "ranking_auc": None,
    }


def test_edge_cases_raise_no_numpy_warnings() -> None:
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for true, pred, k, _ in _CASES.values():
            classification_metrics(np.array(true), np.array(pred), k, None)


def test_confusion_matrix_is_left_out_above_the_limit() -> None:
    true = np.arange(60) % 60
    got = classification_metrics(true, true, 60)
    assert got["confusion"] is None
    assert got["accuracy"] == 1.0 and len(got["recall"]) == 60
    small = classification_metrics(true % 5, true % 5, 5, max_matrix_classes=5)
    assert small["confusion"] is not None
    assert classification_metrics(true % 5, true % 5, 5, max_matrix_classes=4)["confusion"] is None


def test_result_is_json_safe_plain_python() -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 2, 50)
    got = classification_metrics(true, rng.integers(0, 2, 50), 2, rng.random(50).astype(np.float32))
    assert json.loads(json.dumps(got, allow_nan=False)) == got
    for value in got.values():
        assert value is None or type(value) in (int, float, list)


@pytest.mark.parametrize(
    ("true", "pred", "k", "match"),
    [
        ([0, 1], [0, 1, 1], 2, "same length"),
        ([0, 2], [0, 1], 2, "class index 2"),
        ([0, 1], [0, -1], 2, "class index -1"),
        ([0.0, 1.0], [0, 1], 2, "integer class indices"),
        ([[0, 1]], [[0, 1]], 2, "1-D"),
        ([0, 1], [0, 1], 0, "n_classes"),
    ],
)
def test_bad_arrays_are_a_callers_bug(true, pred, k, match) -> None:
    with pytest.raises(InternalError, match=match):
        classification_metrics(np.array(true), np.array(pred), k)


def test_scores_of_the_wrong_length_raise() -> None:
    with pytest.raises(InternalError, match="one value per sample"):
        classification_metrics(np.array([0, 1]), np.array([0, 1]), 2, np.array([0.5]))


# ------------------------------------------------------------------------ scikit-learn oracle


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [2, 3, 7])
def test_matches_sklearn_on_random_data(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    # skewed class frequencies, so some classes are rare or absent
    p = rng.dirichlet(np.full(k, 0.5))
    true = rng.choice(k, size=n, p=p)
    pred = np.where(rng.random(n) < 0.6, true, rng.choice(k, size=n, p=p[::-1]))
    got = classification_metrics(true, pred, k)

    labels = list(range(k))
    prec, rec, f1, support = precision_recall_fscore_support(
        true, pred, labels=labels, zero_division=np.nan
    )
    assert got["true_counts"] == support.tolist()
    assert got["confusion"] == confusion_matrix(true, pred, labels=labels).tolist()
    for cls in labels:
        has_true, predicted = support[cls] > 0, got["pred_counts"][cls] > 0
        assert _close(got["recall"][cls], rec[cls] if has_true else None)
        assert _close(got["precision"][cls], prec[cls] if predicted else None)
        if has_true:
            assert got["f1"][cls] == pytest.approx(0.0 if not predicted else f1[cls])
    present = [c for c in labels if support[c] > 0]
    assert got["macro_f1"] == pytest.approx(
        f1_score(true, pred, labels=present, average="macro", zero_division=0.0)
    )


@pytest.mark.parametrize("seed", range(10))
def test_pr_auc_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    true = (rng.random(n) < rng.uniform(0.02, 0.5)).astype(np.int64)
    true[0] = 1  # at least one positive
    # coarse scores (many ties) on odd seeds, continuous ones on even seeds
    scores = rng.random(n) + 0.8 * true
    if seed % 2:
        scores = np.round(scores, 1)
    got = classification_metrics(true, (scores > 0.5).astype(int), 2, scores)
    assert got["pr_auc"] == pytest.approx(average_precision_score(true, scores))
    assert average_precision(true == 1, scores) == pytest.approx(got["pr_auc"])


@pytest.mark.parametrize("seed", range(10))
def test_roc_auc_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 300))
    true = rng.random(n) < rng.uniform(0.02, 0.5)
    true[0], true[1] = True, False  # one of each
    scores = rng.normal(size=n) + rng.uniform(-1, 2) * true
    if seed % 2:  # many ties
        scores = np.round(scores, 1)
    assert roc_auc(true, scores) == pytest.approx(roc_auc_score(true, scores))


def test_roc_auc_is_undefined_without_both_classes_or_with_a_nan() -> None:
    assert roc_auc(np.array([True, True]), np.array([0.1, 0.2])) is None
    assert roc_auc(np.array([True, False]), np.array([np.nan, 0.2])) is None


def test_unpredicted_auc_names_each_class_never_predicted_and_ranks_it() -> None:
    """Softmax scores: class 2 is never predicted, yet its own score ranks its samples
    first (AUC 1.0); class 1, predicted, gets no entry. One sigmoid output: class 0 is
    ranked by the negated score of class 1."""
    true = np.array([0, 0, 0, 1, 1, 2, 2])
    scores = np.array([[.8, .1, .1], [.7, .2, .1], [.6, .3, .1], [.2, .7, .1],
                       [.3, .6, .1], [.5, .1, .4], [.45, .2, .35]])
    got = classification_metrics(true, scores.argmax(1), 3, class_scores=scores)
    assert got["unpredicted_auc"] == [
        {"class": 2, "auc": pytest.approx(roc_auc_score(true == 2, scores[:, 2]))}]
    assert got["unpredicted_auc"][0]["auc"] == pytest.approx(1.0)
    sigmoid = np.array([0.9, 0.8, 0.7, 0.95])
    got = classification_metrics(np.array([0, 1, 1, 1]), np.ones(4, dtype=int), 2,
                                 class_scores=sigmoid)
    assert got["unpredicted_auc"] == [{"class": 0, "auc": pytest.approx(
        roc_auc_score([1, 0, 0, 0], -sigmoid))}]
    assert classification_metrics(true, scores.argmax(1), 3)["unpredicted_auc"] == []


def _close(got: object, expected: object) -> bool:
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(
            _close(g, e) for g, e in zip(got, expected, strict=True)
        )
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return got is None
    if isinstance(expected, float):
        return isinstance(got, float) and got == pytest.approx(expected)
    return got == expected


def test_ranking_auc_is_the_mean_one_vs_rest_auc_whatever_the_threshold_predicts() -> None:
    """Scores that rank every sample of its class first give 1.0 even where the
    argmax predicts one class only; scores that rank nothing give 0.5; one sigmoid
    output ranks class 1 by its score."""
    true = np.array([0, 0, 0, 1, 1, 2])
    # every row's argmax is class 0, yet each class's own column ranks its samples first
    scores = np.array([[0.9, 0.0, 0.0], [0.9, 0.0, 0.0], [0.9, 0.0, 0.0],
                       [0.8, 0.1, 0.0], [0.8, 0.1, 0.0], [0.7, 0.0, 0.2]])
    out = classification_metrics(true, scores.argmax(axis=1), 3, class_scores=scores)
    assert out["pred_counts"] == [6, 0, 0]
    assert out["ranking_auc"] == pytest.approx(1.0)
    flat = np.full((6, 3), 1 / 3)
    assert classification_metrics(true, np.zeros(6, int), 3,
                                  class_scores=flat)["ranking_auc"] == pytest.approx(0.5)
    binary = np.array([0, 0, 1, 1])
    sigmoid = np.array([0.1, 0.4, 0.35, 0.8])  # one of four pairs out of order
    out = classification_metrics(binary, (sigmoid > 0.5).astype(int), 2,
                                 class_scores=sigmoid)
    assert out["ranking_auc"] == pytest.approx(0.75)
