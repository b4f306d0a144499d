"""Labels as the loss will see them: class labels encoded jointly across the training and
held-out parts (integers kept, strings indexed, one-hot rows kept), or a regression target
kept as the data holds it; one class index per row either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stabcheck.errors import InputError
from stabcheck.inputs.preflight.arrays import label_rank_message
from stabcheck.protocol.dataset import CONTINUOUS


def encode_labels(
    spec: str, parts: Sequence[np.ndarray], task: str = "auto"
) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[str, ...], str, tuple[int, ...] | None]:
    """Encode label arrays jointly:
    ``([(y_model, c), ...], class_names, label_format, label_values)``.

    Integer labels (and integral floats, booleans) stay as they are in ``y_model``, with
    their sorted distinct values as ``label_values``; strings become class indices (the
    order of their sorted names) and one-hot rows stay one-hot, both with no
    ``label_values``. A regression target (``task`` regression, or ``auto`` and floats
    with a non-integer value) stays as it is, as float32, label format ``continuous``,
    no classes, every class index 0.
    """
    values: tuple[int, ...] | None = None
    sizes = [int(p.shape[0]) for p in parts]
    y = np.concatenate([np.asarray(p) for p in parts], axis=0)
    if task == "regression" or (task == "auto" and _non_integer_floats(y)):
        return _regression_target(spec, parts, y), (), CONTINUOUS, None
    rule = (
        "class_weight needs one label per sample: 1-D labels, (n, 1) labels or one-hot rows "
        "(Keras supports class_weight only for those)"
    )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim > 2:
        raise InputError(f"data '{spec}': {label_rank_message(y.shape)}")

    if y.dtype.kind in "US":
        if y.dtype.kind == "S":
            y = np.char.decode(y, "utf-8", errors="replace")
        if y.ndim != 1:
            raise InputError(f"data '{spec}': y holds strings in shape {y.shape}; {rule}")
        distinct, c = np.unique(y, return_inverse=True)
        names = tuple(str(v) for v in distinct)
        y_model, fmt = c.astype(np.int64), None
    elif y.dtype.kind in "biuf":
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            bad = "NaN" if np.isnan(y).any() else "infinite values"
            raise InputError(f"data '{spec}': labels y contain {bad}; every row needs a class")
        if y.ndim == 2:
            if not _is_onehot(y):
                raise InputError(
                    f"data '{spec}': y has shape {y.shape} but its rows are not one-hot "
                    f"(exactly one 1, the rest 0), so it looks multi-label; {rule}"
                )
            c = np.argmax(y, axis=1).astype(np.int64)
            names = tuple(str(i) for i in range(y.shape[1]))
            y_model, fmt = y.astype(np.float32), "onehot"
        else:
            if y.dtype.kind == "f" and not np.all(y == np.round(y)):
                example = y[y != np.round(y)][0]
                raise InputError(
                    f"data '{spec}': --task classification, but the labels y hold a "
                    f"non-integer value ({float(example)!r}): a classifier needs class "
                    "indices or names; for a numeric target use --task regression"
                )
            y = y.astype(np.int64)
            distinct, c = np.unique(y, return_inverse=True)
            names = tuple(str(int(v)) for v in distinct)
            values = tuple(int(v) for v in distinct)
            y_model, fmt = y, None
    else:
        raise InputError(
            f"data '{spec}': labels y must be integers, strings or one-hot rows "
            f"(got dtype {y.dtype})"
        )

    c = np.asarray(c, dtype=np.int64).reshape(-1)
    present = np.unique(c)
    if present.size < 2:
        only = names[int(present[0])] if present.size else "none"
        raise InputError(
            f"data '{spec}' has {present.size} class ({only}); a classifier needs at least 2"
        )
    if fmt is None:
        fmt = "binary" if len(names) == 2 else "sparse"
        y_model = np.asarray(y_model, dtype=np.int64).reshape(-1)
    out, start = [], 0
    for n in sizes:
        out.append((y_model[start : start + n], c[start : start + n]))
        start += n
    return out, names, fmt, values


def _non_integer_floats(y: np.ndarray) -> bool:
    """Floats of which at least one finite value is not a whole number."""
    if y.dtype.kind != "f" or y.size == 0:
        return False
    finite = y[np.isfinite(y)]
    return bool(finite.size) and not bool(np.all(finite == np.round(finite)))


def _regression_target(
    spec: str, parts: Sequence[np.ndarray], y: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The parts of a regression target as the data holds them (float32; (n,) and (n, k)
    shapes kept), each with class index 0 for every row."""
    if y.dtype.kind not in "biuf":
        raise InputError(
            f"data '{spec}': a regression target must be numeric, got dtype {y.dtype} "
            f"(first value {y.reshape(-1)[0]!r}); for class names use --task classification"
        )
    if y.ndim > 2:
        raise InputError(
            f"data '{spec}': a regression target must be 1-D or (n, k), got shape {y.shape}"
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.argmax(~np.isfinite(y).reshape(y.shape[0], -1).all(axis=1)))
        raise InputError(
            f"data '{spec}': the regression target holds NaN/Inf (first in row {bad}): "
            "every row needs a finite target"
        )
    if y.shape[0] < 2:
        raise InputError(f"data '{spec}' has {y.shape[0]} row; a regression probe needs 2 or more")
    out = []
    for part in parts:
        target = np.asarray(part).astype(np.float32)
        out.append((target, np.zeros(target.shape[0], dtype=np.int64)))
    return out


def _is_onehot(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))

