"""Preflight checks of the weights: the class-weight table's values, class weights asked
of a regression target, and the weights Keras refuses beside ``class_weight`` (a
``sample_weight`` array the data brings, ``loss_weights`` keyed by class).
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from stabcheck.errors import InputError
from stabcheck.protocol.vocabulary import uses_class_weights

# A weight ratio above this is flagged: a minority gradient a thousand times the
# majority's is where NaN comes within an epoch with Adam at lr 1e-2 and no
# clipping.
EXTREME_WEIGHT_RATIO = 1000.0


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
