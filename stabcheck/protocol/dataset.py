"""The prepared data set a worker trains on, and its file (``save_prepared``/``load_prepared``).

The parent samples and splits the user's data once (``inputs.data.load_dataset``) and
writes it as an uncompressed ``.npz``; every worker of the run reads that file. Plain
arrays only (``allow_pickle=False``): nothing but numbers and strings crosses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stabcheck.results import DatasetSummary

LABEL_FORMATS: tuple[str, ...] = ("binary", "sparse", "onehot", "continuous")
# A regression target: the loss sees it as the data holds it (float32), and it has no
# classes (every row's class index is 0, for the sampling, which then draws at random).
CONTINUOUS = "continuous"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A sampled, split data set, ready for a probe.

    ``y_*`` hold labels as the loss sees them: 1-D int64 labels for the ``"binary"`` and
    ``"sparse"`` formats, 2-D float32 one-hot rows for ``"onehot"``. ``c_*`` always hold
    one int64 class index per row (for statistics and class weights).

    Integer labels reach the loss as the data holds them (``label_values`` lists them,
    ascending; class ``i`` is ``label_values[i]``): the loader cannot know the loss, so it
    does not re-encode them, and ``stabcheck.inputs.preflight.losses.check_label_values``
    refuses those the loss cannot take once the loss and the model's outputs are known.
    Labels that the loader has to encode (strings, image folders, one-hot rows) have
    ``label_values`` None and class indices as ``y``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    c_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    c_val: np.ndarray
    class_names: tuple[str, ...]
    label_format: str
    source: str
    n_total: int
    label_values: tuple[int, ...] | None = None
    # Rows the user's own training data holds, before stabcheck's sampling: what a
    # batch of the user's fit can draw from (0: unknown, the sample's size).
    n_train_rows: int = 0
    # Rows per class the training sample and the held-out sample were drawn from (empty:
    # unknown, or a regression target), and whether the data brought its held-out split:
    # what a larger --max-samples could add to a rare class. The parent's only.
    train_pool_counts: tuple[int, ...] = ()
    holdout_pool_counts: tuple[int, ...] = ()
    holdout_given: bool = False

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        """``regression`` for a continuous target, else ``classification``."""
        return "regression" if self.label_format == CONTINUOUS else "classification"

    @property
    def target_width(self) -> int:
        """Columns of a regression target (1 for a 1-D or (n, 1) target)."""
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    @property
    def batch_rows(self) -> int:
        """The most rows one batch of the user's ``fit`` can hold: their training data's
        rows (a larger batch is capped there), not the sample stabcheck trains on."""
        return self.n_train_rows or int(self.x_train.shape[0])

    def summary(self) -> DatasetSummary:
        regression = self.task == "regression"
        counts = () if regression else np.bincount(self.c_train, minlength=self.n_classes)
        return DatasetSummary(
            source=self.source,
            n_samples=int(self.x_train.shape[0]),
            n_total=int(self.n_total),
            n_holdout=int(self.x_val.shape[0]),
            class_names=tuple(self.class_names),
            class_counts=tuple(int(n) for n in counts),
            input_shape=tuple(int(d) for d in self.x_train.shape[1:]),
            label_format=self.label_format,
            task=self.task,
            target=target_summary(self.y_train) if regression else None,
        )


def target_summary(y: np.ndarray) -> dict[str, float | int]:
    """A regression target's min, max, mean and standard deviation (training sample)."""
    values = np.asarray(y, dtype=np.float64)
    if values.size == 0:
        return {"columns": 0}
    return {"min": float(values.min()), "max": float(values.max()),
            "mean": float(values.mean()), "std": float(values.std()),
            "columns": 1 if values.ndim == 1 else int(values.shape[1])}


# ------------------------------------------------------------------- prepared files

_ARRAYS = ("x_train", "y_train", "c_train", "x_val", "y_val", "c_val")


def save_prepared(ds: Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` as an uncompressed ``.npz`` (fast to load in a worker)."""
    arrays = {name: getattr(ds, name) for name in _ARRAYS}
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a path
        np.savez(
            fh,
            **arrays,
            class_names=np.asarray(ds.class_names, dtype=str),
            label_format=np.asarray(ds.label_format),
            source=np.asarray(ds.source),
            n_total=np.asarray(ds.n_total, dtype=np.int64),
            **({} if ds.label_values is None else
               {"label_values": np.asarray(ds.label_values, dtype=np.int64)}),
        )


def load_prepared(path: Path) -> Dataset:
    """Read a ``Dataset`` written by :func:`save_prepared`."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: np.asarray(npz[name]) for name in _ARRAYS}
        return Dataset(
            **arrays,
            class_names=tuple(str(n) for n in npz["class_names"]),
            label_format=str(npz["label_format"]),
            source=str(npz["source"]),
            n_total=int(npz["n_total"]),
            label_values=(tuple(int(v) for v in npz["label_values"])
                          if "label_values" in npz.files else None),
        )
