"""Built-in model templates (worker only: imports Keras)."""

from __future__ import annotations

import keras
from keras import layers


def build(name: str, input_shape: tuple[int, ...], n_outputs: int,
          regression: bool = False) -> keras.Model:
    """A small uncompiled model for ``builtin:<name>``.

    Args:
        name: ``mlp`` or ``cnn``.
        input_shape: one sample's shape.
        n_outputs: 1 for a sigmoid output (binary labels), else softmax units; with
            ``regression``, linear units, one per target column.
        regression: a regression target: a linear output.
    """
    inputs = keras.Input(shape=input_shape)
    if name == "mlp":
        x = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
        x = layers.Dense(64, activation="relu", name="dense_1")(x)
        x = layers.Dense(64, activation="relu", name="dense_2")(x)
    elif name == "cnn":
        x = inputs
        if len(input_shape) == 1:  # a flat vector: treat it as a one-channel signal
            x = layers.Reshape((input_shape[0], 1, 1))(x)
        elif len(input_shape) == 2:
            x = layers.Reshape((*input_shape, 1))(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_1")(x)
        x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv_2")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.Flatten()(x)
        x = layers.Dense(64, activation="relu", name="dense_1")(x)
    else:
        raise ValueError(f"unknown template {name!r}")
    activation = "linear" if regression else "sigmoid" if n_outputs == 1 else "softmax"
    outputs = layers.Dense(n_outputs, activation=activation, name="output")(x)
    return keras.Model(inputs, outputs, name=f"builtin_{name}")
