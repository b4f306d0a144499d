"""The imbalanced problems of ``make bench-validity`` (``bench/validity.py``).

Each problem is small synthetic data built offline with numpy from a fixed seed (arrays
``x``, ``y``, ``x_val``, ``y_val``, saved as an ``.npz`` that ``stabcheck probe --data`` reads),
a factory (no arguments, returns a compiled Keras model; stabcheck imports this file by
path, so it imports only numpy until a factory runs), a batch size, and the settings
probed (class weight x learning rate x clip, one grid per problem).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

SEED = 1234


@dataclass(frozen=True)
class Problem:
    name: str
    what: str
    factory: str
    data: object  # () -> dict of arrays
    batch_size: int
    class_weights: tuple[str, ...]
    lrs: tuple[float, ...]
    clips: tuple[str, ...] = ("none",)
    custom: dict = field(default_factory=dict)  # [custom_class_weight] table, label -> weight
    quick: bool = False
    # Added after the classifier's thresholds were last chosen and never used to choose
    # them: the held-out problems tell whether the thresholds generalize.
    held_out: bool = False

    def settings(self) -> list[tuple[str, float, str]]:
        """(class weight, lr, clip) in stabcheck's grid order."""
        return list(itertools.product(self.class_weights, self.lrs, self.clips))


# ------------------------------------------------------------------------------ data


def _split_counts(rng, counts, make):
    xs, ys = [], []
    for c, n in enumerate(counts):
        xs.append(make(c, int(n)))
        ys.append(np.full(int(n), c, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def fraud_data():
    """Credit-card-fraud style: 30 standardized features, 0.2% positives whose features
    are shifted in a few dimensions, heavy-tailed 'amount'."""
    rng = np.random.default_rng(SEED)
    shift = np.zeros(30, dtype=np.float32)
    shift[:6] = [1.6, -1.4, 1.2, -1.0, 1.3, 0.9]

    def make(c, n):
        x = rng.standard_t(df=4, size=(n, 30)).astype(np.float32) * 0.8
        x[:, -1] = np.log1p(rng.lognormal(3.0, 1.2, size=n)) - 3.0
        if c == 1:
            x[:, :30] += shift * 1.8
        return x

    x, y = _split_counts(rng, [11976, 24], make)
    xv, yv = _split_counts(rng, [2988, 12], make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def _templates(rng, k, shape, smooth=True):
    t = rng.normal(size=(k, *shape)).astype(np.float32)
    if smooth:  # blur the noise into blobs
        for axis in (1, 2):
            t = (t + np.roll(t, 1, axis=axis) + np.roll(t, -1, axis=axis)) / 3
    return t / t.std(axis=tuple(range(1, t.ndim)), keepdims=True)


def longtail_images_data():
    """8 classes of 12x12x1 images (a template per class + noise), long-tailed 300 -> 6
    training images; a balanced held-out set of 25 per class."""
    rng = np.random.default_rng(SEED + 1)
    k = 8
    tpl = _templates(rng, k, (12, 12, 1))

    def make(c, n):
        return 0.7 * tpl[c] + rng.normal(size=(n, 12, 12, 1)).astype(np.float32)

    counts = np.maximum(np.round(300 * 0.02 ** (np.arange(k) / (k - 1))), 2)
    x, y = _split_counts(rng, counts, make)
    xv, yv = _split_counts(rng, [25] * k, make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def bn_cnn_data():
    """4 classes of 16x16x3 images, 400/120/40/12 training images, 30 held-out each."""
    rng = np.random.default_rng(SEED + 2)
    tpl = _templates(rng, 4, (16, 16, 3))

    def make(c, n):
        return 0.6 * tpl[c] + rng.normal(size=(n, 16, 16, 3)).astype(np.float32)

    x, y = _split_counts(rng, [400, 120, 40, 12], make)
    xv, yv = _split_counts(rng, [30] * 4, make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def text_data():
    """Token sequences (length 30, vocabulary 300), 3 classes 1500/150/30: each class has
    8 marker tokens, a few of which appear in each of its documents."""
    rng = np.random.default_rng(SEED + 3)
    vocab, length = 300, 30
    markers = rng.permutation(np.arange(10, vocab))[:24].reshape(3, 8)

    def make(c, n):
        x = rng.integers(1, vocab, size=(n, length))
        for row in x:
            pos = rng.choice(length, size=4, replace=False)
            row[pos] = rng.choice(markers[c], size=4)
        return x

    x, y = _split_counts(rng, [1500, 150, 30], make)
    xv, yv = _split_counts(rng, [300, 60, 30], make)
    return {"x": x.astype(np.int64), "y": y, "x_val": xv.astype(np.int64), "y_val": yv}


def forum_1000_data():
    """Binary, 20 features, 4% positives (the forum question's 'weight the rare class
    1000x' case)."""
    rng = np.random.default_rng(SEED + 4)
    shift = np.concatenate([np.full(5, 1.0), np.zeros(15)]).astype(np.float32)

    def make(c, n):
        return rng.normal(size=(n, 20)).astype(np.float32) + (shift if c else 0)

    x, y = _split_counts(rng, [3840, 160], make)
    xv, yv = _split_counts(rng, [960, 40], make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def many_class_data():
    """20 overlapping Gaussian classes in 16 dimensions, long-tailed 400 -> 4 training
    rows, held-out rows long-tailed alike (the deployment distribution)."""
    rng = np.random.default_rng(SEED + 5)
    k = 20
    centers = rng.normal(size=(k, 16)).astype(np.float32) * 1.1

    def make(c, n):
        return centers[c] + rng.normal(size=(n, 16)).astype(np.float32)

    ratio = 0.01 ** (np.arange(k) / (k - 1))
    x, y = _split_counts(rng, np.maximum(np.round(400 * ratio), 4), make)
    xv, yv = _split_counts(rng, np.maximum(np.round(100 * ratio), 3), make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def overlap_churn_data():
    """Binary churn-style tabular data, 2.5% positives whose 12 features overlap the
    negatives' heavily (a shift of 0.5 standard deviations in 3 of them): an unweighted
    model may never call a positive."""
    rng = np.random.default_rng(SEED + 6)
    shift = np.concatenate([np.full(3, 0.5), np.zeros(9)]).astype(np.float32)

    def make(c, n):
        return rng.normal(size=(n, 12)).astype(np.float32) + (shift if c else 0)

    x, y = _split_counts(rng, [7800, 200], make)
    xv, yv = _split_counts(rng, [1950, 50], make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def conv_text_data():
    """Binary token sequences (length 40, vocabulary 500), 5% positives: a positive holds
    one of 6 trigger bigrams somewhere in it, a negative may hold one of its halves."""
    rng = np.random.default_rng(SEED + 7)
    vocab, length = 500, 40
    triggers = rng.integers(20, vocab, size=(6, 2))

    def make(c, n):
        x = rng.integers(1, vocab, size=(n, length))
        for row in x:
            pos = int(rng.integers(0, length - 1))
            pair = triggers[int(rng.integers(0, 6))]
            if c == 1:
                row[pos:pos + 2] = pair
            elif rng.random() < 0.3:
                row[pos] = pair[int(rng.integers(0, 2))]
        return x

    x, y = _split_counts(rng, [3800, 200], make)
    xv, yv = _split_counts(rng, [950, 50], make)
    return {"x": x.astype(np.int64), "y": y, "x_val": xv.astype(np.int64), "y_val": yv}


def deep_bn_data():
    """5 Gaussian classes in 24 dimensions, long-tailed 1000/300/100/30/12 training rows,
    60/40/30/20/10 held out."""
    rng = np.random.default_rng(SEED + 8)
    centers = rng.normal(size=(5, 24)).astype(np.float32) * 0.6

    def make(c, n):
        return centers[c] + rng.normal(size=(n, 24)).astype(np.float32)

    x, y = _split_counts(rng, [1000, 300, 100, 30, 12], make)
    xv, yv = _split_counts(rng, [60, 40, 30, 20, 10], make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


# --------------------------------------------------------------------------- models


def _mlp(n_in: int, widths: tuple[int, ...], n_out: int, optimizer):
    """Dense-ReLU layers of ``widths``, then a sigmoid unit (``n_out`` 1, binary
    crossentropy) or a softmax over ``n_out`` classes (sparse categorical crossentropy)."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((n_in,)),
        *[layers.Dense(w, activation="relu") for w in widths],
        layers.Dense(n_out, activation="sigmoid" if n_out == 1 else "softmax"),
    ])
    model.compile(optimizer, "binary_crossentropy" if n_out == 1
                  else "sparse_categorical_crossentropy")
    return model


def fraud_mlp():
    """The Keras fraud example's shape (smaller): Dense + Dropout, sigmoid, Adam."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((30,)),
        layers.Dense(64, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return model


def small_convnet():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(8, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def bn_cnn():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.Conv2D(16, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def embedding_text():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((30,), dtype="int32"),
        layers.Embedding(300, 16),
        layers.GlobalAveragePooling1D(),
        layers.Dense(16, activation="relu"),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def forum_mlp_sgd():
    import keras

    return _mlp(20, (32,), 1, keras.optimizers.SGD(1e-2, momentum=0.9))


def many_class_mlp():
    import keras

    return _mlp(16, (64,), 20, keras.optimizers.Adam(1e-3))


def churn_mlp():
    import keras

    return _mlp(12, (32, 32), 1, keras.optimizers.RMSprop(1e-3))


def conv_text():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((40,), dtype="int32"),
        layers.Embedding(500, 16),
        layers.Conv1D(32, 2, activation="relu"),
        layers.GlobalMaxPooling1D(),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return model


def deep_bn_mlp():
    import keras
    from keras import layers

    inputs = keras.Input((24,))
    h = inputs
    for width in (64, 64, 32):
        h = layers.Dense(width)(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
    outputs = layers.Dense(5, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(1e-2, momentum=0.9), "sparse_categorical_crossentropy")
    return model


PROBLEMS = [
    Problem("fraud", "tabular, 0.2% positives, Keras fraud example weights (balanced)",
            "fraud_mlp", fraud_data, 256, ("none", "balanced"), (1e-3, 1e-2, 1e-1),
            quick=True),
    Problem("longtail_images", "8-class long-tailed images (300 -> 6), small conv net",
            "small_convnet", longtail_images_data, 32, ("none", "balanced", "sqrt"),
            (1e-3, 1e-2)),
    Problem("bn_cnn", "BatchNorm CNN, 4 classes 400/120/40/12", "bn_cnn", bn_cnn_data, 32,
            ("none", "balanced"), (1e-3, 1e-2)),
    Problem("embedding_text", "Embedding text model, 3 classes 1500/150/30",
            "embedding_text", text_data, 32, ("none", "balanced"), (1e-3, 1e-1)),
    Problem("forum_1000", "binary 4% positives, weights 1:1000 (custom), SGD momentum",
            "forum_mlp_sgd", forum_1000_data, 64, ("none", "custom"), (1e-2, 1e-1),
            ("none", "global_norm=1.0"), custom={"0": 1.0, "1": 1000.0}, quick=True),
    Problem("many_class", "20 classes long-tailed 400 -> 4, balanced over-predicts rare",
            "many_class_mlp", many_class_data, 64, ("none", "balanced"), (1e-3, 1e-2)),
    Problem("overlap_churn", "binary 2.5% positives, heavily overlapping features, RMSprop",
            "churn_mlp", overlap_churn_data, 128, ("none", "balanced"), (1e-3, 1e-2),
            held_out=True),
    Problem("conv_text", "Conv1D text model, binary 5% positives (trigger bigrams)",
            "conv_text", conv_text_data, 64, ("none", "balanced", "sqrt"), (1e-3, 3e-2),
            held_out=True),
    Problem("deep_bn_mlp", "BatchNorm MLP, 5 classes 1000 -> 12, SGD momentum",
            "deep_bn_mlp", deep_bn_data, 64, ("none", "balanced"), (1e-2, 1e-1),
            held_out=True),
]
