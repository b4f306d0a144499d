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

# The weight ``fit(class_weight=...)`` gives a class the dict leaves out (Keras 3's
# ``data_adapter_utils.class_weight_to_sample_weights``: ``class_weight.get(label, 1.0)``).
DEFAULT_WEIGHT = 1.0
# A warning names at most this many classes.
_NAMED = 20


def class_weights_for(
    strategy: str,
    counts: Sequence[int],
    *,
    class_names: Sequence[str],
    custom: Mapping[str, float] | None = None,
    effective_beta: float = 0.999,
    keyword: str = "custom_class_weight",
) -> list[float] | None:
    """The weight of each class index under ``strategy``; None means no weighting.

    Args:
        strategy: ``none``, ``balanced``, ``sqrt``, ``effective``, ``custom`` or ``xN``.
        counts: samples per class index in the training sample.
        class_names: display name per class index (keys of a custom table refer to them).
        custom: the config's ``[custom_class_weight]`` table, or the API's ``class_weight``
            dict (label -> weight); a class it leaves out weighs 1.0, as in ``fit``.
        effective_beta: beta of the effective-number weighting.
        keyword: what errors call the custom table (the caller's own name for it).
    """
    n = np.asarray(counts, dtype=np.float64)
    k = len(n)
    strategy = base_strategy(strategy)  # normalized-X is weighted like X
    if not uses_class_weights(strategy):  # focal weighs through its alpha
        return None
    if strategy == "custom":
        return _custom(custom or {}, class_names, keyword)
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


def _custom(table: Mapping[str, float], class_names: Sequence[str], keyword: str
            ) -> list[float]:
    """The custom table's weight per class index: a key that is no label is an error; a
    class the table leaves out weighs 1.0, as Keras's ``fit`` weighs it (its
    ``class_weight_to_sample_weights``: ``class_weight.get(label, 1.0)``)."""
    names = [str(c) for c in class_names]
    if not table:
        raise InputError(f"class_weight 'custom' needs weights: {keyword} is empty")
    unknown = [key for key in table if key not in names]
    if unknown:
        raise InputError(
            f"{keyword} key {unknown[0]!r} is not a label of the data "
            f"(labels: {', '.join(names[:20])}{', ...' if len(names) > 20 else ''})"
        )
    return [float(table.get(name, DEFAULT_WEIGHT)) for name in names]


def custom_defaults_warning(
    custom: Mapping[str, float] | None, class_names: Sequence[str],
    keyword: str = "custom_class_weight",
) -> str | None:
    """The sentence for the report where a custom table leaves classes out (they weigh
    1.0, as in ``fit``); None where it names every class."""
    if not custom:
        return None
    missing = [str(name) for name in class_names if str(name) not in custom]
    if not missing:
        return None
    shown = ", ".join(missing[:_NAMED])
    more = f", ... ({len(missing)} in all)" if len(missing) > _NAMED else ""
    which = f"class{'es' if len(missing) > 1 else ''} {shown}{more}"
    table = "custom_class_weight" if keyword == "custom_class_weight" else f"the {keyword} dict"
    return (f"{table} gives no weight for {which}: "
            f"{'they weigh' if len(missing) > 1 else 'it weighs'} {DEFAULT_WEIGHT:g}, as "
            "Keras's fit(class_weight=...) weighs a class the dict leaves out")


def weights_by_name(
    weights: Sequence[float] | None, class_names: Sequence[str]
) -> dict[str, float] | None:
    """Weights keyed by class name, at full precision: what ``fit(class_weight=...)`` gets
    and the JSON records (the renderers round for display, ``text.fmt_weight``)."""
    if weights is None:
        return None
    return {str(name): float(w) for name, w in zip(class_names, weights, strict=True)}
