"""The clip, class-weight strategy, loss and backend vocabularies: what the names mean, in one
place.

A probe's settings cross the process boundary as these names (``balanced``, ``x100``,
``normalized-sqrt``, ``global_norm=1``); the parent validates them here
(``parse_class_weight_strategy``, ``parse_clip``, raising ``ConfigError``) and both sides
read them through these functions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from stabcheck.errors import ConfigError

CLASS_WEIGHT_STRATEGIES = ("none", "balanced", "sqrt", "effective", "custom")
# Remedies probed beside plain class weights: the weighted loss divided by the batch's
# total weight (``normalized``, on balanced weights, or ``normalized-<strategy>``), and
# focal cross-entropy with alpha from the class frequencies (``focal``).
REMEDY_STRATEGIES = ("normalized", "focal")
CLIP_KINDS = {"norm": "clipnorm", "value": "clipvalue", "global_norm": "global_clipnorm"}
# The Keras backends a probe worker can train with (``KERAS_BACKEND``); the first is the
# default. Each has its module in ``stabcheck.worker.backends``.
BACKENDS = ("tensorflow", "jax", "torch")

_STRESS_RE = re.compile(r"^x(\d+(?:\.\d*)?(?:e\d+)?)$")


@dataclass(frozen=True)
class Clip:
    """One clipping setting; ``kind`` is None for no clipping."""

    kind: str | None
    value: float | None = None

    @property
    def label(self) -> str:
        return "none" if self.kind is None else f"{self.kind}={self.value:g}"

    @property
    def keras_kwargs(self) -> dict[str, float]:
        """The optimizer constructor argument Keras uses for this setting."""
        return {} if self.kind is None else {CLIP_KINDS[self.kind]: float(self.value)}


def parse_class_weight_strategy(text: Any) -> str:
    """Validate one class-weight strategy name (``none``, ``balanced``, ``x100``, ...)."""
    if not isinstance(text, str):
        raise ConfigError(f"class_weight must be a string, got {text!r}")
    name = text.strip().lower()
    base = name.removeprefix("normalized-")
    if name in CLASS_WEIGHT_STRATEGIES + REMEDY_STRATEGIES or (
        base != name and base in CLASS_WEIGHT_STRATEGIES and base != "none"
    ):
        return name
    match = _STRESS_RE.match(base)
    if match and float(match.group(1)) >= 1:
        return name
    raise ConfigError(
        f"unknown class_weight strategy {text!r}; expected one of "
        f"{', '.join(CLASS_WEIGHT_STRATEGIES + REMEDY_STRATEGIES)}, xN with N >= 1 "
        "(e.g. x100), or normalized-<strategy> (e.g. normalized-x100)"
    )


def base_strategy(strategy: str) -> str:
    """The weights a strategy starts from: ``normalized-x100`` -> ``x100``,
    ``normalized`` -> ``balanced``; others are their own base."""
    if strategy == "normalized":
        return "balanced"
    return strategy.removeprefix("normalized-")


def stress_factor(strategy: str) -> float | None:
    """N for an ``xN`` strategy, else None."""
    match = _STRESS_RE.match(strategy)
    return float(match.group(1)) if match else None


def parse_clip(text: Any) -> Clip:
    """Parse ``none``, ``norm=V``, ``value=V`` or ``global_norm=V`` (V > 0)."""
    if not isinstance(text, str):
        raise ConfigError(f"clip must be a string, got {text!r}")
    spec = text.strip().lower()
    if spec == "none":
        return Clip(None)
    kind, sep, value = (part.strip() for part in spec.partition("="))
    if sep and kind in CLIP_KINDS:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and number > 0:
            return Clip(kind, number)
    raise ConfigError(
        f"invalid clip setting {text!r}; expected none, norm=V, value=V or global_norm=V "
        "with V > 0"
    )


def is_focal(strategy: str) -> bool:
    """Focal cross-entropy: the loss weighs the classes through its alpha."""
    return strategy == "focal"


def is_normalized(strategy: str) -> bool:
    """The weighted loss divided by the batch's total weight (``normalized[-<base>]``)."""
    return strategy == "normalized" or strategy.startswith("normalized-")


def is_remedy(strategy: str) -> bool:
    """A remedy probed beside plain class weights (focal or normalized)."""
    return is_focal(strategy) or is_normalized(strategy)


def uses_class_weights(strategy: str) -> bool:
    """The strategy passes ``class_weight`` to the loss (not ``none``, not ``focal``)."""
    return strategy not in ("none", "focal")


_LOSS_ALIASES = {"bce": "binary_crossentropy", "cce": "categorical_crossentropy"}


def canonical_loss_name(name: str) -> str:
    """``SparseCategoricalCrossentropy``, ``sparse_categorical_crossentropy`` or an alias
    such as ``BCE`` -> the snake-case name Keras registers the loss under."""
    if name.isupper() or not any(c.isupper() for c in name):
        snake = name.lower()
    else:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    snake = snake.replace("cross_entropy", "crossentropy")
    return _LOSS_ALIASES.get(snake, snake)
