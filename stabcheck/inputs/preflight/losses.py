"""Preflight checks of the labels against the loss: is the task the loss's, are the labels
in the form (integer indices, one-hot rows, 0/1) and the range the loss takes?

The loss families stabcheck knows (sparse, categorical, binary crossentropy; Keras's
regression losses) are named here, under the snake-case names ``canonical_loss_name``
gives every Keras spelling.
"""

from __future__ import annotations

from collections.abc import Sequence

from stabcheck.errors import InputError
from stabcheck.protocol.vocabulary import canonical_loss_name

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


def check_labels_vs_loss(
    loss: str, label_format: str, n_classes: int, output_units: int | None = None
) -> list[str]:
    """Raise when the labels cannot train with ``loss``; return warnings otherwise.

    Args:
        loss: the loss name (any Keras spelling).
        label_format: ``binary``, ``sparse`` or ``onehot`` (see ``stabcheck.inputs.labels``).
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

    The probe trains on the labels as the data holds them (``stabcheck.inputs.labels``), so
    they must be what the loss takes: class indices ``0`` to ``units - 1`` for a sparse loss
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
