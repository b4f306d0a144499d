"""``.csv`` and ``.parquet`` data: ``inputs.tables`` (pyarrow) reads the file; its target
column's values become the labels (text read as numbers where every cell is one), every
other column a numeric feature.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from stabcheck.errors import InputError
from stabcheck.inputs.labels import encode_labels
from stabcheck.inputs.preflight.arrays import check_data_finite
from stabcheck.inputs.readers.source import Labelled, Source, array_rows
from stabcheck.inputs.tables import read_table


def load_table(spec: str, path: Path, target: str | None, task: str = "auto") -> Source:
    """A ``.csv`` or ``.parquet`` file (read by ``inputs.tables``): its target column's
    values become the labels, every other column a numeric feature."""
    table = read_table(spec, path, target)
    check_data_finite(table.x, f"'{spec}'")
    y = _table_labels(table.labels, task)
    if task == "regression" and y.dtype.kind in "US":
        bad = next(str(s) for s in table.labels if not _is_number(str(s)))
        raise InputError(
            f"data '{spec}': --task regression, but the target '{target}' holds {bad!r}, "
            "which is not a number"
        )
    ys, names, fmt, values = encode_labels(spec, [y], task)
    return Source(Labelled(array_rows(table.x), *ys[0]), None, names, fmt, values)


def _table_labels(labels: np.ndarray, task: str = "auto") -> np.ndarray:
    """A target column as ``encode_labels`` takes it: text (a CSV's cells, a Parquet
    string column) read as ``_csv_labels`` reads it; numbers (Parquet) by the same rules."""
    if labels.dtype.kind in "USO":
        return _csv_labels([str(v) for v in labels], task)
    if labels.dtype.kind in "biu":
        ints = labels.astype(np.int64)
        return ints.astype(np.float64) if task == "regression" else ints
    floats = labels.astype(np.float64)
    finite = np.isfinite(floats)
    if task == "regression" or not finite.all():
        return floats
    if np.all(floats == np.round(floats)):
        return floats.astype(np.int64)
    if task == "classification":
        return np.asarray([repr(float(v)) for v in floats], dtype=str)
    return floats


def _csv_labels(labels: list[str], task: str = "auto") -> np.ndarray:
    """Integers when every label is one (``"3"`` or ``"3.0"``); else floats when every
    label is a number (a regression target under ``auto`` and ``regression``; under
    ``classification`` the values are class names); else the strings."""
    try:
        ints = np.asarray([int(s) for s in labels], dtype=np.int64)
    except ValueError:
        pass
    else:
        return ints.astype(np.float64) if task == "regression" else ints
    try:
        floats = [float(s) for s in labels]
    except ValueError:
        return np.asarray(labels, dtype=str)
    if task == "regression":
        return np.asarray(floats, dtype=np.float64)
    if all(math.isfinite(f) and f == int(f) for f in floats):
        return np.asarray([int(f) for f in floats], dtype=np.int64)
    if task == "classification":
        return np.asarray(labels, dtype=str)
    return np.asarray(floats, dtype=np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

