"""Tests of ``stabcheck.judge.prior``: the loss of the best prediction that ignores the
inputs, checked against the cross-entropy of that prediction computed directly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from stabcheck.judge.prior import prior_loss


def _direct(counts: list[int], weights: list[float], normalized: bool = False) -> float:
    """The weighted cross-entropy of the best constant prediction, by brute force over
    a grid of predictions (two classes)."""
    pi = np.asarray(counts, float) / sum(counts)
    w = np.asarray(weights, float)
    q1 = np.linspace(1e-6, 1 - 1e-6, 200_001)
    losses = -(pi[0] * w[0] * np.log(1 - q1) + pi[1] * w[1] * np.log(q1))
    best = float(losses.min())
    return best / float(pi @ w) if normalized else best


def test_balanced_binary_data_without_weights_is_ln_2() -> None:
    assert prior_loss("binary_crossentropy", [10_013, 9_987], None) == \
        pytest.approx(math.log(2), abs=1e-5)


@pytest.mark.parametrize("weights", [[1.0, 1.0], [1.0, 100.0], [0.55, 5.0]])
@pytest.mark.parametrize("normalized", [False, True])
def test_weighted_prior_is_the_minimum_over_constant_predictions(
        weights: list[float], normalized: bool) -> None:
    counts = [3241, 360]
    table = {"0": weights[0], "1": weights[1]}
    strategy = "normalized-x100" if normalized else "x100"
    assert prior_loss("BinaryCrossentropy", counts, table, strategy) == pytest.approx(
        _direct(counts, weights, normalized), rel=1e-6)


def test_no_landmark_for_other_losses_or_tables_of_another_length() -> None:
    assert prior_loss("binary_focal_crossentropy", [90, 10], None) is None
    assert prior_loss("my_custom_loss", [90, 10], None) is None
    assert prior_loss("mse", [90, 10], None) is None
    assert prior_loss(None, [90, 10], None) is None
    assert prior_loss("sparse_categorical_crossentropy", [], None) is None
    assert prior_loss("sparse_categorical_crossentropy", [90, 10, 5], {"0": 1.0}) is None
