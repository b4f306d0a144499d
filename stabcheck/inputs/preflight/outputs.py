"""Preflight checks of the model against the data and the loss: the input shape the model
takes, its number of outputs, its output units against a regression target, and its output
activation against the loss's ``from_logits``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stabcheck.errors import InputError
from stabcheck.inputs.preflight.losses import BINARY_LOSSES, CATEGORICAL_LOSSES, SPARSE_LOSSES
from stabcheck.protocol.vocabulary import canonical_loss_name

_CROSSENTROPY_LOSSES = SPARSE_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES
_SQUASHING = {"softmax", "sigmoid"}
_LINEAR = {"linear", "none", ""}


def check_regression_outputs(output_units: int | None, target_width: int) -> None:
    """Raise when the model's output units differ from the target's columns (a loss such
    as MSE would broadcast one against the other and train on nonsense)."""
    if output_units is not None and output_units != target_width:
        raise InputError(
            f"the model's output has {output_units} unit(s) but the regression target has "
            f"{target_width} column(s): give the output one unit per target column"
        )


def regression_output_warnings(
    output_activation: str | None, target: Mapping[str, float] | None
) -> list[str]:
    """Warn when a regression model's output layer cannot reach its targets: a softmax
    (its units sum to 1), a sigmoid (0..1) or a relu (0 and above) against targets
    outside that range."""
    activation = _activation_name(output_activation)
    low = (target or {}).get("min")
    high = (target or {}).get("max")
    if activation == "softmax":
        return ["the output layer applies softmax to a regression target: its units always "
                "sum to 1; use a linear output"]
    if activation == "sigmoid" and low is not None and (low < 0 or high > 1):
        return [f"the output layer applies sigmoid (outputs in 0..1) but the regression "
                f"target spans {low:g} to {high:g}; use a linear output or rescale the target"]
    if activation == "relu" and low is not None and low < 0:
        return [f"the output layer applies relu (outputs >= 0) but the regression target "
                f"goes down to {low:g}; use a linear output"]
    return []


def check_input_shape(
    model_input_shape: Sequence[int | None] | None, data_shape: Sequence[int]
) -> None:
    """Raise when the data's rows do not have the shape the model's input takes.

    A ``None`` dimension takes any size. As Keras's functional models do, a trailing
    dimension of 1 on one side only is not a mismatch (the model squeezes or adds it).

    Args:
        model_input_shape: one sample's shape as the model's input declares it (without
            the batch dimension), or None when unknown (several inputs, a subclassed
            model): then nothing is checked.
        data_shape: one row's shape (``x_train.shape[1:]``).
    """
    if model_input_shape is None:
        return
    model = list(model_input_shape)
    data = [int(d) for d in data_shape]
    if len(data) == len(model) + 1 and data[-1] == 1:
        data = data[:-1]
    elif len(model) == len(data) + 1 and model[-1] == 1:
        model = model[:-1]
    if len(model) == len(data) and all(
            m is None or m == d for m, d in zip(model, data, strict=True)):
        return
    raise InputError(
        f"the model's input takes samples of shape {_shape(model_input_shape)} but the "
        f"data's rows have shape {_shape(data_shape)}: fit would fail on every batch; "
        "give the model an input of the data's shape, or reshape the data"
    )


def _shape(dims: Sequence[int | None]) -> str:
    """``(28, 28, 1)``, ``(4,)``, ``(None, 8)``."""
    inner = ", ".join("None" if d is None else str(int(d)) for d in dims)
    return f"({inner},)" if len(dims) == 1 else f"({inner})"


def check_output_activation(
    loss: str, from_logits: bool, output_activation: str | None
) -> list[str]:
    """Raise when the output layer and the loss's ``from_logits`` disagree.

    A softmax or sigmoid output with ``from_logits=True`` is squashed twice; a linear
    output (logits) with ``from_logits=False`` is read as probabilities, which a
    crossentropy loss clips to ``[eps, 1 - eps]``, so the gradient vanishes. Activations
    stabcheck does not know (``log_softmax``, ``relu``, a custom one) pass silently.

    Args:
        loss: the loss name (any Keras spelling).
        from_logits: the loss's ``from_logits`` setting.
        output_activation: the output layer's activation name (``None`` means linear).

    Returns:
        Warnings: a softmax under a binary loss, a sigmoid under a categorical one.
    """
    activation = _activation_name(output_activation)
    name = canonical_loss_name(loss)
    if activation in _SQUASHING and from_logits:
        raise InputError(
            f"the model's output layer applies {activation} but the loss {loss!r} has "
            f"from_logits=True: the loss would apply it again; set from_logits=False"
        )
    if activation in _LINEAR and not from_logits and name in _CROSSENTROPY_LOSSES:
        squash = "sigmoid" if name in BINARY_LOSSES else "softmax"
        raise InputError(
            f"the model's output layer outputs logits (activation {output_activation!r}, no "
            f"squashing) but the loss {loss!r} expects probabilities (from_logits=False): "
            f"compile with from_logits=True or add a {squash}"
        )
    if activation == "softmax" and name in BINARY_LOSSES:
        return [f"the output layer applies softmax under the binary loss {loss!r}: over one "
                "unit softmax is always 1.0; use a sigmoid output"]
    if activation == "sigmoid" and name in SPARSE_LOSSES | CATEGORICAL_LOSSES:
        return [f"the output layer applies sigmoid under the loss {loss!r}: its outputs do not "
                "sum to 1 and are rescaled by the loss; use a softmax output"]
    return []


def _activation_name(activation: str | None) -> str:
    """``"Softmax"``, ``"keras.activations.softmax"`` or ``None`` -> ``softmax``/``none``."""
    if activation is None:
        return "none"
    return str(activation).strip().rsplit(".", 1)[-1].lower()


def check_model_outputs(n_outputs: int) -> None:
    """Raise unless the model has exactly one output (Keras's ``class_weight`` rule)."""
    if n_outputs > 1:
        raise InputError(
            f"the model has {n_outputs} outputs: Keras's class_weight supports single-output "
            "models only; probe one output with a wrapper model "
            "(keras.Model(model.inputs, model.outputs[i]))"
        )
