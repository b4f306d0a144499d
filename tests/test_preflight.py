"""Tests of ``stabcheck.preflight``: label / loss / output / class-weight checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from stabcheck.errors import InputError
from stabcheck.preflight import canonical_loss_name, check_class_weights, check_labels_vs_loss


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
        ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"),
        ("SparseCategoricalCrossEntropy", "sparse_categorical_crossentropy"),
        ("categorical_crossentropy", "categorical_crossentropy"),
        ("CategoricalCrossentropy", "categorical_crossentropy"),
        ("categorical_cross_entropy", "categorical_crossentropy"),
        ("binary_crossentropy", "binary_crossentropy"),
        ("BinaryCrossentropy", "binary_crossentropy"),
        ("BinaryFocalCrossentropy", "binary_focal_crossentropy"),
        ("CategoricalFocalCrossentropy", "categorical_focal_crossentropy"),
        ("mse", "mse"),
        ("MeanSquaredError", "mean_squared_error"),
    ],
)
def test_canonical_loss_name(name: str, canonical: str) -> None:
    assert canonical_loss_name(name) == canonical


# --------------------------------------------------------------------------- labels vs loss


@pytest.mark.parametrize(
    ("loss", "label_format", "n_classes", "output_units", "needle"),
    [
        # one-hot labels with a sparse loss
        ("sparse_categorical_crossentropy", "onehot", 3, None, "one-hot"),
        ("SparseCategoricalCrossentropy", "onehot", 10, 10, "one-hot"),
        # integer labels with a categorical loss
        ("categorical_crossentropy", "sparse", 3, None, "integer class indices"),
        ("CategoricalCrossentropy", "binary", 2, 2, "integer class indices"),
        ("categorical_focal_crossentropy", "sparse", 5, 5, "integer class indices"),
        # a binary loss with more than two classes
        ("binary_crossentropy", "sparse", 3, None, "two classes"),
        ("BinaryFocalCrossentropy", "sparse", 10, 1, "two classes"),
        # output units that do not match the classes
        ("sparse_categorical_crossentropy", "sparse", 3, 2, "2 unit(s)"),
        ("sparse_categorical_crossentropy", "binary", 2, 1, "1 unit(s)"),
        ("categorical_crossentropy", "onehot", 4, 3, "3 unit(s)"),
        # a binary loss with two output units and 0/1 labels
        ("binary_crossentropy", "binary", 2, 2, "one output unit"),
    ],
)
def test_check_labels_vs_loss_raises(
    loss: str, label_format: str, n_classes: int, output_units: int | None, needle: str
) -> None:
    with pytest.raises(InputError) as excinfo:
        check_labels_vs_loss(loss, label_format, n_classes, output_units)
    assert excinfo.value.exit_code == 2
    message = str(excinfo.value)
    assert needle in message
    assert repr(loss) in message


@pytest.mark.parametrize(
    ("loss", "label_format", "n_classes", "output_units"),
    [
        ("sparse_categorical_crossentropy", "sparse", 3, 3),
        ("sparse_categorical_crossentropy", "sparse", 10, None),
        ("sparse_categorical_crossentropy", "binary", 2, 2),
        ("SparseCategoricalCrossentropy", "sparse", 5, 5),
        ("categorical_crossentropy", "onehot", 3, 3),
        ("categorical_focal_crossentropy", "onehot", 4, None),
        ("binary_crossentropy", "binary", 2, 1),
        ("binary_crossentropy", "binary", 2, None),
        ("BinaryCrossentropy", "binary", 2, 1),
        ("binary_focal_crossentropy", "binary", 2, 1),
        ("binary_crossentropy", "onehot", 2, 2),  # one-hot rows against two sigmoid units
    ],
)
def test_check_labels_vs_loss_good_pairings_are_silent(
    loss: str, label_format: str, n_classes: int, output_units: int | None
) -> None:
    assert check_labels_vs_loss(loss, label_format, n_classes, output_units) == []


@pytest.mark.parametrize(
    ("loss", "label_format", "n_classes", "output_units"),
    [
        ("mse", "sparse", 3, 3),
        ("mean_squared_error", "binary", 2, 1),
        ("MeanAbsoluteError", "onehot", 3, 3),
        ("hinge", "binary", 2, 1),
        ("my_module.focal_loss", "sparse", 7, 2),  # unknown losses are not unit-checked
    ],
)
def test_check_labels_vs_loss_unknown_loss_warns(
    loss: str, label_format: str, n_classes: int, output_units: int | None
) -> None:
    warnings = check_labels_vs_loss(loss, label_format, n_classes, output_units)
    assert len(warnings) == 1
    assert repr(loss) in warnings[0]


@pytest.mark.parametrize("loss", ["bce", "BCE"])
def test_check_labels_vs_loss_bce_alias_with_three_classes(loss: str) -> None:
    with pytest.raises(InputError):
        check_labels_vs_loss(loss, "sparse", 3)


# --------------------------------------------------------------------------- class weights


@pytest.mark.parametrize(
    ("table", "names", "needles"),
    [
        ({"custom": [1.0, 0.0]}, ["0", "1"], ("'custom'", "'1'", "0.0")),
        ({"custom": [-1.0, 2.0]}, ["cat", "dog"], ("'custom'", "'cat'", "-1.0")),
        ({"x100": [0.5, math.inf]}, ["0", "1"], ("'x100'", "inf")),
        ({"custom": [math.nan, 1.0]}, ["0", "1"], ("'custom'", "nan")),
        ({"none": None, "balanced": [1.0, 2.0, -0.1]}, ["a", "b", "c"], ("'balanced'", "'c'")),
    ],
)
def test_check_class_weights_raises(
    table: dict[str, Sequence[float] | None], names: list[str], needles: tuple[str, ...]
) -> None:
    with pytest.raises(InputError) as excinfo:
        check_class_weights(table, names)
    assert excinfo.value.exit_code == 2
    for needle in needles:
        assert needle in str(excinfo.value)


@pytest.mark.parametrize(
    ("table", "names", "warned"),
    [
        ({"custom": [1.0, 1001.0]}, ["0", "1"], ["'custom'"]),
        ({"x1000": [0.5, 5000.0]}, ["0", "1"], ["'x1000'"]),
        ({"none": None, "balanced": [0.5, 5.0], "x100": [0.5, 500.0], "custom": [1e-3, 2.0]},
         ["0", "1"], ["'custom'"]),
        ({"a": [1.0, 2000.0, 1.0], "b": [0.001, 1.0, 5.0]}, ["x", "y", "z"], ["'a'", "'b'"]),
    ],
)
def test_check_class_weights_warns_on_extreme_ratio(
    table: dict[str, Sequence[float] | None], names: list[str], warned: list[str]
) -> None:
    warnings = check_class_weights(table, names)
    assert len(warnings) == len(warned)
    for warning, needle in zip(warnings, warned, strict=True):
        assert needle in warning
        assert "ratio" in warning


@pytest.mark.parametrize(
    "table",
    [
        {},
        {"none": None},
        {"balanced": [0.555556, 5.0]},
        {"custom": [1.0, 1000.0]},  # exactly the limit: not above it
        {"none": None, "sqrt": [0.745, 2.236], "effective": [0.8, 1.2]},
    ],
)
def test_check_class_weights_silent(table: dict[str, Sequence[float] | None]) -> None:
    assert check_class_weights(table, ["0", "1"]) == []
