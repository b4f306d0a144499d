"""The data given to ``stabcheck.probe``, as a data spec the engine loads.

Arrays, a ``tf.data.Dataset`` or a ``PyDataset`` (read here, in the caller, where the
dataset already lives: at most ``max_samples`` rows, through ``protocol.userdata``, which
imports nothing) are copied into an ``.npz`` in the run's temporary folder; a string is a
data spec as ``--data`` takes it (a file, ``builtin:digits``, ``file.py:function``). The
user's objects are only read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stabcheck.errors import InputError
from stabcheck.protocol.userdata import UserArrays, as_arrays, is_dataset, save_arrays


def data_spec(x: Any, y: Any, validation_data: Any, max_samples: int,
              folder: Path) -> tuple[str, str]:
    """(the spec the engine loads, what the report calls the data).

    Raises:
        InputError: a form of data that is not one of those above, or ``y`` missing
            (or given beside a dataset or a spec).
    """
    if isinstance(x, (str, Path)):
        if y is not None or validation_data is not None:
            raise InputError("x is a data spec (a file or 'builtin:...'): it brings its own "
                             "targets; pass no y and no validation_data with it")
        return str(x), str(x)
    if x is None:
        raise InputError("no data: pass x and y (arrays), a tf.data.Dataset or PyDataset as "
                         "x, or a data spec such as 'data.npz'")
    if is_dataset(x):
        if y is not None:
            raise InputError("x is a dataset, which brings its own targets: pass no y with it")
        arrays = as_arrays(x, max_samples, source="x", verb="is")
    elif y is None:
        raise InputError(f"y is missing: x is {type(x).__name__}; pass its targets as y, or "
                         "a dataset of (x, y) batches as x")
    else:
        arrays = as_arrays((x, y), max_samples, source="x, y", verb="are")
    what = _what(x, y, arrays)
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)) and len(validation_data) != 2:
            raise InputError(f"validation_data must be (x_val, y_val) or a dataset, got a "
                             f"{type(validation_data).__name__} of {len(validation_data)} "
                             "items")
        held = as_arrays(validation_data, max_samples, source="validation_data", verb="is")
        arrays = UserArrays(arrays.x, arrays.y, held.x, held.y, arrays.truncated)
    path = folder / "data.npz"
    save_arrays(arrays, path)
    return str(path), what


def _what(x: Any, y: Any, arrays: UserArrays) -> str:
    """What the report calls in-memory data: "arrays x (1000, 8) float32" or the first
    ``n`` rows of a dataset."""
    if y is not None:
        return f"arrays x {tuple(arrays.x.shape)} {arrays.x.dtype}, y {tuple(arrays.y.shape)}"
    kind = type(x).__name__
    first = "the first " if arrays.truncated else ""
    return f"{kind} ({first}{arrays.n_samples} samples)"
