"""Per-class quality of a classifier's held-out predictions, in plain numpy.

Accuracy alone hides what class weighting does: a model that never predicts the minority
class of a 99:1 problem is 99% accurate. :func:`classification_metrics` reports what
reveals it: per-class recall, precision and F1, macro-F1, balanced accuracy, the predicted
vs true class distribution, the confusion matrix and, for binary problems, PR-AUC.

Workers call it with numpy arrays (class indices from ``argmax``, probabilities of class
1); the result is a JSON-safe dict of ``int``, ``float``, ``None`` and lists of them, so it
can cross the process boundary as it is. No TensorFlow, no scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stabcheck.errors import InternalError

# A k x k confusion matrix is k^2 numbers in every probe result; above this many classes
# it is left out (the per-class lists still carry recall, precision and the counts).
MAX_MATRIX_CLASSES = 50


def classification_metrics(
    true: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    scores: np.ndarray | None = None,
    max_matrix_classes: int = MAX_MATRIX_CLASSES,
    class_scores: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-class and summary metrics of ``pred`` against ``true``.

    Args:
        true: 1-D integer class indices in ``[0, n_classes)``, one per sample.
        pred: 1-D integer predicted class indices, same length.
        n_classes: number of classes (classes absent from both arrays still get a slot).
        scores: binary problems only: the predicted probability (or logit) of class 1 per
            sample, for PR-AUC; ignored when ``n_classes != 2``.
        max_matrix_classes: the confusion matrix is included only up to this many classes.
        class_scores: the model's output per sample: ``(n, n_classes)`` scores, or ``(n,)``
            (one sigmoid output: the score of class 1, class 0 ranked by its negation); for
            ``unpredicted_auc``.

    Returns:
        A JSON-safe dict with keys:

        - ``n``, ``accuracy`` (0.0 when ``n == 0``);
        - ``true_counts``, ``pred_counts``: samples per class in ``true`` / ``pred``;
        - ``recall``, ``precision``, ``f1``: one entry per class, ``None`` where undefined:
          recall when the class has no true samples, precision when it is never predicted,
          F1 when either is undefined, except that a class with true samples that is
          never predicted has F1 0.0 (it was missed entirely);
        - ``macro_f1``, ``balanced_accuracy``: mean F1 / mean recall over the classes that
          have true samples (``None`` when there are none);
        - ``pr_auc``: average precision of class 1 from ``scores`` (as scikit-learn's
          ``average_precision_score``); ``None`` unless binary with finite scores and at
          least one true sample of class 1;
        - ``confusion``: ``n_classes`` x ``n_classes`` counts, rows true, columns predicted,
          or ``None`` above ``max_matrix_classes``;
        - ``minority_class``, ``minority_recall``: the class with the fewest true samples
          among those present (ties: the one with the lowest recall, then the lowest
          index) and its recall; ``None`` when no class is present;
        - ``unpredicted_auc``: for each class with true samples that is never predicted,
          ``{"class": index, "auc": ...}``, how well the model's score for that class ranks
          its samples above the others (one-vs-rest ROC-AUC: 0.5 is no better than chance,
          1.0 every sample of the class above every other); empty without ``class_scores``;
        - ``ranking_auc``: the mean of that one-vs-rest ROC-AUC over the classes present
          (binary: class 1's): how well the model's scores rank the held-out samples,
          whatever the decision threshold does with them; ``None`` without
          ``class_scores``, or above ``max_matrix_classes`` classes.

    Raises:
        InternalError: arrays of the wrong shape, dtype or range (a caller's bug).
    """
    k = _check_n_classes(n_classes)
    t = _class_indices(true, "true", k)
    p = _class_indices(pred, "pred", k)
    if t.shape != p.shape:
        raise InternalError(
            f"classification_metrics: true and pred must have the same length "
            f"(got {t.size} and {p.size})"
        )
    n = int(t.size)
    hit = t == p
    true_counts = np.bincount(t, minlength=k)
    pred_counts = np.bincount(p, minlength=k)
    tp = np.bincount(t[hit], minlength=k)

    recall: list[float | None] = []
    precision: list[float | None] = []
    f1: list[float | None] = []
    for cls in range(k):
        r = float(tp[cls] / true_counts[cls]) if true_counts[cls] else None
        q = float(tp[cls] / pred_counts[cls]) if pred_counts[cls] else None
        recall.append(r)
        precision.append(q)
        f1.append(_f1(r, q, bool(true_counts[cls])))

    present = [cls for cls in range(k) if true_counts[cls]]
    macro_f1 = _mean([f1[cls] for cls in present])
    balanced_accuracy = _mean([recall[cls] for cls in present])
    minority: int | None = None
    if present:
        fewest = min(int(true_counts[cls]) for cls in present)
        tied = [cls for cls in present if true_counts[cls] == fewest]
        minority = min(tied, key=lambda cls: (recall[cls], cls))

    confusion = None
    if k <= max_matrix_classes:
        cells = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        confusion = [[int(v) for v in row] for row in cells]

    return {
        "n": n,
        "accuracy": float(hit.sum() / n) if n else 0.0,
        "true_counts": [int(v) for v in true_counts],
        "pred_counts": [int(v) for v in pred_counts],
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "macro_f1": macro_f1,
        "balanced_accuracy": balanced_accuracy,
        "pr_auc": _binary_pr_auc(t, scores) if k == 2 and scores is not None else None,
        "confusion": confusion,
        "minority_class": minority,
        "minority_recall": recall[minority] if minority is not None else None,
        "unpredicted_auc": _unpredicted_auc(t, class_scores, true_counts, pred_counts),
        "ranking_auc": (_ranking_auc(t, class_scores, true_counts)
                        if k <= max_matrix_classes else None),
    }


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """One-vs-rest ROC-AUC: the probability that a random positive sample scores above a
    random negative one, ties counting half (the Mann-Whitney U statistic over
    ``n_pos x n_neg``, as scikit-learn's ``roc_auc_score``). ``None`` without a positive
    and a negative sample, or with a non-finite score."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = int(positive.size) - n_pos
    if n_pos == 0 or n_neg == 0 or not np.all(np.isfinite(scores)):
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # the average 1-based rank of each distinct score: tied samples share it
    average = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(np.sum(average[inverse.reshape(-1)][positive]))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _class_column(s: np.ndarray, cls: int) -> np.ndarray:
    """The score that ranks class ``cls``: its column, or with one sigmoid output class
    1's score (class 0 ranked by its negation)."""
    if s.ndim == 1:
        return s if cls == 1 else -s
    return s[:, cls]


def _scores(class_scores: np.ndarray, n: int) -> np.ndarray:
    s = np.asarray(class_scores, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape[0] != n:
        raise InternalError(
            f"classification_metrics: class_scores must hold one row per sample "
            f"(got shape {s.shape} for {n} samples)")
    return s


def _ranking_auc(true: np.ndarray, class_scores: np.ndarray | None,
                 true_counts: np.ndarray) -> float | None:
    if class_scores is None:
        return None
    s = _scores(class_scores, true.size)
    present = [cls for cls in range(true_counts.size) if true_counts[cls]]
    if s.ndim == 1 or len(present) == 2 and true_counts.size == 2:
        return roc_auc(true == 1, _class_column(s, 1))  # binary: one ranking
    aucs = [roc_auc(true == cls, _class_column(s, cls)) for cls in present]
    found = [a for a in aucs if a is not None]
    return float(np.mean(found)) if found and len(found) == len(aucs) else None


def _unpredicted_auc(true: np.ndarray, class_scores: np.ndarray | None,
                     true_counts: np.ndarray, pred_counts: np.ndarray) -> list[dict[str, Any]]:
    if class_scores is None:
        return []
    s = _scores(class_scores, true.size)
    return [{"class": cls, "auc": roc_auc(true == cls, _class_column(s, cls))}
            for cls in range(true_counts.size) if true_counts[cls] and not pred_counts[cls]]


def average_precision(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision of the positive class: ``sum_k (R_k - R_{k-1}) P_k``.

    ``P_k`` and ``R_k`` are precision and recall when every sample scoring at least the
    k-th highest distinct score is called positive (tied scores enter together), as in
    scikit-learn's ``average_precision_score``. ``None`` without any positive sample.

    Args:
        positive: 1-D booleans, True for the samples of the positive class.
        scores: 1-D finite scores, higher meaning more likely positive.
    """
    n_pos = int(np.count_nonzero(positive))
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    ranked = scores[order]
    hits = np.cumsum(positive[order])
    # the last index of each run of equal scores: one threshold per distinct score
    ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tps = hits[ends]
    called = ends + 1
    prec = tps / called
    rec = tps / n_pos
    gain = np.diff(np.r_[0.0, rec])
    return float(np.sum(gain * prec))


# ------------------------------------------------------------------------------ helpers


def _f1(recall: float | None, precision: float | None, has_true: bool) -> float | None:
    if has_true and precision is None:
        return 0.0  # never predicted: every true sample missed
    if recall is None or precision is None:
        return None
    if recall + precision == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(sum(defined) / len(defined)) if defined else None


def _binary_pr_auc(true: np.ndarray, scores: np.ndarray) -> float | None:
    s = np.asarray(scores)
    if s.dtype.kind not in "biuf":
        raise InternalError(f"classification_metrics: scores must be numeric (got {s.dtype})")
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape != true.shape:
        raise InternalError(
            f"classification_metrics: scores must hold one value per sample "
            f"(got shape {s.shape} for {true.size} samples)"
        )
    s = s.astype(np.float64)
    if np.isnan(s).any():
        return None  # a diverged model's NaN outputs rank nothing
    return average_precision(true == 1, s)


def _check_n_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise InternalError(f"classification_metrics: n_classes must be an int ({n_classes!r})")
    if n_classes < 1:
        raise InternalError(f"classification_metrics: n_classes must be >= 1 ({n_classes})")
    return int(n_classes)


def _class_indices(values: np.ndarray, name: str, k: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InternalError(
            f"classification_metrics: {name} must be 1-D class indices (got shape {arr.shape})"
        )
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "biu":
        raise InternalError(
            f"classification_metrics: {name} must hold integer class indices (got {arr.dtype})"
        )
    arr = arr.astype(np.int64)
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= k:
        bad = low if low < 0 else high
        raise InternalError(
            f"classification_metrics: {name} holds class index {bad}, outside [0, {k})"
        )
    return arr


def regression_metrics(true: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Held-out errors of a regression model: MAE, RMSE and R².

    Args:
        true: the targets, ``(n,)`` or ``(n, k)``.
        pred: the model's predictions, the same number of values per row (a ``(n, 1)``
            output against a ``(n,)`` target is one column).

    Returns:
        A JSON-safe dict: ``n``; ``mae`` and ``rmse`` over every value (the target's
        units); ``r2``, the coefficient of determination ``1 - SSE / SST`` against the
        held-out mean, averaged over the target's columns (as scikit-learn's
        ``r2_score``, ``multioutput="uniform_average"``), over the columns that vary;
        ``target_mean``, ``target_std``, ``pred_mean``, ``pred_std``. A value is ``None``
        where it is undefined: no rows, non-finite predictions, or (``r2``) a constant
        target.

    Raises:
        InternalError: the arrays do not hold the same number of values (a caller's bug).
    """
    t = np.asarray(true, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    n = int(t.shape[0]) if t.ndim else 0
    t = t.reshape(n, -1)
    if p.size != t.size:
        raise InternalError(
            f"regression_metrics: {p.size} predictions for {t.size} target values")
    p = p.reshape(t.shape)
    out: dict[str, Any] = {"n": n, "mae": None, "rmse": None, "r2": None,
                           "target_mean": None, "target_std": None,
                           "pred_mean": None, "pred_std": None}
    if n == 0:
        return out
    out["target_mean"], out["target_std"] = float(t.mean()), float(t.std())
    if not np.all(np.isfinite(p)):
        return out
    err = p - t
    out["mae"] = float(np.mean(np.abs(err)))
    out["rmse"] = float(np.sqrt(np.mean(err * err)))
    out["pred_mean"], out["pred_std"] = float(p.mean()), float(p.std())
    sse = np.sum(err * err, axis=0)
    sst = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    varies = sst > 0
    if varies.any():
        r2 = 1.0 - sse[varies] / sst[varies]
        out["r2"] = float(np.mean(r2)) if np.all(np.isfinite(r2)) else None
    return out
