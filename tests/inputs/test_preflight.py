"""Tests of ``stabcheck.inputs.preflight``: label / loss / output / class-weight checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from stabcheck.errors import InputError
from stabcheck.inputs.data import load_dataset
from stabcheck.inputs.preflight.arrays import check_data_finite, check_label_rank
from stabcheck.inputs.preflight.losses import check_label_values, check_labels_vs_loss
from stabcheck.inputs.preflight.outputs import (
    check_input_shape,
    check_model_outputs,
    check_output_activation,
)
from stabcheck.inputs.preflight.weights import (
    check_class_weights,
    check_loss_weights,
    check_sample_weight_conflict,
)
from stabcheck.inputs.readers.npz import npz_has_sample_weight
from stabcheck.protocol.vocabulary import canonical_loss_name


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


# --------------------------------------------------------------------------- output activation


@pytest.mark.parametrize(
    ("loss", "from_logits", "activation", "needles"),
    [
        # squashed twice
        ("sparse_categorical_crossentropy", True, "softmax", ("softmax", "from_logits=False")),
        ("CategoricalCrossentropy", True, "Softmax", ("applies softmax",)),
        ("binary_crossentropy", True, "sigmoid", ("applies sigmoid", "apply it again")),
        ("mse", True, "keras.activations.softmax", ("applies softmax",)),
        # logits read as probabilities
        ("sparse_categorical_crossentropy", False, "linear", ("outputs logits", "add a softmax")),
        ("categorical_crossentropy", False, None, ("outputs logits", "from_logits=True")),
        ("binary_crossentropy", False, None, ("outputs logits", "add a sigmoid")),
        ("BinaryFocalCrossentropy", False, "linear", ("expects probabilities",)),
    ],
)
def test_check_output_activation_raises(
    loss: str, from_logits: bool, activation: str | None, needles: tuple[str, ...]
) -> None:
    with pytest.raises(InputError) as excinfo:
        check_output_activation(loss, from_logits, activation)
    message = str(excinfo.value)
    assert excinfo.value.exit_code == 2 and "\n" not in message
    assert repr(loss) in message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("loss", "from_logits", "activation"),
    [
        ("sparse_categorical_crossentropy", False, "softmax"),
        ("sparse_categorical_crossentropy", True, "linear"),
        ("sparse_categorical_crossentropy", True, None),
        ("categorical_crossentropy", False, "softmax"),
        ("binary_crossentropy", False, "sigmoid"),
        ("binary_crossentropy", True, None),
        ("sparse_categorical_crossentropy", False, "log_softmax"),  # unknown: not judged
        ("sparse_categorical_crossentropy", True, "my_activation"),
        ("mse", False, None),  # not a crossentropy: linear outputs are fine
        ("hinge", False, "linear"),
    ],
)
def test_check_output_activation_silent(
    loss: str, from_logits: bool, activation: str | None
) -> None:
    assert check_output_activation(loss, from_logits, activation) == []


@pytest.mark.parametrize(
    ("loss", "activation", "needle"),
    [
        ("binary_crossentropy", "softmax", "always 1.0"),
        ("sparse_categorical_crossentropy", "sigmoid", "do not sum to 1"),
    ],
)
def test_check_output_activation_warns_on_a_mismatched_squash(
    loss: str, activation: str, needle: str
) -> None:
    warnings = check_output_activation(loss, False, activation)
    assert len(warnings) == 1 and needle in warnings[0]


# ------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("n_outputs", [2, 3, 10])
def test_check_model_outputs_raises_for_multi_output(n_outputs: int) -> None:
    with pytest.raises(InputError) as excinfo:
        check_model_outputs(n_outputs)
    message = str(excinfo.value)
    assert f"has {n_outputs} outputs" in message
    assert "single-output" in message and "wrapper model" in message


def test_check_model_outputs_silent_for_one_output() -> None:
    assert check_model_outputs(1) is None


# ------------------------------------------------------------------------------ finite data


def _with(shape: tuple[int, ...], bad: dict[tuple[int, ...], float]) -> np.ndarray:
    x = np.ones(shape, dtype=np.float32)
    for index, value in bad.items():
        x[index] = value
    return x


@pytest.mark.parametrize(
    ("x", "count", "row"),
    [
        (_with((50, 4), {(37, 2): np.nan}), "1 NaN/Inf value ", 37),
        (_with((50, 4), {(40, 0): np.inf, (37, 3): -np.inf, (45, 1): np.nan}), "3 NaN/Inf", 37),
        (_with((8, 3, 3, 1), {(5, 1, 2, 0): np.nan, (6, 0, 0, 0): np.nan}), "2 NaN/Inf", 5),
        (_with((6,), {(0,): np.nan}), "1 NaN/Inf", 0),
        (np.full((3, 2), np.nan), "6 NaN/Inf", 0),
    ],
    ids=["one-nan", "mixed", "images", "rank1", "all-nan"],
)
def test_check_data_finite_raises(x: np.ndarray, count: str, row: int) -> None:
    with pytest.raises(InputError) as excinfo:
        check_data_finite(x, "x")
    message = str(excinfo.value)
    assert message.startswith("data x has ") and count in message
    assert f"(first in row {row})" in message and "impute" in message


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((4, 3), dtype=np.float32),
        np.full((2, 2), np.finfo(np.float64).max),
        np.arange(12).reshape(3, 4),  # integers are always finite
        np.zeros((0, 3)),
        np.ones((2, 2, 2, 3), dtype=np.float16),
    ],
)
def test_check_data_finite_silent(x: np.ndarray) -> None:
    assert check_data_finite(x, "x") is None


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _two_classes(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), np.arange(n) % 2


@pytest.mark.parametrize("key", ["x", "x_val"])
def test_load_dataset_rejects_non_finite_inputs(tmp_path, key: str) -> None:
    x, y = _two_classes()
    arrays = {"x": x, "y": y, "x_val": x[:6].copy(), "y_val": y[:6]}
    arrays[key][4, 1] = np.nan
    path = _npz(tmp_path / "holes.npz", **arrays)
    with pytest.raises(InputError) as excinfo:
        load_dataset(str(path))
    message = str(excinfo.value)
    assert "holes.npz" in message and f": {key} has 1 NaN/Inf value" in message
    assert "first in row 4" in message


def test_load_dataset_rejects_non_finite_csv(tmp_path) -> None:
    path = tmp_path / "holes.csv"
    path.write_text("a,b,label\n1,2,0\n3,inf,1\n5,nan,0\n7,8,1\n")
    with pytest.raises(InputError, match=r"2 NaN/Inf values \(first in row 1\)"):
        load_dataset(str(path), target="label")


# ------------------------------------------------------------------------------- label rank


@pytest.mark.parametrize("shape", [(10, 4, 4), (2, 3, 4, 5), (1, 1, 1)])
def test_check_label_rank_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError) as excinfo:
        check_label_rank(shape)
    message = str(excinfo.value)
    assert "3+ dimensional targets" in message and str(shape) in message
    assert "flatten" in message and "sample weights" in message


@pytest.mark.parametrize("shape", [(10,), (10, 1), (10, 5), (0,)])
def test_check_label_rank_silent(shape: tuple[int, ...]) -> None:
    assert check_label_rank(shape) is None


def test_load_dataset_states_the_label_rank_rule(tmp_path) -> None:
    path = _npz(tmp_path / "seg.npz", x=np.zeros((4, 2)), y=np.zeros((4, 2, 2)))
    with pytest.raises(InputError) as excinfo:
        load_dataset(str(path))
    with pytest.raises(InputError) as direct:
        check_label_rank((4, 2, 2))
    assert str(excinfo.value) == f"data '{path}': {direct.value}"


# --------------------------------------------------------------------- sample_weight conflict


@pytest.mark.parametrize(
    ("strategies", "named"),
    [
        (["balanced"], ["'balanced'"]),
        (["none", "x100", "sqrt"], ["'x100'", "'sqrt'"]),
        (("normalized", "focal"), ["'normalized'"]),
        (["normalized-x10"], ["'normalized-x10'"]),
        (["custom"], ["'custom'"]),
    ],
)
def test_check_sample_weight_conflict_raises(strategies, named: list[str]) -> None:
    with pytest.raises(InputError) as excinfo:
        check_sample_weight_conflict(True, strategies)
    message = str(excinfo.value)
    assert "sample_weight" in message and "at the same time" in message
    assert "fold the class weights into the sample weights" in message
    for needle in named:
        assert needle in message
    assert "'none'" not in message.split(":")[0]


@pytest.mark.parametrize(
    ("has_sample_weight", "strategies"),
    [
        (True, ["none"]),
        (True, ["none", "focal"]),  # focal weighs through alpha, not class_weight
        (True, []),
        (False, ["none", "balanced", "x1000"]),
    ],
)
def test_check_sample_weight_conflict_silent(has_sample_weight: bool, strategies) -> None:
    assert check_sample_weight_conflict(has_sample_weight, strategies) is None


def test_npz_has_sample_weight(tmp_path) -> None:
    x, y = _two_classes()
    with_sw = _npz(tmp_path / "sw.npz", x=x, y=y, sample_weight=np.ones(len(y)))
    without = _npz(tmp_path / "plain.npz", x=x, y=y)
    assert npz_has_sample_weight(with_sw) is True
    assert npz_has_sample_weight(str(without)) is False
    assert npz_has_sample_weight("sw.npz", base_dir=tmp_path) is True
    assert npz_has_sample_weight("builtin:digits") is False
    assert npz_has_sample_weight(tmp_path / "data.csv") is False


# ------------------------------------------------------------------------------ loss_weights


@pytest.mark.parametrize(
    ("loss_weights", "names"),
    [
        ({0: 1.0, 1: 50.0}, ["0", "1"]),
        ({1: 50.0}, ["0", "1"]),  # only the minority weighted
        ({"0": 1.0, "1": 50.0}, ["0", "1"]),
        ({"cat": 1.0, "dog": 9.0}, ["cat", "dog"]),
        ({np.int64(2): 3.0}, ["a", "b", "c"]),
        ({0: 1.0, "dog": 2.0}, ["cat", "dog"]),
        ({i: 1.0 for i in range(500)}, [str(i) for i in range(500)]),
    ],
)
def test_check_loss_weights_raises_for_a_per_class_dict(loss_weights, names) -> None:
    with pytest.raises(InputError) as excinfo:
        check_loss_weights(loss_weights, names)
    message = str(excinfo.value)
    assert message.startswith("loss_weights={")
    assert "weights the model's outputs, not classes" in message and "class_weight" in message
    assert len(message) < 400  # a 500-class dict is abbreviated, not echoed in full


@pytest.mark.parametrize(
    "loss_weights",
    [
        None,
        {},
        [1.0],
        [1.0, 0.5],  # per-output list
        1.0,
        {"output": 1.0},
        {"dense_1": 1.0, "aux": 0.2},
        {"dense_1": 1.0, "cat": 0.2},  # one key is an output name: not a class table
    ],
)
def test_check_loss_weights_silent(loss_weights) -> None:
    assert check_loss_weights(loss_weights, ["cat", "dog"]) is None


# ------------------------------------------------------------------ integer labels


@pytest.mark.parametrize(("loss", "values", "units", "match"), [
    ("sparse_categorical_crossentropy", (-1, 1), None, r"hold \{-1\}.*negative label"),
    ("SparseCategoricalCrossentropy", (-1, 0, 1), 3, "negative label"),
    ("sparse_categorical_crossentropy", (0, 1, 2), 2, "go up to 2 but the model's output has 2"),
    ("sparse_categorical_crossentropy", (1, 2, 3), 3, "fit fails on label 3"),
    ("sparse_categorical_crossentropy", (0, 2), 3, r"class index \{1\} has no sample"),
    ("binary_crossentropy", (-1, 1), 1, r"hold \{-1, 1\}.*takes 0/1 labels"),
    ("binary_focal_crossentropy", (1, 2), None, "takes 0/1 labels"),
])
def test_integer_labels_the_loss_cannot_take_are_refused(loss, values, units, match):
    with pytest.raises(InputError, match=match) as info:
        check_label_values(loss, values, units)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    assert "map" in str(info.value)


@pytest.mark.parametrize(("loss", "values", "units"), [
    ("sparse_categorical_crossentropy", (0, 1, 2), 3),
    ("sparse_categorical_crossentropy", (0, 1, 2), None),  # units not known yet
    ("binary_crossentropy", (0, 1), 1),
    ("hinge", (-1, 1), 1),  # a loss stabcheck does not know: the labels pass as they are
    ("sparse_categorical_crossentropy", None, 3),  # labels the loader encoded (strings)
])
def test_integer_labels_the_loss_takes_pass(loss, values, units):
    check_label_values(loss, values, units)


def test_a_long_label_set_is_shortened_in_the_message():
    with pytest.raises(InputError, match=r"\{0, 1, 2, 3, \.\.\., 99\}"):
        check_label_values("sparse_categorical_crossentropy", tuple(range(100)), 10)


# --------------------------------------------------------------------- input shape


@pytest.mark.parametrize(("model", "data"), [
    ([4], (4,)),
    ([None, 8], (3, 8)),
    ([28, 28, 1], (28, 28, 1)),
    ([28, 28, 1], (28, 28)),  # Keras adds a trailing 1
    ([30], (30, 1)),  # and squeezes one
    (None, (5,)),  # unknown (several inputs, a subclassed model): not checked
])
def test_input_shapes_that_fit(model, data):
    check_input_shape(model, data)


@pytest.mark.parametrize(("model", "data", "shown"), [
    ([8], (4,), r"shape \(8,\) but the data's rows have shape \(4,\)"),
    ([28, 28, 1], (8, 8, 1), r"\(28, 28, 1\) but .* \(8, 8, 1\)"),
    ([None, 8], (8,), r"\(None, 8\) but .* \(8,\)"),
    ([30], (30, 2), r"\(30,\) but .* \(30, 2\)"),
])
def test_input_shapes_that_do_not_fit(model, data, shown):
    with pytest.raises(InputError, match=shown) as info:
        check_input_shape(model, data)
    assert info.value.exit_code == 2 and "fit would fail on every batch" in str(info.value)
