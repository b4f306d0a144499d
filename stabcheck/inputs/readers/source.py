"""What a data reader returns: input rows that can be taken by index, with their labels.

Rows are taken lazily (an image folder decodes only the rows sampled), so a reader's
``Source`` holds every row the data has and ``inputs.data`` takes the sample from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rows:
    """Input rows that can be taken by index: an in-memory array or image files."""

    n: int
    take: Callable[[np.ndarray], np.ndarray]  # indices -> float32 array


@dataclass(frozen=True)
class Labelled:
    """Input rows with their encoded labels (the model's ``y`` and a class index each)."""

    x: Rows
    y: np.ndarray
    c: np.ndarray


@dataclass(frozen=True)
class Source:
    train: Labelled
    val: Labelled | None  # a held-out split the source brings (npz x_val/y_val)
    class_names: tuple[str, ...]
    label_format: str
    label_values: tuple[int, ...] | None = None  # integer labels as the data holds them



def array_rows(x: np.ndarray) -> Rows:
    return Rows(int(x.shape[0]), lambda idx: np.asarray(x[idx], dtype=np.float32))
