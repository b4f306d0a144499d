"""Load the data a probe trains on: built-in sets, ``.npz``, ``.csv``/``.parquet`` or an image
folder.

``load_dataset`` turns a data spec into a :class:`Dataset`: float32 inputs, labels in the
form the loss will see them, one class index per row, and a stratified held-out split, all
sampled with a seeded generator so that every probe of a run sees the same rows.
``protocol.dataset.save_prepared`` hands that sample to probe worker processes.

numpy and the standard library read the rest; ``inputs.tables`` (pyarrow) reads the CSV and
Parquet files, and Pillow is imported when an image folder is read. The user's files are
only ever read.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stabcheck.errors import ConfigError, InputError
from stabcheck.inputs.preflight.arrays import check_data_finite, label_rank_message
from stabcheck.inputs.tables import TABLE_SUFFIXES, read_table
from stabcheck.protocol.dataset import CONTINUOUS, Dataset
from stabcheck.text import plural

BUILTIN_DATASETS: tuple[str, ...] = ("breast_cancer", "digits", "digits-large")
# "A few dozen": a class with fewer samples than this to train on or to be judged by has
# per-class figures that rest on too little (a recall of 30 samples moves in steps of 0.033
# and its standard error is up to 0.09, against the recommendation's 0.02 F1 tolerance; 30
# is the usual floor for a normal approximation of a proportion). The held-out sample grows
# to keep this many of every class where the held-out split has them (within
# --max-samples), and the report says where a class still has fewer.
RARE_CLASS_SAMPLES = 30
# A warning lists at most this many classes.
_LISTED = 3
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _Rows:
    """Input rows that can be taken by index: an in-memory array or image files."""

    n: int
    take: Callable[[np.ndarray], np.ndarray]  # indices -> float32 array


@dataclass(frozen=True)
class _Labelled:
    """Input rows with their encoded labels (the model's ``y`` and a class index each)."""

    x: _Rows
    y: np.ndarray
    c: np.ndarray


@dataclass(frozen=True)
class _Source:
    train: _Labelled
    val: _Labelled | None  # a held-out split the source brings (npz x_val/y_val)
    class_names: tuple[str, ...]
    label_format: str
    label_values: tuple[int, ...] | None = None  # integer labels as the data holds them


def load_dataset(
    spec: str,
    *,
    base_dir: Path | None = None,
    target: str | None = None,
    max_samples: int = 20000,
    holdout: float = 0.2,
    imbalance: float | None = None,
    seed: int = 0,
    task: str = "auto",
    max_bytes: int | None = None,
    holdout_base: int | None = None,
) -> Dataset:
    """Load ``spec``, make it long-tailed if asked, split it and sample it.

    ``spec`` is ``builtin:digits``, ``builtin:breast_cancer``, a ``.npz`` file (arrays ``x``
    and ``y``, optionally ``x_val`` and ``y_val`` as the held-out split), a ``.csv`` or
    ``.parquet`` file (``target`` names the label column, every other column must be
    numeric) or a folder
    with one sub-folder of images per class. Relative paths resolve against ``base_dir``
    (the config file's folder) when given, else the working directory.

    ``imbalance`` (in (0, 1]) makes the set long-tailed as Cui et al. 2019 ("Class-Balanced
    Loss Based on Effective Number of Samples") built CIFAR-LT: class ``c`` of ``k`` keeps
    ``round(n_c * imbalance ** (c / (k - 1)))`` of its ``n_c`` rows (at least 2, or all it
    has when fewer), chosen at random; class 0 keeps all, the last class keeps about
    ``imbalance`` of its rows. It is applied before the held-out split, so the split is
    long-tailed too; a held-out split the ``.npz`` brings is left as given.

    Without ``x_val``/``y_val``, a stratified ``holdout`` fraction of each class is held
    out (at least one row of every class that has two or more). The training part is then
    capped at ``max_samples`` rows and the held-out part at ``max(1000, max_samples // 4)``,
    each by a stratified sample proportional to the class counts in which every present
    class keeps at least one row. Where that cap leaves a class fewer than
    ``RARE_CLASS_SAMPLES`` held-out rows that the held-out split has, the held-out cap
    grows (up to ``max_samples``) until it does: the class proportions stay the data's,
    so the per-class figures judged on it keep their meaning (``rare_class_warning`` says
    where even that is too few). Rows come out shuffled. Everything draws from
    ``np.random.default_rng(seed)``, so the same arguments give the same ``Dataset``.

    ``task`` (``auto``, ``classification`` or ``regression``) says what the targets are;
    ``auto`` takes floats with non-integer values for a regression target. A regression
    target (label format ``continuous``) is kept as the data holds it, as float32; it has
    no classes, so the split and the caps draw rows at random (nothing to stratify by).

    ``max_bytes`` bounds the training sample by its input's size too (at least 20,000
    rows: the cap ``--max-samples`` left to its default follows the planned steps,
    ``config.settings.sample_rows``); ``holdout_base`` is then the rows the held-out cap
    is a quarter of (else ``max_samples``).

    Raises ``InputError`` for data that cannot be probed and ``ConfigError`` for
    out-of-range ``max_samples``, ``holdout`` or ``imbalance``.
    """
    _check_settings(max_samples, holdout, imbalance)
    source = _load_source(spec, base_dir=base_dir, target=target, task=task)
    rng = np.random.default_rng(seed)
    regression = source.label_format == CONTINUOUS
    k = 1 if regression else len(source.class_names)  # one "class": plain random draws
    train = source.train

    pool = np.arange(train.x.n)
    if regression and imbalance is not None and imbalance < 1.0:
        raise ConfigError(
            f"imbalance {imbalance:g} makes the classes long-tailed, but '{spec}' holds a "
            "regression target (no classes): drop --imbalance"
        )
    if imbalance is not None and imbalance < 1.0:
        pool = _long_tail(train.c, k, imbalance, rng)
    n_total = int(pool.size)

    if source.val is not None:
        val = source.val
        train_pool, val_pool = pool, np.arange(val.x.n)
        n_total += val.x.n
        train_rows = int(pool.size)
    else:
        val = train
        train_pool, val_pool = _stratified_split(pool, train.c, k, holdout, rng)
        train_rows = n_total  # the user's fit trains on all of it

    if max_bytes is not None and train.x.n:
        row_bytes = max(1, int(train.x.take(np.asarray([0])).nbytes))
        max_samples = max(min(max_samples, 20000), min(max_samples, max_bytes // row_bytes))
    train_idx = _stratified_sample(train_pool, train.c, k, max_samples, rng)
    val_cap = max(1000, (holdout_base or max_samples) // 4)
    if not regression:
        val_cap = _holdout_cap(np.bincount(val.c[val_pool], minlength=k), val_cap, max_samples)
    val_idx = _stratified_sample(val_pool, val.c, k, val_cap, rng)

    return Dataset(
        x_train=train.x.take(train_idx),
        y_train=train.y[train_idx],
        c_train=train.c[train_idx],
        x_val=val.x.take(val_idx),
        y_val=val.y[val_idx],
        c_val=val.c[val_idx],
        class_names=source.class_names,
        label_format=source.label_format,
        source=spec,
        n_total=n_total,
        n_train_rows=train_rows,
        label_values=source.label_values,
        train_pool_counts=() if regression else _counts(train.c[train_pool], k),
        holdout_pool_counts=() if regression else _counts(val.c[val_pool], k),
        holdout_given=source.val is not None,
    )


def _check_settings(max_samples: int, holdout: float, imbalance: float | None) -> None:
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ConfigError(f"max_samples must be a whole number >= 1 (got {max_samples!r})")
    if not (isinstance(holdout, (int, float)) and 0.0 <= holdout < 1.0):
        raise ConfigError(f"holdout must be a fraction in [0, 1) (got {holdout!r})")
    if imbalance is not None and not (
        isinstance(imbalance, (int, float)) and 0.0 < imbalance <= 1.0
    ):
        raise ConfigError(f"imbalance must be a ratio in (0, 1] (got {imbalance!r})")


def _load_source(
    spec: str, *, base_dir: Path | None, target: str | None, task: str = "auto"
) -> _Source:
    if spec.startswith("builtin:"):
        if task == "regression":
            raise InputError(
                f"'{spec}' is a classification data set (class labels); --task regression "
                "needs a .npz or .csv with a numeric target"
            )
        return _load_builtin(spec)
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if path.is_dir():
        if task == "regression":
            raise InputError(
                f"data folder '{spec}' holds one sub-folder of images per class: a "
                "classification data set; --task regression needs a .npz or .csv"
            )
        return _load_image_folder(spec, path)
    if not path.exists():
        raise InputError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(spec, path, task)
    if suffix in TABLE_SUFFIXES:
        return _load_table(spec, path, target, task)
    raise InputError(
        f"data '{spec}' has an unsupported type '{path.suffix or '(none)'}' (expected "
        "builtin:NAME, a .npz, .csv or .parquet file, or a folder with one sub-folder of "
        "images per class)"
    )


def _array_rows(x: np.ndarray) -> _Rows:
    return _Rows(int(x.shape[0]), lambda idx: np.asarray(x[idx], dtype=np.float32))


def _load_builtin(spec: str) -> _Source:
    name = spec[len("builtin:") :]
    if name not in BUILTIN_DATASETS:
        known = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
        raise InputError(f"unknown built-in dataset '{spec}' (known: {known})")
    stored = "digits" if name == "digits-large" else name
    ref = resources.files("stabcheck.inputs").joinpath("datasets").joinpath(f"{stored}.npz")
    with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        x = np.asarray(npz["x"], dtype=np.float32)
        c = np.asarray(npz["y"], dtype=np.int64)
        names = tuple(str(n) for n in npz["class_names"])
    if name == "digits-large":
        x, c = _augmented_digits(x, c)
    fmt = "binary" if len(names) == 2 else "sparse"
    return _Source(_Labelled(_array_rows(x), c, c), None, names, fmt)


def _augmented_digits(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digits, 18-fold: every 8x8 image shifted by up to one pixel each way (9
    positions, zero-filled), each also with light noise: 32,346 images, enough rows for
    large batch sizes (``fit`` caps a batch at the data it has)."""
    images = x.reshape(-1, 8, 8)
    top = float(images.max()) or 1.0
    rng = np.random.default_rng(0)
    out = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.zeros_like(images)
            src = images[:, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
            shifted[:, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
            out.append(shifted)
            noise = rng.normal(0, 0.03 * top, shifted.shape)
            out.append(np.clip(shifted + noise, 0, top))
    xs = np.concatenate(out).reshape(-1, *x.shape[1:]).astype(np.float32)
    return xs, np.tile(c, len(out))


# ------------------------------------------------------------------------------- npz

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
    :func:`load_dataset`.
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


def _load_npz(spec: str, path: Path, task: str = "auto") -> _Source:
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
        ys, names, fmt, values = _encode_labels(spec, [y], task)
        return _Source(_Labelled(_array_rows(x), ys[0][0], ys[0][1]), None, names, fmt, values)

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
    ys, names, fmt, values = _encode_labels(spec, [y, y_val], task)
    return _Source(
        _Labelled(_array_rows(x), *ys[0]),
        _Labelled(_array_rows(x_val), *ys[1]),
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


# ---------------------------------------------------------------------------- labels


def _encode_labels(
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


# ------------------------------------------------------------------------ csv, parquet


def _load_table(spec: str, path: Path, target: str | None, task: str = "auto") -> _Source:
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
    ys, names, fmt, values = _encode_labels(spec, [y], task)
    return _Source(_Labelled(_array_rows(table.x), *ys[0]), None, names, fmt, values)


def _table_labels(labels: np.ndarray, task: str = "auto") -> np.ndarray:
    """A target column as ``_encode_labels`` takes it: text (a CSV's cells, a Parquet
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


# ---------------------------------------------------------------------------- images


def _load_image_folder(spec: str, path: Path) -> _Source:
    class_dirs = sorted(
        (d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    if not class_dirs:
        raise InputError(
            f"data folder '{spec}' has no class sub-folders (expected {spec}/<class>/<image>, "
            f"images {', '.join(IMAGE_SUFFIXES)})"
        )
    files: list[Path] = []
    classes: list[int] = []
    for index, d in enumerate(class_dirs):
        images = sorted(
            (
                f
                for f in d.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
            ),
            key=lambda f: f.name,
        )
        if not images:
            raise InputError(
                f"data folder '{spec}': class folder '{d.name}' has no images "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        files.extend(images)
        classes.extend([index] * len(images))
    names = tuple(d.name for d in class_dirs)
    c = np.asarray(classes, dtype=np.int64)
    if len(names) < 2:
        raise InputError(
            f"data folder '{spec}' has 1 class folder ({names[0]}); a classifier needs at least 2"
        )

    image_module = _pil(spec)
    size = _image_size(spec, image_module, files[0])

    def take(idx: np.ndarray) -> np.ndarray:
        return _read_images(spec, image_module, [files[i] for i in idx], size)

    fmt = "binary" if len(names) == 2 else "sparse"
    return _Source(_Labelled(_Rows(len(files), take), c, c), None, names, fmt)


def _pil(spec: str) -> Any:
    """The ``PIL.Image`` module, or an ``InputError`` saying Pillow is needed."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError(
            f"data folder '{spec}' holds images; reading them needs Pillow (pip install pillow)"
        ) from None
    return Image


def _image_size(spec: str, image_module: Any, file: Path) -> tuple[int, int]:
    try:
        with image_module.open(file) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise InputError(f"data folder '{spec}': cannot read image '{file}' ({exc})") from None


def _read_images(
    spec: str, image_module: Any, files: list[Path], size: tuple[int, int]
) -> np.ndarray:
    """Decode ``files`` to (n, H, W, C) float32 in [0, 1]; C is 1 if all are grayscale."""
    arrays: list[np.ndarray] = []
    for file in files:
        try:
            with image_module.open(file) as im:
                gray = im.mode in _GRAY_MODES
                im = im.convert("L" if gray else "RGB")
                if im.size != size:
                    im = im.resize(size, image_module.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise InputError(f"data folder '{spec}': cannot read image '{file}' ({exc})") from None
        arrays.append(arr[:, :, None] if arr.ndim == 2 else arr)
    width, height = size
    channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    out = np.empty((len(arrays), height, width, channels), dtype=np.float32)
    for i, arr in enumerate(arrays):
        out[i] = arr  # a grayscale image broadcasts to all three channels
    out /= 255.0
    return out


# -------------------------------------------------------------------------- sampling


def _long_tail(c: np.ndarray, k: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices kept when class ``i`` keeps ``round(n_i * ratio ** (i / (k - 1)))``."""
    kept = []
    for cls in range(k):
        idx = np.flatnonzero(c == cls)
        if idx.size == 0:
            continue
        keep = int(math.floor(idx.size * ratio ** (cls / (k - 1)) + 0.5))
        keep = min(idx.size, max(2, keep))
        kept.append(rng.choice(idx, size=keep, replace=False))
    return np.sort(np.concatenate(kept))


def _stratified_split(
    pool: np.ndarray, c: np.ndarray, k: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` (row indices) into (train, held out) with ``fraction`` of each class."""
    train, held = [], []
    pool_c = c[pool]
    for cls in range(k):
        idx = rng.permutation(pool[pool_c == cls])
        n_held = 0
        if fraction > 0 and idx.size >= 2:
            n_held = min(idx.size - 1, max(1, int(math.floor(idx.size * fraction + 0.5))))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return np.concatenate(train), np.concatenate(held)


def _quotas(counts: np.ndarray, cap: int) -> np.ndarray:
    """Rows per class for a proportional sample of ``cap`` rows (largest remainders).

    Every class with rows keeps at least one, even when that exceeds ``cap``.
    """
    total = int(counts.sum())
    if total <= cap:
        return counts.copy()
    exact = counts * (cap / total)
    quota = np.minimum(counts, np.maximum(np.floor(exact).astype(np.int64), counts > 0))
    short = cap - int(quota.sum())
    if short > 0:
        for cls in np.argsort(-(exact - np.floor(exact)), kind="stable"):
            if short == 0:
                break
            if quota[cls] < counts[cls]:
                quota[cls] += 1
                short -= 1
    while short < 0 and quota.max() > 1:
        quota[int(np.argmax(quota))] -= 1
        short += 1
    return quota


def _counts(c: np.ndarray, k: int) -> tuple[int, ...]:
    return tuple(int(n) for n in np.bincount(c, minlength=k))


def _rows_for(target: int, count: int, total: int) -> int:
    """Rows of a proportional sample of ``total`` rows that hold ``target`` of a class of
    ``count`` (``_quotas`` floors a class's share: ceil keeps it at ``target``)."""
    return math.ceil(target * total / count)


def _holdout_cap(counts: np.ndarray, cap: int, max_samples: int) -> int:
    """The held-out sample's cap: ``cap``, grown (up to ``max_samples``) as far as a class
    needs to keep ``RARE_CLASS_SAMPLES`` rows (or all it has) in a proportional sample."""
    total = int(counts.sum())
    quota = _quotas(counts, cap)
    needed = [_rows_for(min(RARE_CLASS_SAMPLES, int(n)), int(n), total)
              for n, q in zip(counts, quota, strict=True)
              if 0 < q < RARE_CLASS_SAMPLES and q < n]
    if not needed:
        return cap
    return max(cap, min(max(needed), max_samples))


def rare_class_warning(dataset: Dataset) -> str | None:
    """A sentence for the report where a class has fewer than ``RARE_CLASS_SAMPLES`` samples
    to train on or to be judged by (its recall and F1 rest on them), and how to raise them:
    the ``--max-samples`` that a proportional sample needs, and where the data itself holds
    fewer, a larger held-out split or more data. None where every class has enough, for a
    regression target, and where the sampling facts are unknown."""
    if dataset.task == "regression" or not dataset.train_pool_counts:
        return None
    k, names = dataset.n_classes, dataset.class_names
    train = np.bincount(dataset.c_train, minlength=k)
    held = np.bincount(dataset.c_val, minlength=k)
    sides = (  # (sample counts, pool counts, the pool's name, what gives it more)
        (train, np.asarray(dataset.train_pool_counts), "the training data", "more data"),
        (held, np.asarray(dataset.holdout_pool_counts),
         "x_val" if dataset.holdout_given else "the held-out split",
         "a larger x_val" if dataset.holdout_given
         else "a larger holdout (in the config) or more data"),
    )
    short = sorted((c for c in range(k)
                    if any(pool[c] > 0 and have[c] < RARE_CLASS_SAMPLES
                           for have, pool, _, _ in sides)),
                   key=lambda c: (min(train[c], held[c]), c))
    if not short:
        return None
    needed: list[int] = []
    lacking: dict[tuple[str, str], list[str]] = {}  # (pool, remedy) -> its classes
    for c in short:
        for have, pool, where, remedy in sides:
            if have[c] >= RARE_CLASS_SAMPLES:
                continue
            if pool[c] > have[c]:
                needed.append(_rows_for(min(RARE_CLASS_SAMPLES, int(pool[c])), int(pool[c]),
                                        int(pool.sum())))
            if pool[c] < RARE_CLASS_SAMPLES:
                lacking.setdefault((where, remedy), []).append(names[c])
    listed = "; ".join(f"class {names[c]}: {held[c]:,} held out, {train[c]:,} to train on"
                       for c in short[:_LISTED])
    more = f"; {len(short) - _LISTED} more" if len(short) > _LISTED else ""
    text = (f"per-class figures (recall, F1) rest on few samples: "
            f"{plural(len(short), 'class', 'classes')} "
            f"{'has' if len(short) == 1 else 'have'} fewer than {RARE_CLASS_SAMPLES} held "
            f"out or to train on ({listed}{more})")
    advice = []
    if needed:
        advice.append(f"--max-samples {_round_up(max(needed)):,} keeps more of them")
    for (where, remedy), which in lacking.items():
        shown = ", ".join(which[:_LISTED]) + (", ..." if len(which) > _LISTED else "")
        advice.append(f"{where} holds fewer than {RARE_CLASS_SAMPLES} of "
                      f"class{'es' if len(which) > 1 else ''} {shown}: {remedy}")
    return f"{text}: {'; '.join(advice)}"


def _round_up(rows: int) -> int:
    """A --max-samples to suggest: ``rows`` rounded up to two significant digits."""
    step = 10 ** max(0, len(str(rows)) - 2)
    return -(-rows // step) * step


def _stratified_sample(
    pool: np.ndarray, c: np.ndarray, k: int, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """A shuffled, class-proportional sample of at most ``cap`` of ``pool``'s rows."""
    pool_c = c[pool]
    quota = _quotas(np.bincount(pool_c, minlength=k), cap)
    chosen = [rng.permutation(pool[pool_c == cls])[: quota[cls]] for cls in range(k) if quota[cls]]
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)
