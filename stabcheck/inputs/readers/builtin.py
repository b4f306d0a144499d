"""The built-in data sets (``builtin:NAME``): small classification sets shipped with
stabcheck in ``inputs/datasets``, and ``digits-large``, the digits shifted and noised.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from stabcheck.errors import InputError
from stabcheck.inputs.readers.source import Labelled, Source, array_rows

BUILTIN_DATASETS: tuple[str, ...] = ("breast_cancer", "digits", "digits-large")


def load_builtin(spec: str) -> Source:
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
    return Source(Labelled(array_rows(x), c, c), None, names, fmt)


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

