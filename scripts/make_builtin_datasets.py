"""Regenerate stabcheck's vendored built-in datasets from scikit-learn's bundled copies.

One-off developer script (scikit-learn is needed here only, never at runtime)::

    python scripts/make_builtin_datasets.py

Writes ``stabcheck/datasets/digits.npz`` and ``stabcheck/datasets/breast_cancer.npz``,
each with ``x`` (float32), ``y`` (int64) and ``class_names`` (str):

- digits: 1797 images of shape (8, 8, 1), pixel values 0..16 scaled to [0, 1] by /16;
- breast_cancer: 569 rows of 30 features, standardized per feature (z-score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits

OUT = Path(__file__).resolve().parent.parent / "stabcheck" / "datasets"


def make_digits() -> dict[str, np.ndarray]:
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 8, 8, 1)
    y = bunch.target.astype(np.int64)
    names = np.array([str(i) for i in range(10)])
    return {"x": x, "y": y, "class_names": names}


def make_breast_cancer() -> dict[str, np.ndarray]:
    bunch = load_breast_cancer()
    data = bunch.data.astype(np.float64)
    std = data.std(axis=0)
    std[std == 0] = 1.0
    x = ((data - data.mean(axis=0)) / std).astype(np.float32)
    y = bunch.target.astype(np.int64)
    names = np.array([str(n) for n in bunch.target_names])  # malignant, benign
    return {"x": x, "y": y, "class_names": names}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, arrays in (("digits", make_digits()), ("breast_cancer", make_breast_cancer())):
        path = OUT / f"{name}.npz"
        np.savez_compressed(path, **arrays)
        print(f"wrote {path} ({path.stat().st_size} bytes): x {arrays['x'].shape}")


if __name__ == "__main__":
    main()
