"""Class-weight strategies: from class counts to the dict ``model.fit(class_weight=...)`` takes.

Pure functions of the training sample's class counts. Keras applies a class-weight dict by
giving every sample the weight of its class (``sample_weight = class_weight[y]``), so a
strategy here is fully described by one weight per class index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from stabcheck.errors import InputError
from stabcheck.protocol.vocabulary import base_strategy, stress_factor, uses_class_weights


def class_weights_for(
    strategy: str,
    counts: Sequence[int],
    *,
    class_names: Sequence[str],
    custom: Mapping[str, float] | None = None,
    effective_beta: float = 0.999,
) -> list[float] | None:
    """The weight of each class index under ``strategy``; None means no weighting.

    Args:
        strategy: ``none``, ``balanced``, ``sqrt``, ``effective``, ``custom`` or ``xN``.
        counts: samples per class index in the training sample.
        class_names: display name per class index (keys of a custom table refer to them).
        custom: the config's ``[custom_class_weight]`` table (label -> weight).
        effective_beta: beta of the effective-number weighting.
    """
    n = np.asarray(counts, dtype=np.float64)
    k = len(n)
    strategy = base_strategy(strategy)  # normalized-X is weighted like X
    if not uses_class_weights(strategy):  # focal weighs through its alpha
        return None
    if strategy == "custom":
        return _custom(custom or {}, class_names)
    present = np.maximum(n, 1.0)  # a class absent from the sample gets the rarest weight
    balanced = n.sum() / (k * present)  # sklearn's compute_class_weight("balanced")
    if strategy == "balanced":
        return balanced.tolist()
    if strategy == "sqrt":
        return np.sqrt(balanced).tolist()
    if strategy == "effective":
        # Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples":
        # w_c = (1 - beta) / (1 - beta^n_c), normalised so the weights sum to k.
        raw = (1.0 - effective_beta) / (1.0 - np.power(effective_beta, present))
        return (raw * k / raw.sum()).tolist()
    factor = stress_factor(strategy)
    if factor is not None:
        # Stress test: balanced weights with every class but the most frequent
        # multiplied by N, so the rare-to-common weight ratio grows N-fold.
        common = n == n.max()  # every class tied for most frequent keeps its weight
        return np.where(common, balanced, balanced * factor).tolist()
    raise InputError(f"unknown class_weight strategy {strategy!r}")


def _custom(table: Mapping[str, float], class_names: Sequence[str]) -> list[float]:
    names = [str(c) for c in class_names]
    unknown = [key for key in table if key not in names]
    if unknown:
        raise InputError(
            f"custom_class_weight key {unknown[0]!r} is not a label of the data "
            f"(labels: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''})"
        )
    missing = [name for name in names if name not in table]
    if missing:
        raise InputError(
            f"custom_class_weight has no weight for label {missing[0]!r}: Keras's class_weight "
            "needs a weight for every class"
        )
    return [float(table[name]) for name in names]


def weights_by_name(
    weights: Sequence[float] | None, class_names: Sequence[str]
) -> dict[str, float] | None:
    """Weights keyed by class name, at full precision: what ``fit(class_weight=...)`` gets
    and the JSON records (the renderers round for display, ``text.fmt_weight``)."""
    if weights is None:
        return None
    return {str(name): float(w) for name, w in zip(class_names, weights, strict=True)}
