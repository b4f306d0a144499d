"""The user's data from code, as plain arrays: one owner of "a dataset, a tuple or a dict,
at most N samples".

What a data function (``--data file.py:function``) returns, or what the Python API is
given, becomes ``UserArrays`` here: numpy only, duck-typed, no framework import. A
``tf.data.Dataset`` or any iterable yields batches, as ``fit`` takes it; a Keras
``PyDataset`` (``__getitem__`` and ``num_batches`` or ``__len__``) is read batch by batch
in index order; each batch is ``(x, y)`` and each part goes through ``np.asarray``. The
arrays are then written to an ``.npz`` (``save_arrays``) that the parent loads like any
other ``.npz`` data: the user's own objects are only read, never changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stabcheck.errors import InputError

# Forms a data function may return, for error messages.
FORMS = ("(x, y)", "(x, y, x_val, y_val)", "a dict with x, y (x_val, y_val)",
         "a tf.data.Dataset", "a keras.utils.PyDataset")
_DICT_KEYS = ("x", "y", "x_val", "y_val")


@dataclass(frozen=True, eq=False)
class UserArrays:
    """The arrays read from the user's data, and how much was read.

    Attributes:
        x, y: the training rows and their targets, as the data holds them.
        x_val, y_val: a held-out split the data brings (both or neither).
        truncated: the source held more than the cap; the first ``cap`` rows were taken.
    """

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    truncated: bool = False

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])


def as_arrays(value: Any, max_samples: int, *, source: str, verb: str = "returned"
              ) -> UserArrays:
    """Turn the user's data into arrays of at most ``max_samples`` training rows.

    Args:
        value: ``(x, y)``, ``(x, y, x_val, y_val)``, a dict with ``x`` and ``y`` (and
            optionally ``x_val``, ``y_val``), a dataset yielding ``(x, y)`` batches (a
            ``tf.data.Dataset``, any iterable of batches) or a ``PyDataset``.
        max_samples: the most rows read from a dataset (arrays are taken whole: the
            sampling that follows caps them, stratified).
        source: what the data is, for messages (``data function data.py:load``, ``x``).
        verb: what the source did with the value, for messages (``returned``, ``is``).

    Raises:
        InputError: a form or an element that is not one of these, in one line.
    """
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in _DICT_KEYS)
        if unknown:
            raise InputError(f"{source} {verb} a dict with key {unknown[0]!r}; expected "
                             "keys x, y and optionally x_val, y_val")
        if "x" not in value or "y" not in value:
            raise InputError(f"{source} {verb} a dict without "
                             f"{'x' if 'x' not in value else 'y'}; expected keys x, y and "
                             "optionally x_val, y_val")
        if ("x_val" in value) != ("y_val" in value):
            raise InputError(f"{source} {verb} x_val without y_val (or y_val without "
                             "x_val): give both or neither")
        parts = [value[k] for k in _DICT_KEYS if k in value]
        return _from_parts(parts, source)
    if isinstance(value, (tuple, list)):
        if len(value) not in (2, 4):
            raise InputError(f"{source} {verb} a {type(value).__name__} of {len(value)} "
                             "items; expected (x, y) or (x, y, x_val, y_val)")
        if any(is_dataset(part) for part in value):
            raise InputError(f"{source} {verb} a tuple holding a dataset; return one "
                             "dataset of (x, y) batches, or arrays")
        return _from_parts(list(value), source)
    if is_dataset(value):
        x, y, truncated = read_batches(value, max_samples, source=source)
        return UserArrays(x, y, truncated=truncated)
    raise InputError(f"{source} {verb} {_describe(value)}; expected one of: "
                     + ", ".join(FORMS))


def read_batches(dataset: Any, max_samples: int, *, source: str
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Read ``(x, y)`` batches from ``dataset`` until ``max_samples`` rows: (x, y,
    whether rows were left unread)."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    rows = 0
    truncated = False
    for number, batch in enumerate(_batches(dataset, source)):
        x, y = _batch_parts(batch, number, source)
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
            raise InputError(f"{source}: batch {number} has x of shape {x.shape} and y of "
                             f"shape {y.shape}; a batch needs one row of each per sample "
                             "(batch the dataset, e.g. dataset.batch(32))")
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise InputError(f"{source}: batch {number} has rows of shape {x.shape[1:]}, "
                             f"the first batch {xs[0].shape[1:]}; every batch must match")
        xs.append(x)
        ys.append(y)
        rows += int(x.shape[0])
        if rows >= max_samples:
            truncated = rows > max_samples or _has_more(dataset, number)
            break
    if not xs:
        raise InputError(f"{source} is an empty dataset: it yielded no batch")
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    return x_all[:max_samples], y_all[:max_samples], truncated


def save_arrays(arrays: UserArrays, path: Path) -> None:
    """Write ``arrays`` as the ``.npz`` data the parent loads (``x``, ``y``, ``x_val``,
    ``y_val``); plain arrays only."""
    named = {"x": arrays.x, "y": arrays.y}
    if arrays.x_val is not None and arrays.y_val is not None:
        named.update(x_val=arrays.x_val, y_val=arrays.y_val)
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
        np.savez(fh, **named)


def _from_parts(parts: list[Any], source: str) -> UserArrays:
    names = _DICT_KEYS[: len(parts)]
    arrays = [_array(part, f"{source}: {name}") for name, part in zip(names, parts, strict=True)]
    return UserArrays(*arrays)


def _array(value: Any, what: str) -> np.ndarray:
    """``np.asarray(value)``, refused when it is not numbers or strings."""
    if is_dataset(value) or isinstance(value, Mapping):
        raise InputError(f"{what} is {_describe(value)}, not an array")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} cannot be read as an array ({exc})") from None
    if array.dtype.kind not in "biufUS":
        raise InputError(f"{what} holds {array.dtype} values ({_describe(value)}); "
                         "expected numbers (or label strings)")
    return array


def is_dataset(value: Any) -> bool:
    """A ``PyDataset``-like (indexed batches) or an iterable of batches, not an array."""
    if isinstance(value, (str, bytes, Mapping, tuple, list, np.ndarray)):
        return False
    if hasattr(value, "__array__") or hasattr(value, "numpy") and hasattr(value, "shape"):
        return False  # an array or a tensor
    return _is_indexed(value) or hasattr(value, "__iter__")


def _is_indexed(value: Any) -> bool:
    return hasattr(value, "__getitem__") and (hasattr(value, "num_batches")
                                              or hasattr(value, "__len__"))


def _batches(dataset: Any, source: str) -> Iterable[Any]:
    if _is_indexed(dataset):
        count = getattr(dataset, "num_batches", None)
        if count is None and hasattr(dataset, "__len__"):
            count = len(dataset)
        if count is None:  # an infinite PyDataset: read until the cap
            index = 0
            while True:
                yield dataset[index]
                index += 1
        for index in range(int(count)):
            yield dataset[index]
        return
    yield from dataset


def _has_more(dataset: Any, last: int) -> bool:
    """Whether an indexed dataset holds batches after ``last`` (an iterable: assume so)."""
    if _is_indexed(dataset):
        count = getattr(dataset, "num_batches", None)
        if count is None and hasattr(dataset, "__len__"):
            count = len(dataset)
        return count is None or last + 1 < int(count)
    return True


def _batch_parts(batch: Any, number: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(batch, Mapping):
        raise InputError(f"{source}: batch {number} is a dict ({', '.join(map(str, batch))}); "
                         "stabcheck probes models of one input: yield (x, y) batches")
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise InputError(f"{source}: batch {number} is {_describe(batch)}; expected an "
                         "(x, y) batch")
    if len(batch) == 3:
        raise InputError(f"{source}: batches are (x, y, sample_weight); stabcheck probes "
                         "class weights, which Keras cannot combine with sample weights: "
                         "yield (x, y) batches")
    return (_array(batch[0], f"{source}: batch {number}'s x"),
            _array(batch[1], f"{source}: batch {number}'s y"))


def _describe(value: Any) -> str:
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    shape = getattr(value, "shape", None)
    if isinstance(value, (tuple, list)):
        return f"a {name} of {len(value)} items"
    return f"a {name}" + (f" of shape {tuple(shape)}" if shape is not None else "")
