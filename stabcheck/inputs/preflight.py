"""Checks before any training: do the data, the labels, the loss, the model's outputs and
the class weights fit together? Each broken rule is an ``InputError`` (exit 2) that says what was
found and what to do; softer concerns come back as warnings for the report.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from stabcheck.errors import InputError
from stabcheck.protocol.vocabulary import canonical_loss_name, uses_class_weights

SPARSE_LOSSES = {"sparse_categorical_crossentropy"}
CATEGORICAL_LOSSES = {"categorical_crossentropy", "categorical_focal_crossentropy"}
BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy"}

# Keras's regression losses, under every name ``keras.losses.get`` and the loss objects'
# ``name`` give them (``canonical_loss_name`` makes ``MeanSquaredError`` and ``MSE`` the
# snake-case forms listed here).
REGRESSION_LOSSES = {
    "mse", "mean_squared_error", "mae", "mean_absolute_error", "huber", "huber_loss",
    "msle", "mean_squared_logarithmic_error", "log_cosh", "logcosh", "poisson",
    "mape", "mean_absolute_percentage_error",
}

# A weight ratio above this is flagged: a minority gradient a thousand times the
# majority's is where NaN comes within an epoch with Adam at lr 1e-2 and no
# clipping.
EXTREME_WEIGHT_RATIO = 1000.0


# Keras's short aliases of the classification losses (``keras.losses.get("bce")``).


def is_regression_loss(loss: str | None) -> bool:
    """Whether ``loss`` (any Keras spelling) is one of Keras's regression losses."""
    return bool(loss) and canonical_loss_name(str(loss)) in REGRESSION_LOSSES


def is_classification_loss(loss: str | None) -> bool:
    """Whether ``loss`` (any Keras spelling) is a crossentropy stabcheck knows."""
    return bool(loss) and canonical_loss_name(str(loss)) in (
        SPARSE_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES)


def check_task_vs_loss(task: str, loss: str, *, declared: bool) -> None:
    """Raise when the task and the loss contradict each other.

    Args:
        task: ``classification`` or ``regression``, as resolved for the data.
        loss: the loss name (any Keras spelling).
        declared: the task was given (``--task``); else it was detected from the data.
    """
    if task == "classification" and is_regression_loss(loss):
        raise InputError(
            f"--task classification, but the loss {loss!r} is a regression loss: use "
            "--task regression (or auto), or a classification loss such as "
            "sparse_categorical_crossentropy"
        )
    if task == "regression" and is_classification_loss(loss):
        why = ("--task regression" if declared
               else "the targets are floats with non-integer values (a regression target)")
        raise InputError(
            f"{why}, but the loss {loss!r} takes class labels: use a regression loss "
            "(--loss mse, mae, huber, ...), or pass integer class labels "
            "(--task classification treats a CSV column's values as class names)"
        )


def check_regression_class_weights(strategies: Sequence[str], given: bool) -> None:
    """Raise when a regression run is asked to probe class-weight strategies."""
    weighted = [s for s in strategies if s != "none"]
    if given and weighted:
        listed = ", ".join(repr(s) for s in weighted)
        raise InputError(
            f"class_weight {listed} asked for a regression target: class weights need "
            "classes; a regression probe runs without them (drop --class-weight, or pass "
            "--class-weight none)"
        )


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


def check_labels_vs_loss(
    loss: str, label_format: str, n_classes: int, output_units: int | None = None
) -> list[str]:
    """Raise when the labels cannot train with ``loss``; return warnings otherwise.

    Args:
        loss: the loss name (any Keras spelling).
        label_format: ``binary``, ``sparse`` or ``onehot`` (see ``stabcheck.inputs.data``).
        n_classes: classes in the data.
        output_units: units of the model's output layer, when known.
    """
    name = canonical_loss_name(loss)
    one_hot = label_format == "onehot"
    if name in SPARSE_LOSSES and one_hot:
        raise InputError(
            f"the labels are one-hot ({n_classes} columns) but the loss {loss!r} expects integer "
            "class indices: use categorical_crossentropy, or pass integer labels"
        )
    if name in CATEGORICAL_LOSSES and not one_hot:
        raise InputError(
            f"the labels are integer class indices but the loss {loss!r} expects one-hot rows: "
            "use sparse_categorical_crossentropy, or one-hot encode the labels"
        )
    if name in BINARY_LOSSES and not one_hot and n_classes != 2:
        raise InputError(
            f"the loss {loss!r} needs two classes but the labels have {n_classes}: "
            "use sparse_categorical_crossentropy"
        )
    if output_units is not None:
        if name in SPARSE_LOSSES | CATEGORICAL_LOSSES and output_units != n_classes:
            raise InputError(
                f"the model's output has {output_units} unit(s) but the data has {n_classes} "
                f"classes, which the loss {loss!r} needs one unit each for"
            )
        if name in BINARY_LOSSES and not one_hot and output_units != 1:
            raise InputError(
                f"the loss {loss!r} with 0/1 labels needs a model with one output unit; this "
                f"one has {output_units}: use sparse_categorical_crossentropy instead"
            )
    if name not in SPARSE_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES:
        return [f"loss {loss!r} is not a classification loss stabcheck knows; class weights "
                "are applied as sample weights all the same"]
    return []


def check_label_values(
    loss: str, label_values: Sequence[int] | None, output_units: int | None = None
) -> None:
    """Raise when integer labels are not what ``loss`` takes, as ``fit`` would fail on them.

    The probe trains on the labels as the data holds them (``stabcheck.inputs.data``), so they
    must be what the loss takes: class indices ``0`` to ``units - 1`` for a sparse loss
    (``fit`` fails on a negative label or one beyond the output), ``0``/``1`` for a binary
    one. Every class index up to the largest label must be present too: stabcheck weighs
    the classes the data holds. Other losses, and labels the loader encoded itself
    (``label_values`` None: strings, image folders, one-hot rows), pass.

    Args:
        loss: the loss name (any Keras spelling).
        label_values: the distinct integer labels, ascending, or None.
        output_units: units of the model's output layer, when known.
    """
    if not label_values:
        return
    values = sorted(int(v) for v in label_values)
    name = canonical_loss_name(loss)
    shown = _label_set(values)
    fix = "map them to 0..k-1 first (e.g. np.unique(y, return_inverse=True)[1])"
    if name in SPARSE_LOSSES:
        negative = [v for v in values if v < 0]
        if negative:
            raise InputError(
                f"the labels y hold {_label_set(negative)} but the loss {loss!r} takes class "
                f"indices from 0 (fit fails on a negative label); y holds {shown}: {fix}"
            )
        if output_units is not None and values[-1] >= output_units:
            raise InputError(
                f"the labels y go up to {values[-1]} but the model's output has {output_units} "
                f"unit(s), so the loss {loss!r} takes class indices 0 to {output_units - 1} "
                f"(fit fails on label {values[-1]}); y holds {shown}: {fix}, or give the "
                "output one unit per class"
            )
        missing = sorted(set(range(values[-1] + 1)) - set(values))
        if missing:
            raise InputError(
                f"the labels y hold {shown}: class index {_label_set(missing)} has no sample; "
                f"stabcheck weighs the classes the data holds, numbered 0 to k-1: {fix}"
            )
    elif name in BINARY_LOSSES and not set(values) <= {0, 1}:
        raise InputError(
            f"the labels y hold {shown} but the loss {loss!r} takes 0/1 labels (it would "
            "read any other value as a probability): map them to 0 and 1 first"
        )


def _label_set(values: Sequence[int], limit: int = 6) -> str:
    """``{-1, 1}``; long sets shortened: ``{0, 1, 2, ..., 99}``."""
    items = [str(v) for v in values]
    if len(items) > limit:
        items = [*items[: limit - 2], "...", items[-1]]
    return "{" + ", ".join(items) + "}"


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


def check_class_weights(
    table: dict[str, Sequence[float] | None], class_names: Sequence[str]
) -> list[str]:
    """Raise on non-positive or non-finite weights; warn on extreme ratios."""
    warnings = []
    for strategy, weights in table.items():
        if weights is None:
            continue
        for name, weight in zip(class_names, weights, strict=True):
            if not math.isfinite(weight) or weight <= 0:
                raise InputError(
                    f"class_weight {strategy!r} gives class {name!r} the weight {weight}: "
                    "weights must be positive and finite"
                )
        ratio = max(weights) / min(weights)
        if ratio > EXTREME_WEIGHT_RATIO:
            warnings.append(
                f"class_weight {strategy!r} spans a {ratio:,.0f}:1 weight ratio: expect "
                "exploding gradients without clipping"
            )
    return warnings


# ------------------------------------------------------------------------ model output

_CROSSENTROPY_LOSSES = SPARSE_LOSSES | CATEGORICAL_LOSSES | BINARY_LOSSES
_SQUASHING = {"softmax", "sigmoid"}
_LINEAR = {"linear", "none", ""}


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


# -------------------------------------------------------------------------------- data


def check_data_finite(x: np.ndarray, name: str) -> None:
    """Raise when ``x`` holds NaN or Inf; the first row (axis 0) that does is named.

    Args:
        x: the input array, one sample per row.
        name: how the message names it (``"x"``, ``"'train.npz': x_val"``).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return  # integers and booleans are always finite
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = ~finite
    count = int(np.count_nonzero(bad))
    rows = bad.reshape(arr.shape[0], -1).any(axis=1) if arr.ndim else bad.reshape(1)
    first = int(np.argmax(rows))
    noun = "value" if count == 1 else "values"
    raise InputError(
        f"data {name} has {count} NaN/Inf {noun} (first in row {first}): inputs must be "
        "finite; clean or impute them before training"
    )


def check_label_rank(y_shape: tuple[int, ...]) -> None:
    """Raise for targets of rank 3 or more, which Keras's ``class_weight`` rejects."""
    if len(y_shape) >= 3:
        raise InputError(label_rank_message(tuple(y_shape)))


def label_rank_message(y_shape: tuple[int, ...]) -> str:
    """The rule :func:`check_label_rank` states (``stabcheck.inputs.data`` raises it too)."""
    return (
        f"class_weight is not supported for 3+ dimensional targets (shape {y_shape}): "
        "flatten them to one label per sample or use sample weights"
    )


# ---------------------------------------------------------------- weights from elsewhere



def check_sample_weight_conflict(has_sample_weight: bool, strategies: Iterable[str]) -> None:
    """Raise when the data brings ``sample_weight`` and a strategy sets ``class_weight``.

    Keras's ``fit`` refuses the pair ("You cannot `class_weight` and `sample_weight` at the
    same time").
    """
    if not has_sample_weight:
        return
    weighted = [s for s in strategies if uses_class_weights(s)]
    if weighted:
        listed = ", ".join(repr(s) for s in weighted)
        raise InputError(
            f"the data brings a sample_weight array and class_weight {listed} is probed: Keras "
            "cannot use class_weight and sample_weight at the same time; fold the class "
            "weights into the sample weights, or use only one (class_weight = [\"none\"])"
        )


def check_loss_weights(loss_weights: object, class_names: Sequence[str]) -> None:
    """Raise when ``loss_weights`` is a per-class dict (keys that are class labels).

    ``compile(loss_weights=...)`` scales the loss of each *output*; keyed by class it is
    either rejected or silently applied to the wrong thing.
    """
    if not isinstance(loss_weights, Mapping) or not loss_weights:
        return
    names = {str(n) for n in class_names}
    indices = {str(i) for i in range(len(class_names))}

    def is_class(key: object) -> bool:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return True  # output names are strings: an int key is a class index
        return str(key) in names or str(key) in indices

    if all(is_class(key) for key in loss_weights):
        raise InputError(
            f"loss_weights={reprlib.repr(dict(loss_weights))} is keyed by class, but "
            "loss_weights weights the model's outputs, not classes: use class_weight (or a "
            "custom table) for per-class weights"
        )
