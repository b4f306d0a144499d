"""Checks before any training: do the labels, the loss, the model's output and the class
weights fit together? Each broken rule is an ``InputError`` (exit 2) that says what was
found and what to do; softer concerns come back as warnings for the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from stabcheck.errors import InputError

SPARSE_LOSSES = {"sparse_categorical_crossentropy"}
CATEGORICAL_LOSSES = {"categorical_crossentropy", "categorical_focal_crossentropy"}
BINARY_LOSSES = {"binary_crossentropy", "binary_focal_crossentropy"}

# A weight ratio above this is flagged: a minority gradient a thousand times the
# majority's is the regime background article 000 describes (NaN within an epoch with
# Adam at lr 1e-2 and no clipping).
EXTREME_WEIGHT_RATIO = 1000.0


# Keras's short aliases of the classification losses (``keras.losses.get("bce")``).
_ALIASES = {"bce": "binary_crossentropy", "cce": "categorical_crossentropy"}


def canonical_loss_name(name: str) -> str:
    """``SparseCategoricalCrossentropy``, ``sparse_categorical_crossentropy`` or an alias
    such as ``BCE`` -> the snake-case name Keras registers the loss under."""
    if name.isupper() or not any(c.isupper() for c in name):
        snake = name.lower()
    else:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    snake = snake.replace("cross_entropy", "crossentropy")
    return _ALIASES.get(snake, snake)


def check_labels_vs_loss(
    loss: str, label_format: str, n_classes: int, output_units: int | None = None
) -> list[str]:
    """Raise when the labels cannot train with ``loss``; return warnings otherwise.

    Args:
        loss: the loss name (any Keras spelling).
        label_format: ``binary``, ``sparse`` or ``onehot`` (see ``stabcheck.data``).
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
