"""``make bench``'s ``keras.applications`` grid: the model's factories and their data.

``keras.applications.MobileNet`` (alpha 0.25) and ``MobileNetV2`` (alpha 0.35), both
``weights=None`` (nothing is downloaded), at 32x32x3 on small synthetic long-tailed
images: what a user with an image model would probe. ``stabcheck probe --model
bench/apps.py:mobilenet`` and the bench's plain ``fit`` loop build the same model from the
same factory, after ``keras.utils.set_random_seed``; the data is :func:`data`, saved as
one ``.npz`` (``x``, ``y``, ``x_val``, ``y_val``) that both read.

The bench uses :func:`mobilenet` (``common.APPS_FACTORY``): on a CPU both models' cost per
setting is mostly the first step (building the training function: ~5 s for MobileNet,
~12 s for MobileNetV2 on two cores, against 25-45 ms a step), and MobileNet keeps the
grid's fit loop near a minute instead of two.

This file stands alone: stabcheck imports it by path inside its worker, so it imports
nothing from ``bench/``, and only numpy until the factory runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_SHAPE = (32, 32, 3)
CLASS_COUNTS = (400, 160, 64, 24)  # long-tailed: the rarest class has 6% of the largest's
VAL_PER_CLASS = 16  # a held-out split with every class (its own x_val/y_val)
NOISE = 2.0  # prototype + noise: learnable, not trivially (as bench/zoo.py's images)
DATA_SEED = 2345
LEARNING_RATE = 1e-3  # the factory's optimizer; every probe and fit recompiles at its lr


def data() -> dict[str, np.ndarray]:
    """Long-tailed 32x32x3 images of ``len(CLASS_COUNTS)`` classes: a class's random
    prototype plus Gaussian noise, shuffled; ``x_val``/``y_val`` hold
    ``VAL_PER_CLASS`` rows of every class."""
    rng = np.random.default_rng(DATA_SEED)
    k = len(CLASS_COUNTS)
    protos = rng.normal(size=(k, *IMAGE_SHAPE))

    def draw(counts) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(k), counts)
        rng.shuffle(y)
        x = protos[y] + NOISE * rng.normal(size=(len(y), *IMAGE_SHAPE))
        return x.astype(np.float32), y.astype(np.int64)

    x, y = draw(CLASS_COUNTS)
    x_val, y_val = draw([VAL_PER_CLASS] * k)
    return {"x": x, "y": y, "x_val": x_val, "y_val": y_val}


def mobilenet() -> Any:
    """``keras.applications.MobileNet(alpha=0.25, weights=None)`` at 32x32x3, compiled
    with Adam and sparse categorical cross-entropy."""
    import keras

    model = keras.applications.MobileNet(input_shape=IMAGE_SHAPE, alpha=0.25, weights=None,
                                         classes=len(CLASS_COUNTS))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss="sparse_categorical_crossentropy")
    return model


def mobilenet_v2() -> Any:
    """``keras.applications.MobileNetV2(alpha=0.35, weights=None)`` at 32x32x3, compiled
    with Adam and sparse categorical cross-entropy."""
    import keras

    model = keras.applications.MobileNetV2(input_shape=IMAGE_SHAPE, alpha=0.35, weights=None,
                                           classes=len(CLASS_COUNTS))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss="sparse_categorical_crossentropy")
    return model
