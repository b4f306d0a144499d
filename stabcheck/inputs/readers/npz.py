"""``.npz`` data: arrays ``x`` and ``y``, optionally ``x_val`` and ``y_val`` as the held-out
split, read with numpy (``allow_pickle=False``); and whether the file brings a
``sample_weight`` array.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stabcheck.errors import InputError
from stabcheck.inputs.labels import encode_labels
from stabcheck.inputs.preflight.arrays import check_data_finite
from stabcheck.inputs.readers.source import Labelled, Source, array_rows

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip
_NPY_MAGIC = b"\x93NUMPY"


def _read_npz(spec: str, path: Path, wanted: Sequence[str] | None) -> tuple[list[str], dict]:
    """The ``.npz``'s array names and the ``wanted`` arrays (None: none), read in full.

    A file that is not a zip archive, is truncated or corrupt (a bad CRC, a broken
    compressed stream), or holds object arrays is an ``InputError`` naming it.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(f"data '{spec}' cannot be read ({exc.strerror or exc})") from None
    if head.startswith(_NPY_MAGIC):
        raise InputError(
            f"data '{spec}' is a single .npy array, not an .npz archive: save the arrays with "
            "np.savez(path, x=..., y=...)"
        )
    if not head.startswith(_ZIP_MAGIC):
        raise InputError(
            f"data '{spec}' is not an .npz archive (a zip of arrays written by np.savez)"
            + ("; the file is empty" if not head else "")
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            arrays = {k: np.asarray(npz[k]) for k in (wanted or ()) if k in keys}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(
                f"data '{spec}' holds object (pickled) arrays; save plain numeric arrays "
                "(stabcheck loads .npz with allow_pickle=False)"
            ) from None
        raise InputError(f"data '{spec}' is not a readable .npz file ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
        raise InputError(
            f"data '{spec}' is truncated or corrupt: not a readable .npz archive ({exc})"
        ) from None
    return keys, arrays


def npz_has_sample_weight(spec: str | Path, *, base_dir: Path | None = None) -> bool:
    """Whether the ``.npz`` data ``spec`` holds a ``sample_weight`` array.

    Keras refuses ``class_weight`` together with ``sample_weight`` (see
    ``stabcheck.inputs.preflight.weights.check_sample_weight_conflict``). Other specs
    (``builtin:``, a ``.csv``, an image folder) never bring one. ``spec`` resolves as in
    ``inputs.data.load_dataset``.
    """
    spec = str(spec)
    if spec.startswith("builtin:"):
        return False
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    keys, _ = _read_npz(spec, path, None)
    return "sample_weight" in keys


def load_npz(spec: str, path: Path, task: str = "auto") -> Source:
    keys, arrays = _read_npz(spec, path, ("x", "y", "x_val", "y_val"))
    for key in ("x", "y"):
        if key not in keys:
            found = ", ".join(keys) if keys else "no arrays"
            raise InputError(f"data '{spec}' has no array '{key}' (found: {found})")

    if ("x_val" in arrays) != ("y_val" in arrays):
        have, lack = ("x_val", "y_val") if "x_val" in arrays else ("y_val", "x_val")
        raise InputError(f"data '{spec}' has '{have}' but no '{lack}'; give both or neither")

    x = _check_x(spec, arrays["x"], "x")
    y = np.asarray(arrays["y"])
    _check_rows(spec, x, y, "x", "y")
    if "x_val" not in arrays:
        ys, names, fmt, values = encode_labels(spec, [y], task)
        return Source(Labelled(array_rows(x), ys[0][0], ys[0][1]), None, names, fmt, values)

    x_val = _check_x(spec, arrays["x_val"], "x_val")
    y_val = np.asarray(arrays["y_val"])
    _check_rows(spec, x_val, y_val, "x_val", "y_val")
    if x_val.shape[1:] != x.shape[1:]:
        raise InputError(
            f"data '{spec}': x_val rows have shape {x_val.shape[1:]} but x rows have shape "
            f"{x.shape[1:]}; they must match"
        )
    if y_val.ndim != y.ndim or y_val.shape[1:] != y.shape[1:]:
        raise InputError(
            f"data '{spec}': y_val has shape {y_val.shape} but y has shape {y.shape}; "
            "labels must have the same form in both"
        )
    ys, names, fmt, values = encode_labels(spec, [y, y_val], task)
    return Source(
        Labelled(array_rows(x), *ys[0]),
        Labelled(array_rows(x_val), *ys[1]),
        names,
        fmt,
        values,
    )


def _check_x(spec: str, x: np.ndarray, key: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise InputError(f"data '{spec}': '{key}' must be numeric (got dtype {x.dtype})")
    if x.ndim == 0:
        raise InputError(f"data '{spec}': '{key}' is a scalar; it needs one row per sample")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.shape[0] == 0:
        raise InputError(f"data '{spec}': '{key}' has no rows")
    check_data_finite(x, f"'{spec}': {key}")
    return x


def _check_rows(spec: str, x: np.ndarray, y: np.ndarray, xk: str, yk: str) -> None:
    if y.ndim == 0 or x.shape[0] != y.shape[0]:
        ny = "a scalar" if y.ndim == 0 else f"{y.shape[0]} rows"
        raise InputError(
            f"data '{spec}': {xk} and {yk} must have the same number of rows "
            f"({xk} has {x.shape[0]}, {yk} has {ny})"
        )

