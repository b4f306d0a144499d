"""Preflight checks of the data arrays themselves: inputs without NaN or Inf, and labels of
rank below 3 (one label per sample, as Keras's ``class_weight`` needs). The data readers
apply them as they read (``inputs.readers``, ``inputs.labels``).
"""

from __future__ import annotations

import numpy as np

from stabcheck.errors import InputError


def check_data_finite(x: np.ndarray, name: str) -> None:
    """Raise when ``x`` holds NaN or Inf; the first row (axis 0) that does is named.

    Args:
        x: the input array, one sample per row.
        name: how the message names it (``"x"``, ``"'train.npz': x_val"``).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return  # integers and booleans are always finite
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = ~finite
    count = int(np.count_nonzero(bad))
    rows = bad.reshape(arr.shape[0], -1).any(axis=1) if arr.ndim else bad.reshape(1)
    first = int(np.argmax(rows))
    noun = "value" if count == 1 else "values"
    raise InputError(
        f"data {name} has {count} NaN/Inf {noun} (first in row {first}): inputs must be "
        "finite; clean or impute them before training"
    )


def check_label_rank(y_shape: tuple[int, ...]) -> None:
    """Raise for targets of rank 3 or more, which Keras's ``class_weight`` rejects."""
    if len(y_shape) >= 3:
        raise InputError(label_rank_message(tuple(y_shape)))


def label_rank_message(y_shape: tuple[int, ...]) -> str:
    """The rule :func:`check_label_rank` states (``stabcheck.inputs.labels`` raises it too)."""
    return (
        f"class_weight is not supported for 3+ dimensional targets (shape {y_shape}): "
        "flatten them to one label per sample or use sample weights"
    )
