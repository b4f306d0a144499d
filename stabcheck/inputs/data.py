"""Load the data a probe trains on: built-in sets, ``.npz``, ``.csv``/``.parquet`` or an image
folder.

``load_dataset`` turns a data spec into a :class:`Dataset`: float32 inputs, labels in the
form the loss will see them, one class index per row, and a stratified held-out split, all
sampled with a seeded generator so that every probe of a run sees the same rows.
``protocol.dataset.save_prepared`` hands that sample to probe worker processes.

This module picks the reader for a spec (``inputs.readers``: one module per kind) and
samples what it reads (``inputs.sampling``); ``inputs.labels`` encodes the labels. The
user's files are only ever read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stabcheck.config.settings import check_holdout
from stabcheck.errors import ConfigError, InputError
from stabcheck.inputs.readers.builtin import load_builtin
from stabcheck.inputs.readers.images import load_image_folder
from stabcheck.inputs.readers.npz import load_npz
from stabcheck.inputs.readers.source import Source
from stabcheck.inputs.readers.table import load_table
from stabcheck.inputs.sampling import (
    class_counts,
    holdout_cap,
    long_tail,
    stratified_sample,
    stratified_split,
)
from stabcheck.inputs.tables import TABLE_SUFFIXES
from stabcheck.protocol.dataset import CONTINUOUS, Dataset


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
    so the per-class figures judged on it keep their meaning (``inputs.sampling``'s
    ``rare_class_warning`` says where even that is too few). Rows come out shuffled.
    Everything draws from ``np.random.default_rng(seed)``, so the same arguments give the
    same ``Dataset``.

    ``task`` (``auto``, ``classification`` or ``regression``) says what the targets are;
    ``auto`` takes floats with non-integer values for a regression target. A regression
    target (label format ``continuous``) is kept as the data holds it, as float32; it has
    no classes, so the split and the caps draw rows at random (nothing to stratify by).

    ``max_bytes`` bounds the training sample by its input's size too (at least 20,000
    rows: the cap ``--max-samples`` left to its default follows the planned steps,
    ``config.settings.sample_rows``); ``holdout_base`` is then the rows the held-out cap
    is a quarter of (else ``max_samples``).

    ``holdout`` is checked by the config's rule (``config.settings.check_holdout``: a
    fraction in (0, 1)), except ``0``, which holds nothing out (for callers that judge on
    data of their own; a config cannot set it).

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
        pool = long_tail(train.c, k, imbalance, rng)
    n_total = int(pool.size)

    if source.val is not None:
        val = source.val
        train_pool, val_pool = pool, np.arange(val.x.n)
        n_total += val.x.n
        train_rows = int(pool.size)
    else:
        val = train
        train_pool, val_pool = stratified_split(pool, train.c, k, holdout, rng)
        train_rows = n_total  # the user's fit trains on all of it

    if max_bytes is not None and train.x.n:
        row_bytes = max(1, int(train.x.take(np.asarray([0])).nbytes))
        max_samples = max(min(max_samples, 20000), min(max_samples, max_bytes // row_bytes))
    train_idx = stratified_sample(train_pool, train.c, k, max_samples, rng)
    val_cap = max(1000, (holdout_base or max_samples) // 4)
    if not regression:
        val_cap = holdout_cap(np.bincount(val.c[val_pool], minlength=k), val_cap, max_samples)
    val_idx = stratified_sample(val_pool, val.c, k, val_cap, rng)

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
        train_pool_counts=() if regression else class_counts(train.c[train_pool], k),
        holdout_pool_counts=() if regression else class_counts(val.c[val_pool], k),
        holdout_given=source.val is not None,
    )


def _check_settings(max_samples: int, holdout: float, imbalance: float | None) -> None:
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ConfigError(f"max_samples must be a whole number >= 1 (got {max_samples!r})")
    if holdout:
        check_holdout(holdout)
    if imbalance is not None and not (
        isinstance(imbalance, (int, float)) and 0.0 < imbalance <= 1.0
    ):
        raise ConfigError(f"imbalance must be a ratio in (0, 1] (got {imbalance!r})")


def _load_source(
    spec: str, *, base_dir: Path | None, target: str | None, task: str = "auto"
) -> Source:
    if spec.startswith("builtin:"):
        if task == "regression":
            raise InputError(
                f"'{spec}' is a classification data set (class labels); --task regression "
                "needs a .npz or .csv with a numeric target"
            )
        return load_builtin(spec)
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if path.is_dir():
        if task == "regression":
            raise InputError(
                f"data folder '{spec}' holds one sub-folder of images per class: a "
                "classification data set; --task regression needs a .npz or .csv"
            )
        return load_image_folder(spec, path)
    if not path.exists():
        raise InputError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(spec, path, task)
    if suffix in TABLE_SUFFIXES:
        return load_table(spec, path, target, task)
    raise InputError(
        f"data '{spec}' has an unsupported type '{path.suffix or '(none)'}' (expected "
        "builtin:NAME, a .npz, .csv or .parquet file, or a folder with one sub-folder of "
        "images per class)"
    )

