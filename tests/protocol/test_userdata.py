"""``protocol.userdata``: the user's data from code as arrays, table-driven, numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from stabcheck.errors import InputError
from stabcheck.protocol.userdata import as_arrays, is_dataset, read_batches, save_arrays

X = np.arange(40, dtype=np.float32).reshape(20, 2)
Y = np.arange(20) % 2


class Indexed:
    """A PyDataset as Keras sees one (``__getitem__`` and ``__len__``), without Keras."""

    def __init__(self, batch: int = 6) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return -(-len(X) // self.batch)

    def __getitem__(self, index: int):
        part = slice(index * self.batch, (index + 1) * self.batch)
        return X[part], Y[part]


def batches(size: int = 8):
    """A tf.data-like iterable of (x, y) batches."""
    for start in range(0, len(X), size):
        yield X[start:start + size], Y[start:start + size]


@pytest.mark.parametrize(("value", "n", "held"), [
    ((X, Y), 20, False),
    ([X, Y], 20, False),
    ((X, Y, X[:5], Y[:5]), 20, True),
    ({"x": X, "y": Y}, 20, False),
    ({"x": X, "y": Y, "x_val": X[:5], "y_val": Y[:5]}, 20, True),
    (Indexed(), 20, False),
    (batches(), 20, False),
])
def test_each_supported_form_becomes_arrays(value, n, held):
    arrays = as_arrays(value, 1000, source="data function f")
    assert arrays.n_samples == n and arrays.y.shape == (n,)
    np.testing.assert_array_equal(arrays.x, X)
    assert (arrays.x_val is not None) == held and not arrays.truncated


@pytest.mark.parametrize("dataset", [Indexed(), batches()])
def test_a_dataset_is_read_for_at_most_max_samples_rows(dataset):
    x, y, truncated = read_batches(dataset, 10, source="d")
    np.testing.assert_array_equal(x, X[:10])
    np.testing.assert_array_equal(y, Y[:10])
    assert truncated


def test_arrays_are_taken_whole_and_never_changed(tmp_path):
    x, y = X.copy(), Y.copy()
    arrays = as_arrays((x, y), 5, source="f")
    assert arrays.n_samples == 20  # the stratified sampling caps arrays, not this
    save_arrays(arrays, tmp_path / "d.npz")
    np.testing.assert_array_equal(x, X)
    with np.load(tmp_path / "d.npz") as npz:
        assert sorted(npz.files) == ["x", "y"]


@pytest.mark.parametrize(("value", "message"), [
    ("text", "data function f returned a str; expected one of: (x, y), "),
    ((X, Y, X), "returned a tuple of 3 items; expected (x, y) or (x, y, x_val, y_val)"),
    ({"x": X}, "returned a dict without y"),
    ({"x": X, "y": Y, "w": Y}, "returned a dict with key 'w'"),
    ({"x": X, "y": Y, "x_val": X}, "x_val without y_val"),
    ((X, [object()] * 20), "data function f: y holds object values"),
    (X, "returned a numpy.ndarray of shape (20, 2); expected one of"),
    (iter([]), "is an empty dataset"),
    (iter([(X, Y, Y)]), "batches are (x, y, sample_weight)"),
    (iter([{"a": X, "b": Y}]), "batch 0 is a dict (a, b)"),
    (iter([X]), "batch 0 is a numpy.ndarray of shape (20, 2); expected an (x, y) batch"),
    (iter([(X, Y), (X[:, :1], Y)]), "batch 1 has rows of shape (1,), the first batch (2,)"),
    (iter([(X[0], Y[0])]), "a batch needs one row of each per sample"),
    ((Indexed(), Y), "returned a tuple holding a dataset"),
])
def test_what_cannot_be_probed_is_one_line(value, message):
    with pytest.raises(InputError) as caught:
        as_arrays(value, 100, source="data function f")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("value", "expected"), [
    (X, False), ((X, Y), False), ({"x": X}, False), ("a", False),
    (Indexed(), True), (batches(), True),
])
def test_is_dataset(value, expected):
    assert is_dataset(value) is expected
