"""The imbalanced problems of ``make bench-validity`` (``bench/validity.py``).

Each problem is synthetic data built offline with numpy from a fixed seed (arrays
``x``, ``y``, ``x_val``, ``y_val``, saved as an ``.npz`` that ``stabcheck probe --data`` reads),
a factory (no arguments, returns a compiled Keras model; stabcheck imports this file by
path, so it imports only numpy until a factory runs), a batch size, the settings probed
(class weight x learning rate x clip, one grid per problem), optionally the subset of them
that gets long runs, and the long runs' epochs.

The ``kio_*`` problems are built like the keras-io examples users start from: the
example's own model code, optimizer, batch size and training length, on stand-in data of
the real data set's shape and class balance (each data function says what it imitates
and where it departs from the real set).
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
    # Epochs of every long run (None: the bench's default, ``validity.EPOCHS``); the
    # keras-io problems train as long as their example does (or as close as 2 cores allow).
    epochs: int | None = None
    # The settings that get long runs, a subset of the grid (empty: all of it). The probe
    # always runs the whole grid (stabcheck probes a product of the lists).
    long_settings: tuple[tuple[str, float, str], ...] = ()

    def grid(self) -> list[tuple[str, float, str]]:
        """(class weight, lr, clip) of every probe, in stabcheck's grid order."""
        return list(itertools.product(self.class_weights, self.lrs, self.clips))

    def settings(self) -> list[tuple[str, float, str]]:
        """(class weight, lr, clip) of the settings compared (probe and long runs), in
        stabcheck's grid order: the grid, or its ``long_settings`` where given."""
        if not self.long_settings:
            return self.grid()
        wanted = set(self.long_settings)
        unknown = wanted - set(self.grid())
        if unknown:
            raise ValueError(f"{self.name}: long_settings {sorted(unknown)} are not in the grid")
        return [s for s in self.grid() if s in wanted]


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



# ------------------------------------------------- problems built like keras-io examples

# keras-io "Imbalanced classification: credit card fraud detection" (Kaggle's creditcard.csv,
# 284,807 rows, 492 frauds): the example holds out the last 20% (56,961 rows) and reports
# 417 positives among its 227,846 training rows; its class weights are 1 / count.
KIO_FRAUD_TRAIN = (227_429, 417)
KIO_FRAUD_VAL = (56_886, 75)
KIO_FRAUD_WEIGHTS = {"0": 1.0 / KIO_FRAUD_TRAIN[0], "1": 1.0 / KIO_FRAUD_TRAIN[1]}


def kio_fraud_data():
    """Stand-in for the fraud example's data at full size: 227,846 training rows (417
    positives, 0.18%) and 56,961 held out (75 positives) of 30 features, standardized
    with the training rows' mean and standard deviation as the example does. Like the
    real set: a 'Time' column (seconds over two days), 28 heavy-tailed PCA-like columns
    (Student t, 3 degrees of freedom) and a log-normal 'Amount'; frauds are shifted in 21
    of the PCA-like columns (by the signs and rough sizes of the real V1..V21 differences,
    each fraud by its own random fraction of them) and spread twice as wide, so that a
    linear score ranks them at ROC-AUC ~0.97 and about 60% of the top 75 held-out scores
    are frauds (the real set's separability, roughly)."""
    rng = np.random.default_rng(SEED + 20)
    shift = np.array([-4.0, 3.0, -5.0, 3.5, -2.5, -1.5, -4.5, 0.5, -2.0, -4.5, 3.0, -5.0,
                      0.0, -6.0, 0.0, -3.5, -5.0, -2.0, 0.8, 0.3, 0.4] + [0.0] * 7,
                     dtype=np.float32)

    def make(c, n):
        x = rng.standard_t(df=3, size=(n, 30)).astype(np.float32) / np.sqrt(3.0)
        x[:, 0] = rng.uniform(0, 172_792, n)  # Time
        x[:, 29] = rng.lognormal(3.0, 1.5, n)  # Amount
        if c == 1:
            spread = 0.5 * rng.uniform(0.1, 1.6, size=(n, 1)).astype(np.float32)
            x[:, 1:29] = x[:, 1:29] * 2.0 + shift * spread
            x[:, 29] = rng.lognormal(3.5, 1.8, n)
        return x

    x, y = _split_counts(rng, KIO_FRAUD_TRAIN, make)
    xv, yv = _split_counts(rng, KIO_FRAUD_VAL, make)
    mean, std = x.mean(axis=0), x.std(axis=0)
    return {"x": (x - mean) / std, "y": y, "x_val": (xv - mean) / std, "y_val": yv}


def kio_fraud():
    """The fraud example's model, as written there: Dense(256) x 3 with Dropout(0.3) after
    the second and third, a sigmoid unit, Adam(1e-2), binary crossentropy."""
    import keras

    model = keras.Sequential([
        keras.Input(shape=(30,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


KIO_TEXT_VOCAB = 20_000
KIO_TEXT_LENGTH = 500


def kio_text_data():
    """Stand-in for IMDB as the "Text classification from scratch" example sees it after
    ``TextVectorization(max_tokens=20000, output_sequence_length=500)``: its 20,000
    training reviews (the 80% ``validation_split`` of the 25,000, so the two classes are
    not exactly tied: 10,013 negative / 9,987 positive, as a random split gives) and 5,000
    validation reviews (2,487 / 2,513), full size. Review lengths are log-normal (median
    175 tokens, about 6% longer than 500 and cut there, zero-padded after); token 1 is the
    OOV token (3%); the others follow a Zipf law over the vocabulary. 1,600 mid-frequency
    tokens carry the sentiment: 800 are 1.6x as frequent in positive reviews and 1.6x
    rarer in negative ones, 800 the other way round (a bag-of-words naive Bayes scores
    ~0.9 held-out accuracy; the real IMDB's ~0.85)."""
    rng = np.random.default_rng(SEED + 21)
    ranks = np.arange(KIO_TEXT_VOCAB - 2)
    base = 1.0 / (ranks + 10.0) ** 1.07
    base /= base.sum()
    sentiment = rng.choice(np.arange(150, 8000), size=1600, replace=False)
    tilt = 1.6

    def cumulative(c):
        p = base.copy()
        up, down = (sentiment[:800], sentiment[800:]) if c == 1 else \
            (sentiment[800:], sentiment[:800])
        p[up] *= tilt
        p[down] /= tilt
        p = np.concatenate([[0.03 / 0.97 * p.sum()], p])  # token 1: OOV
        return np.cumsum(p / p.sum())

    tables = [cumulative(0), cumulative(1)]

    def make(c, n):
        x = np.zeros((n, KIO_TEXT_LENGTH), dtype=np.int32)
        lengths = np.clip(rng.lognormal(np.log(175), 0.7, n).astype(int), 10,
                          KIO_TEXT_LENGTH)
        for row, m in zip(x, lengths, strict=True):
            row[:m] = 1 + np.searchsorted(tables[c], rng.random(m))
        return x

    x, y = _split_counts(rng, [10_013, 9_987], make)
    xv, yv = _split_counts(rng, [2_487, 2_513], make)
    return {"x": x.astype(np.int32), "y": y, "x_val": xv.astype(np.int32), "y_val": yv}


def kio_text():
    """The text example's end-to-end model, as written there (its TextVectorization
    layer already applied to the data): Embedding(20000, 128), Dropout(0.5), two
    Conv1D(128, 7, strides=3, relu), GlobalMaxPooling1D, Dense(128, relu), Dropout(0.5),
    a sigmoid unit; ``optimizer="adam"`` (1e-3), binary crossentropy."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(KIO_TEXT_VOCAB, 128)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    return model


def kio_forda_data():
    """Stand-in for FordA as the "Timeseries classification from scratch" example reads
    it: 500 time steps of 1 channel, each series z-normalized, 3,601 training series and
    1,320 held out (the real test set's size). Made imbalanced on purpose (the real
    training set is about 51/49): 3,241 / 360 training series (10% positives); the
    held-out set stays balanced (660 / 660) as the real test set is. A series is 4
    random low-frequency sinusoids plus AR(1) noise (engine-noise-like) and one transient
    burst: a class-1 burst is wider and higher-pitched (0.26-0.34 cycles per step) than
    a class-0 one (0.18-0.26), and a class-0 burst may be as strong, so the classes
    overlap a little."""
    rng = np.random.default_rng(SEED + 22)
    steps = 500
    t = np.arange(steps)

    def make(c, n):
        x = np.zeros((n, steps))
        for _ in range(4):
            f = rng.uniform(0.005, 0.12, (n, 1))
            x += rng.uniform(0.3, 1.0, (n, 1)) * np.sin(2 * np.pi * f * t
                                                        + rng.uniform(0, 2 * np.pi, (n, 1)))
        e = rng.normal(0, 0.6, (n, steps))
        for i in range(1, steps):
            e[:, i] += 0.6 * e[:, i - 1]
        x += e
        at = rng.uniform(40, steps - 40, (n, 1))
        if c == 1:
            width, freq, amp = (rng.uniform(15, 35, (n, 1)), rng.uniform(0.26, 0.34, (n, 1)),
                                rng.uniform(0.4, 1.6, (n, 1)))
        else:
            width, freq, amp = (rng.uniform(8, 20, (n, 1)), rng.uniform(0.18, 0.26, (n, 1)),
                                rng.uniform(0.0, 1.6, (n, 1)))
        x += amp * np.exp(-0.5 * ((t - at) / width) ** 2) * np.sin(
            2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
        x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        return x[..., None]

    x, y = _split_counts(rng, [3_241, 360], make)
    xv, yv = _split_counts(rng, [660, 660], make)
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def kio_forda():
    """The timeseries example's fully convolutional network, as written there: three
    [Conv1D(64, 3, padding="same"), BatchNormalization, ReLU], GlobalAveragePooling1D,
    Dense(2, softmax); ``optimizer="adam"`` (1e-3), sparse categorical crossentropy."""
    import keras

    input_layer = keras.layers.Input((500, 1))
    conv1 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)
    conv2 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)
    conv3 = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)
    gap = keras.layers.GlobalAveragePooling1D()(conv3)
    output_layer = keras.layers.Dense(2, activation="softmax")(gap)
    model = keras.models.Model(inputs=input_layer, outputs=output_layer)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


# Digit strokes in a unit box (x to the right, y down): polylines per digit.
def _arc(cx, cy, rx, ry, a0, a1, n=10):
    a = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _digit_strokes():
    line = np.array
    return {
        0: [_arc(.5, .5, .28, .4, 0, 360, 16)],
        1: [line([[.35, .25], [.55, .1], [.55, .9]])],
        2: [np.concatenate([_arc(.5, .32, .25, .22, 200, 360, 8),
                            line([[.75, .35], [.25, .9], [.8, .9]])])],
        3: [_arc(.47, .3, .25, .2, 200, 450), _arc(.47, .7, .27, .2, 270, 520)],
        4: [line([[.6, .1], [.2, .65], [.85, .65]]), line([[.65, .35], [.65, .92]])],
        5: [line([[.75, .1], [.3, .1], [.27, .45]]), _arc(.5, .65, .27, .25, 220, 500, 12)],
        6: [line([[.65, .1], [.3, .55]]), _arc(.5, .7, .23, .2, 0, 360, 12)],
        7: [line([[.2, .1], [.8, .1], [.4, .92]])],
        8: [_arc(.5, .3, .2, .2, 0, 360, 12), _arc(.5, .7, .26, .22, 0, 360, 12)],
        9: [_arc(.5, .32, .23, .2, 0, 360, 12), line([[.73, .35], [.6, .92]])],
    }


def _render_digits(rng, digit, n, chunk=500):
    """``n`` 28x28x1 images in [0, 1] of one digit: its strokes under a random affine map
    (rotation, scale, shear, shift) with jittered end points and a random stroke width,
    drawn as a soft line, plus sparse pixel noise."""
    polys = _digit_strokes()[digit]
    seg = np.concatenate([np.stack([p[:-1], p[1:]], axis=1) for p in polys])  # (m, 2, 2)
    g = (np.arange(28) + 0.5) / 28
    pixels = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).reshape(-1, 2)
    out = []
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        ang, scale = rng.normal(0, 0.18, k), rng.uniform(0.75, 0.95, k)
        shear = rng.normal(0, 0.15, k)
        a = np.empty((k, 2, 2))
        a[:, 0, 0], a[:, 0, 1] = scale * np.cos(ang), -scale * np.sin(ang) + shear
        a[:, 1, 0], a[:, 1, 1] = scale * np.sin(ang), scale * np.cos(ang)
        p = seg[None] - 0.5 + rng.normal(0, 0.02, (k, *seg.shape))
        p = np.einsum("nij,nmkj->nmki", a, p) + 0.5 + rng.normal(0, 0.05, (k, 1, 1, 2))
        start_pt, along = p[:, :, 0], p[:, :, 1] - p[:, :, 0]  # (k, m, 2)
        rel = pixels[None, None] - start_pt[:, :, None]  # (k, m, 784, 2)
        frac = np.clip((rel * along[:, :, None]).sum(-1)
                       / np.maximum((along ** 2).sum(-1), 1e-9)[:, :, None], 0, 1)
        dist = np.linalg.norm(rel - frac[..., None] * along[:, :, None], axis=-1).min(axis=1)
        img = np.clip(1.3 * np.exp(-(dist / rng.uniform(0.035, 0.07, (k, 1))) ** 2), 0, 1)
        noise = rng.normal(0, 0.1, img.shape) * (rng.random(img.shape) < 0.1)
        out.append(np.clip(img + noise, 0, 1).reshape(k, 28, 28, 1))
    return np.concatenate(out).astype(np.float32)


def kio_mnist_lt_data():
    """Stand-in for MNIST made long-tailed, as the "Simple MNIST convnet" example reads
    it (28x28x1 in [0, 1]): digit-like strokes (each digit's polylines under a random
    affine map, jitter and stroke width, plus sparse noise), training counts geometric
    from 5,000 (digit 0) to 50 (digit 9): 5000/2997/1797/1077/646/387/232/139/83/50,
    12,408 images; a balanced held-out set of 500 per digit."""
    rng = np.random.default_rng(SEED + 23)
    counts = np.round(5000 * 0.01 ** (np.arange(10) / 9)).astype(int)
    x, y = _split_counts(rng, counts, lambda c, n: _render_digits(rng, c, n))
    xv, yv = _split_counts(rng, [500] * 10, lambda c, n: _render_digits(rng, c, n))
    return {"x": x, "y": y, "x_val": xv, "y_val": yv}


def kio_mnist_lt():
    """The MNIST example's convnet, as written there: Conv2D(32, 3, relu), MaxPooling2D,
    Conv2D(64, 3, relu), MaxPooling2D, Flatten, Dropout(0.5), Dense(10, softmax);
    ``optimizer="adam"`` (1e-3). The example one-hot encodes its labels for
    ``categorical_crossentropy``; stabcheck probes integer labels, so the sparse form of
    the same loss."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
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
    # keras-io examples (see their factories and data functions). Long runs as long as the
    # example trains, except FordA (500 epochs with early stopping there: 50 here).
    Problem("kio_fraud", "keras-io fraud example: 227,846 x 30, 0.18% positives, "
            "Dense(256) x 3, Adam(1e-2), 1/count weights (custom)",
            "kio_fraud", kio_fraud_data, 2048, ("none", "custom", "balanced", "x100"),
            (1e-3, 1e-2, 1e-1), ("none", "global_norm=1.0"), custom=KIO_FRAUD_WEIGHTS,
            held_out=True, epochs=30,
            # Long runs: every class weight and lr without clipping, and with
            # global_norm=1.0 at lr 0.1 (where clipping decides); 16 of the 24 probes.
            long_settings=tuple(
                [(cw, lr, "none") for cw in ("none", "custom", "balanced", "x100")
                 for lr in (1e-3, 1e-2, 1e-1)]
                + [(cw, 1e-1, "global_norm=1.0")
                   for cw in ("none", "custom", "balanced", "x100")])),
    Problem("kio_text", "keras-io text from scratch: IMDB-like 20,000 x 500 tokens, 50/50, "
            "Embedding + Conv1D x 2, Adam", "kio_text", kio_text_data, 32,
            ("none", "x10", "x100"), (1e-3, 1e-2), held_out=True, epochs=3),
    Problem("kio_forda", "keras-io timeseries FCN: FordA-like 3,601 x 500, made 10% "
            "positives, Conv1D + BatchNorm x 3, Adam", "kio_forda", kio_forda_data, 32,
            ("none", "balanced", "x100"), (1e-3, 1e-2), held_out=True, epochs=50),
    Problem("kio_mnist_lt", "keras-io MNIST convnet: digit-like 28x28, 10 classes long-tailed "
            "5000 -> 50, Adam", "kio_mnist_lt", kio_mnist_lt_data, 128,
            ("none", "balanced", "sqrt", "x100"), (1e-3, 1e-2), held_out=True, epochs=15),
]
