"""The fidelity benchmark's model zoo: small Keras models of many kinds, with their data.

Every factory takes no arguments and returns a compiled ``keras.Model`` (loss, optimizer
with :data:`LEARNING_RATE`), so that ``stabcheck probe --model bench/zoo.py:<factory>``
and a plain ``model.fit`` build exactly the same model. Every data function returns the
arrays of one ``.npz`` (``x``, ``y``, ``x_val``, ``y_val``), drawn from a fixed seed, so
both sides of the comparison also see the same data.

This file stands alone: stabcheck imports it by path inside its worker, so it imports
nothing from ``bench/``. Importing it needs only numpy; Keras is imported by the
factories, and the zoo's ``keras.Model`` subclasses are defined on first use
(:func:`_classes`), so the benchmark's driver can read :data:`ZOO` without a framework.

Nothing is downloaded: the ``keras.applications`` models are built with
``weights=None``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

LEARNING_RATE = 1e-3  # every factory's optimizer; the probe gets the same --lr
DATA_SEED = 1234
VOCAB = 1000
SEQ_LEN = 32
IMAGE_SHAPE = (32, 32, 3)
N_IMAGE_CLASSES = 10

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo and how the benchmark trains it.

    Attributes:
        name: the row's name in the report.
        factory: the name of the factory function in this file.
        data: returns the arrays of the entry's ``.npz``.
        batch_size: the batch size of both runs.
        steps: optimizer steps of both runs (the benchmark's ``--steps`` overrides it).
        deterministic: whether two runs of the same batches must give the same losses;
            False for models that draw random numbers while training (Dropout).
        quick: whether ``--quick`` keeps the entry.
        note: what the entry covers.
        trains_on: the entry's held-out predictions miss classes after its steps, so its
            probe is evaluated and trains past them (the collapse extension, up to 4x);
            the benchmark says when it did not. ``--quick`` keeps its steps.
        learning_rates: the probes' learning rates (``--lr``), the fit's too: several
            make a grid in one worker (``--workers 1``), and the row compares the probe
            that ran last with a fit at its rate. Empty: :data:`LEARNING_RATE` alone,
            the factory's.
    """

    name: str
    factory: str
    data: Callable[[], Arrays]
    batch_size: int
    steps: int
    deterministic: bool = True
    quick: bool = False
    note: str = ""
    trains_on: bool = False
    learning_rates: tuple[float, ...] = ()


# ------------------------------------------------------------------------------ data


def _split(x: np.ndarray, y: np.ndarray, n_val: int) -> Arrays:
    """The last ``n_val`` rows as the held-out split."""
    return {"x": x[:-n_val], "y": y[:-n_val], "x_val": x[-n_val:], "y_val": y[-n_val:]}


def _prototypes(shape: tuple[int, ...], n: int, n_classes: int, noise: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of a class's random prototype plus Gaussian noise, and their classes."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(n_classes, *shape))
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    x = protos[y] + noise * rng.normal(size=(n, *shape))
    return x.astype(np.float32), y.astype(np.int64)


def blob_data() -> Arrays:
    """20 unit-scale features, 3 classes."""
    x, y = _prototypes((20,), 448, 3, 1.5, DATA_SEED)
    return _split(x, y, 64)


def tabular_data() -> Arrays:
    """20 features of very different scales (1e-2 to 1e3, offset 10), 3 classes."""
    x, y = _prototypes((20,), 448, 3, 1.5, DATA_SEED)
    scales = np.logspace(-2, 3, 20, dtype=np.float32)
    return _split(x * scales + 10.0, y, 64)


def regression_data() -> Arrays:
    """20 features and a float target: a noisy linear function of them."""
    rng = np.random.default_rng(DATA_SEED + 1)
    x = rng.normal(size=(448, 20)).astype(np.float32)
    w = rng.normal(size=20).astype(np.float32)
    y = (x @ w + 0.1 * rng.normal(size=448)).astype(np.float32)
    return _split(x, y, 64)


def image_data() -> Arrays:
    """32x32x3 images, 10 classes."""
    x, y = _prototypes(IMAGE_SHAPE, 288, N_IMAGE_CLASSES, 2.0, DATA_SEED + 2)
    return _split(x, y, 32)


def collapsing_image_data() -> Arrays:
    """32x32x3 images of 10 classes, 90% of the training rows class 0 (about 6 rows of
    each other class), the held-out split balanced (8 of each): a model from scratch
    learns the prior first, so its held-out predictions miss classes for a while and a
    probe trains past its steps."""
    rng = np.random.default_rng(DATA_SEED + 7)
    protos = rng.normal(size=(N_IMAGE_CLASSES, *IMAGE_SHAPE))
    shares = np.full(N_IMAGE_CLASSES, 0.1 / (N_IMAGE_CLASSES - 1))
    shares[0] = 0.9
    y = rng.choice(N_IMAGE_CLASSES, size=400, p=shares)
    y_val = np.repeat(np.arange(N_IMAGE_CLASSES), 8)

    def images(classes: np.ndarray) -> np.ndarray:
        noise = rng.normal(size=(len(classes), *IMAGE_SHAPE))
        return (protos[classes] + noise).astype(np.float32)

    return {"x": images(y), "y": y.astype(np.int64), "x_val": images(y_val),
            "y_val": y_val.astype(np.int64)}


def signal_data() -> Arrays:
    """Two-channel signals of length 64: a class's frequency plus noise, 4 classes."""
    rng = np.random.default_rng(DATA_SEED + 3)
    n = 352
    y = (np.arange(n) % 4).astype(np.int64)
    rng.shuffle(y)
    t = np.linspace(0.0, 1.0, 64, dtype=np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    freq = (2.0 + 3.0 * y)[:, None, None]
    x = np.sin(2 * np.pi * freq * t[None, :, None] + phase * np.array([1.0, 2.0]))
    x = x + 0.5 * rng.normal(size=x.shape)
    return _split(x.astype(np.float32), y, 32)


def sequence_data() -> Arrays:
    """Float sequences of length 32 with 8 features, 3 classes."""
    x, y = _prototypes((SEQ_LEN, 8), 352, 3, 2.0, DATA_SEED + 4)
    return _split(x, y, 32)


def _token_data(n_classes: int, seed: int) -> Arrays:
    """Token ids (as stored in an ``.npz``: integers) in [1, VOCAB): every class prefers
    its own 50 tokens."""
    rng = np.random.default_rng(seed)
    n = 352
    y = (np.arange(n) % n_classes).astype(np.int64)
    rng.shuffle(y)
    uniform = rng.integers(1, VOCAB, size=(n, SEQ_LEN))
    preferred = 1 + 50 * y[:, None] + rng.integers(0, 50, size=(n, SEQ_LEN))
    x = np.where(rng.random((n, SEQ_LEN)) < 0.3, preferred, uniform)
    return _split(x.astype(np.int64), y, 32)


def text_data() -> Arrays:
    """Token sequences of length 32 (vocabulary 1000), 4 classes."""
    return _token_data(4, DATA_SEED + 5)


def binary_text_data() -> Arrays:
    """Token sequences of length 32 (vocabulary 1000), labels 0/1."""
    return _token_data(2, DATA_SEED + 6)


# ------------------------------------------------------------------------- factories


def _compile(model: Any, loss: str, optimizer: str = "adam") -> Any:
    """``model`` compiled with ``loss`` and ``optimizer`` at :data:`LEARNING_RATE`."""
    import keras

    optimizers = {
        "adam": lambda: keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=LEARNING_RATE),
    }
    model.compile(optimizer=optimizers[optimizer](), loss=loss)
    return model


def mlp_sgd() -> Any:
    """A plain Dense MLP with SGD + momentum: the control, nothing special in it."""
    import keras
    from keras import layers

    inputs = keras.Input((20,))
    h = layers.Dense(64, activation="relu")(inputs)
    h = layers.Dense(64, activation="relu")(h)
    outputs = layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, outputs, name="mlp_sgd")
    return _compile(model, "sparse_categorical_crossentropy", "sgd")


def tabular_normalized() -> Any:
    """``Normalization`` adapted on the entry's own training rows, L2-regularized Dense."""
    import keras
    from keras import layers

    norm = layers.Normalization()
    norm.adapt(tabular_data()["x"])  # the same rows, from the same seed, in every process
    l2 = keras.regularizers.L2(1e-3)
    inputs = keras.Input((20,))
    h = norm(inputs)
    h = layers.Dense(64, activation="relu", kernel_regularizer=l2)(h)
    h = layers.Dense(32, activation="relu", kernel_regularizer=l2)(h)
    outputs = layers.Dense(3, activation="softmax", kernel_regularizer=l2)(h)
    model = keras.Model(inputs, outputs, name="tabular_normalized")
    return _compile(model, "sparse_categorical_crossentropy")


def subclassed_resmlp() -> Any:
    """A subclassed ``keras.Model`` (residual Dense blocks) with RMSprop."""
    return _compile(_classes().ResidualMLP(n_classes=3), "sparse_categorical_crossentropy",
                    "rmsprop")


def custom_train_step() -> Any:
    """A functional model whose class overrides ``train_step`` to train on twice the loss.

    Adam is almost invariant to the gradient's scale, so the weights move nearly as they
    would without the factor; the loss ``fit`` reports is twice the compiled loss. A
    trainer that skips the custom step reports half of ``fit``'s loss.
    """
    import keras
    from keras import layers

    inputs = keras.Input((20,))
    h = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(3, activation="softmax")(h)
    model = _classes().DoubledLossModel(inputs, outputs, name="custom_train_step")
    return _compile(model, "sparse_categorical_crossentropy")


def regression_mlp() -> Any:
    """A Dense regressor: float target, mean squared error, linear output."""
    import keras
    from keras import layers

    inputs = keras.Input((20,))
    h = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(1)(h)
    return _compile(keras.Model(inputs, outputs, name="regression_mlp"), "mse")


def conv1d_signal() -> Any:
    """Conv1D blocks over a two-channel signal."""
    import keras
    from keras import layers

    inputs = keras.Input((64, 2))
    h = layers.Conv1D(16, 5, activation="relu")(inputs)
    h = layers.MaxPooling1D(2)(h)
    h = layers.Conv1D(32, 5, activation="relu")(h)
    h = layers.GlobalMaxPooling1D()(h)
    outputs = layers.Dense(4, activation="softmax")(h)
    return _compile(keras.Model(inputs, outputs, name="conv1d_signal"),
                    "sparse_categorical_crossentropy")


def gru_sequence() -> Any:
    """A GRU over float sequences."""
    import keras
    from keras import layers

    inputs = keras.Input((SEQ_LEN, 8))
    h = layers.GRU(32)(inputs)
    outputs = layers.Dense(3, activation="softmax")(h)
    return _compile(keras.Model(inputs, outputs, name="gru_sequence"),
                    "sparse_categorical_crossentropy")


def bilstm_text() -> Any:
    """Embedding + Bidirectional LSTM text classifier."""
    import keras
    from keras import layers

    inputs = keras.Input((SEQ_LEN,))
    h = layers.Embedding(VOCAB, 32)(inputs)
    h = layers.Bidirectional(layers.LSTM(32))(h)
    outputs = layers.Dense(4, activation="softmax")(h)
    return _compile(keras.Model(inputs, outputs, name="bilstm_text"),
                    "sparse_categorical_crossentropy")


def transformer_text() -> Any:
    """A one-block transformer encoder (token + position embeddings, self-attention,
    feed-forward, post-LayerNorm) with a sigmoid output for 0/1 labels."""
    import keras
    from keras import layers

    inputs = keras.Input((SEQ_LEN,))
    tokens = layers.Embedding(VOCAB, 32)(inputs)
    h = _classes().PositionEmbedding(SEQ_LEN, 32)(tokens)
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=16)(h, h)
    h = layers.LayerNormalization()(h + attended)
    ff = layers.Dense(64, activation="relu")(h)
    h = layers.LayerNormalization()(h + layers.Dense(32)(ff))
    h = layers.GlobalAveragePooling1D()(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    return _compile(keras.Model(inputs, outputs, name="transformer_text"),
                    "binary_crossentropy")


def bn_dropout_cnn() -> Any:
    """Conv2D + BatchNormalization blocks and Dropout: random masks while training."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE)
    h = inputs
    for filters in (16, 32):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    h = layers.Dropout(0.3)(h)
    outputs = layers.Dense(N_IMAGE_CLASSES, activation="softmax")(h)
    return _compile(keras.Model(inputs, outputs, name="bn_dropout_cnn"),
                    "sparse_categorical_crossentropy")


def bn_cnn() -> Any:
    """Conv2D + BatchNormalization blocks, no Dropout (deterministic): a small model that
    is evaluated as the keras.applications ones are (BatchNormalization: predictions in
    inference mode and with batch statistics)."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE)
    h = inputs
    for filters in (16, 32):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.MaxPooling2D()(h)
    h = layers.GlobalAveragePooling2D()(h)
    outputs = layers.Dense(N_IMAGE_CLASSES, activation="softmax")(h)
    return _compile(keras.Model(inputs, outputs, name="bn_cnn"),
                    "sparse_categorical_crossentropy")


def mixed_precision_cnn() -> Any:
    """A small CNN under the ``mixed_float16`` policy (float32 softmax output).

    Sets the *global* dtype policy before building, as the Keras mixed-precision guide
    does; it stays set in the calling process. Both stabcheck's worker and the
    benchmark's fit process call this factory in a process of their own, so no other
    model is affected.
    """
    import keras
    from keras import layers

    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input(IMAGE_SHAPE)
    h = layers.Conv2D(16, 3, activation="relu")(inputs)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(32, 3, activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dense(N_IMAGE_CLASSES)(h)
    outputs = layers.Activation("softmax", dtype="float32")(h)
    return _compile(keras.Model(inputs, outputs, name="mixed_precision_cnn"),
                    "sparse_categorical_crossentropy")


def mobilenet_v2() -> Any:
    """``keras.applications.MobileNetV2`` (alpha 0.35), untrained, at 32x32."""
    import keras

    model = keras.applications.MobileNetV2(input_shape=IMAGE_SHAPE, alpha=0.35, weights=None,
                                           classes=N_IMAGE_CLASSES)
    return _compile(model, "sparse_categorical_crossentropy")


def resnet50() -> Any:
    """``keras.applications.ResNet50``, untrained, at 32x32."""
    import keras

    model = keras.applications.ResNet50(input_shape=IMAGE_SHAPE, weights=None,
                                        classes=N_IMAGE_CLASSES)
    return _compile(model, "sparse_categorical_crossentropy")


def efficientnet_b0() -> Any:
    """``keras.applications.EfficientNetB0``, untrained, at 32x32 (its top and its blocks
    have Dropout)."""
    import keras

    model = keras.applications.EfficientNetB0(input_shape=IMAGE_SHAPE, weights=None,
                                              classes=N_IMAGE_CLASSES)
    return _compile(model, "sparse_categorical_crossentropy")


# -------------------------------------------------------------- keras.Model subclasses


@functools.cache
def _classes() -> SimpleNamespace:
    """The zoo's Keras subclasses, defined on the first call (importing this file stays
    free of TensorFlow)."""
    import keras
    import tensorflow as tf
    from keras import layers

    class ResidualMLP(keras.Model):
        """A residual MLP: Dense in, two residual Dense blocks, softmax out."""

        def __init__(self, n_classes: int, width: int = 64, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stem = layers.Dense(width, activation="relu")
            self.blocks = [(layers.Dense(width, activation="relu"), layers.Dense(width),
                            layers.Add(), layers.ReLU()) for _ in range(2)]
            self.head = layers.Dense(n_classes, activation="softmax")

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            h = self.stem(inputs)
            for inner, outer, add, relu in self.blocks:
                h = relu(add([h, outer(inner(h))]))
            return self.head(h)

    class DoubledLossModel(keras.Model):
        """A custom ``train_step`` (the Keras guide's pattern) on twice the loss."""

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data[0], data[1]
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = 2.0 * self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    class PositionEmbedding(layers.Layer):
        """Adds a learned embedding of each position to a sequence of vectors."""

        def __init__(self, length: int, dim: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.positions = layers.Embedding(length, dim)

        def call(self, inputs: Any) -> Any:
            length = keras.ops.shape(inputs)[1]
            return inputs + self.positions(keras.ops.arange(length))

    return SimpleNamespace(ResidualMLP=ResidualMLP, DoubledLossModel=DoubledLossModel,
                           PositionEmbedding=PositionEmbedding)


# ------------------------------------------------------------------------------ zoo

ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("mlp_sgd", "mlp_sgd", blob_data, 32, 30, quick=True,
             note="control: Dense MLP, SGD with momentum"),
    ZooEntry("tabular_normalized", "tabular_normalized", tabular_data, 32, 30, quick=True,
             note="adapted Normalization, L2 kernel regularizers"),
    ZooEntry("subclassed_resmlp", "subclassed_resmlp", blob_data, 32, 30,
             note="subclassed keras.Model, RMSprop"),
    ZooEntry("custom_train_step", "custom_train_step", blob_data, 32, 30, quick=True,
             note="train_step overridden: trains on 2 x loss"),
    ZooEntry("regression_mlp", "regression_mlp", regression_data, 32, 30, quick=True,
             note="float target, mse"),
    ZooEntry("conv1d_signal", "conv1d_signal", signal_data, 32, 20,
             note="Conv1D signal classifier"),
    ZooEntry("gru_sequence", "gru_sequence", sequence_data, 32, 20, note="GRU"),
    ZooEntry("bilstm_text", "bilstm_text", text_data, 32, 20, quick=True,
             note="Embedding + Bidirectional LSTM"),
    ZooEntry("transformer_text", "transformer_text", binary_text_data, 32, 20,
             note="Embedding + MultiHeadAttention + LayerNormalization, sigmoid output"),
    ZooEntry("bn_dropout_cnn", "bn_dropout_cnn", image_data, 32, 20, deterministic=False,
             note="BatchNormalization + Dropout CNN"),
    ZooEntry("mixed_precision_cnn", "mixed_precision_cnn", image_data, 32, 20, quick=True,
             note="mixed_float16 policy"),
    ZooEntry("mobilenet_v2", "mobilenet_v2", image_data, 16, 10,
             note="keras.applications MobileNetV2 alpha 0.35, 32x32"),
    ZooEntry("resnet50", "resnet50", image_data, 16, 10,
             note="keras.applications ResNet50, 32x32"),
    ZooEntry("efficientnet_b0", "efficientnet_b0", image_data, 16, 10, deterministic=False,
             note="keras.applications EfficientNetB0, 32x32 (Dropout)"),
    # Probes that are evaluated and train on (held-out predictions miss classes), and a
    # worker that runs two probes: their peaks against a fit of the steps they trained.
    ZooEntry("bn_cnn_trains_on", "bn_cnn", collapsing_image_data, 16, 12,
             trains_on=True, note="small BatchNormalization CNN, trained past its steps"),
    ZooEntry("bn_cnn_two_probes", "bn_cnn", collapsing_image_data, 16, 12, quick=True,
             trains_on=True, learning_rates=(1e-3, 3e-4),
             note="two probes in one worker, each trained past its steps; the second"),
    ZooEntry("mobilenet_v2_trains_on", "mobilenet_v2", collapsing_image_data, 16, 12,
             trains_on=True, note="MobileNetV2 trained past its steps"),
    # (at 1e-3 their loss jitters within its noise for 12 steps: stalled, not trained on)
    ZooEntry("efficientnet_b0_trains_on", "efficientnet_b0", collapsing_image_data, 16, 12,
             trains_on=True, deterministic=False, learning_rates=(1e-4,),
             note="EfficientNetB0 trained past its steps (Dropout), lr 1e-4"),
    ZooEntry("resnet50_trains_on", "resnet50", collapsing_image_data, 16, 12,
             trains_on=True, learning_rates=(1e-4,),
             note="ResNet50 trained past its steps, lr 1e-4"),
    ZooEntry("mobilenet_v2_two_probes", "mobilenet_v2", collapsing_image_data, 16, 12,
             trains_on=True, learning_rates=(1e-3, 3e-4),
             note="two MobileNetV2 probes in one worker; the second"),
)
