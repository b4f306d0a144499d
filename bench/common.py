"""What every way of the benchmark shares: the grid, the data, the class weights, the batches.

Numpy and the stabcheck data/class-weight modules only (no TensorFlow), so the driver
(``run.py``) can import it without paying for a framework import. The baselines
(``fit_loop.py``, ``tuner.py``) import it *after* timing their own TensorFlow import.
"""

from __future__ import annotations

import itertools
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL = "cnn"  # stabcheck.worker.templates.build(MODEL, ...) == --model builtin:cnn
DATA = "builtin:digits"
IMBALANCE = 0.05
SEED = 0
BATCH_SIZE = 32
STEPS = 100
LOSS = "sparse_categorical_crossentropy"  # what stabcheck picks for these labels

CLASS_WEIGHTS = ("none", "balanced", "x100")
LRS = (0.001, 0.01, 0.1)
CLIPS = ("none", "global_norm=1.0")

# Larger grids for "how the cost grows" (stabcheck only).
LRS_2X = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
CLIPS_4X = ("none", "global_norm=1.0", "norm=1.0", "value=0.5")


@dataclass(frozen=True)
class Setting:
    class_weight: str
    lr: float
    clip: str

    @property
    def label(self) -> str:
        return f"cw={self.class_weight},lr={self.lr:g},clip={self.clip}"

    def key(self) -> tuple[str, float, str]:
        """Comparable with a stabcheck probe's settings (its clip reads 'global_norm=1')."""
        return (self.class_weight, round(self.lr, 12), normalize_clip(self.clip))


def normalize_clip(clip: str) -> str:
    if clip == "none":
        return "none"
    kind, value = clip.split("=", 1)
    return f"{kind}={float(value):g}"


def grid(
    class_weights=CLASS_WEIGHTS, lrs=LRS, clips=CLIPS
) -> list[Setting]:
    """The settings in stabcheck's order: class weight, then learning rate, then clip."""
    return [Setting(cw, lr, clip) for cw, lr, clip in itertools.product(class_weights, lrs, clips)]


def clip_kwargs(clip: str) -> dict[str, float]:
    """The Keras optimizer argument for a clip spec (as stabcheck's ``parse_clip`` reads it)."""
    if clip == "none":
        return {}
    kind, value = clip.split("=", 1)
    name = {"global_norm": "global_clipnorm", "norm": "clipnorm", "value": "clipvalue"}[kind]
    return {name: float(value)}


def load():
    """The probes' training sample, exactly as stabcheck loads it for this grid."""
    from stabcheck.inputs.data import load_dataset

    return load_dataset(DATA, imbalance=IMBALANCE, seed=SEED)


def class_weight_dicts(dataset) -> dict[str, dict[int, float] | None]:
    """``{strategy: fit(class_weight=...) dict or None}`` from stabcheck's own strategies."""
    from stabcheck.inputs.classweights import class_weights_for

    counts = np.bincount(dataset.c_train, minlength=dataset.n_classes)
    out: dict[str, dict[int, float] | None] = {}
    for strategy in CLASS_WEIGHTS:
        weights = class_weights_for(strategy, counts.tolist(), class_names=dataset.class_names)
        out[strategy] = None if weights is None else {i: float(w) for i, w in enumerate(weights)}
    return out


def _batch_indices_copy(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    # Identical to stabcheck.worker.probe._batch_indices; used only if that import fails.
    rng = np.random.default_rng(seed)
    needed = batch_size * steps
    epochs = [rng.permutation(n) for _ in range(math.ceil(needed / n))]
    return np.split(np.concatenate(epochs)[:needed], steps)


def ordered_rows(dataset, steps: int) -> tuple[np.ndarray, np.ndarray, str]:
    """x and y laid out so that ``fit(batch_size=32, shuffle=False)`` sees stabcheck's batches.

    Call only where TensorFlow is already imported (stabcheck.worker.probe imports it).
    """
    try:
        from stabcheck.worker.probe import _batch_indices

        source = "stabcheck.worker.probe._batch_indices"
    except Exception:  # noqa: BLE001 - a package being edited must not stop the bench
        _batch_indices, source = _batch_indices_copy, "bench copy of _batch_indices"
    batches = _batch_indices(len(dataset.x_train), BATCH_SIZE, steps, SEED)
    flat = np.concatenate(batches)
    return dataset.x_train[flat], dataset.y_train[flat], source


ROOT = Path(__file__).resolve().parent.parent


def git_info() -> dict:
    """The commit the bench ran at, and whether the tree (or stabcheck/) had changes."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "sha": git("rev-parse", "--short", "HEAD") or "nogit",
        "dirty": bool(git("status", "--porcelain")),
        "stabcheck_dirty": bool(git("status", "--porcelain", "--", "stabcheck")),
    }
