"""The loss of a model that has learned the class shares and nothing of the inputs.

A classifier trained with cross-entropy first learns how common each class is: its output
bias moves until every sample gets the class shares (as the class weights tilt them).
That loss, the best a prediction that ignores the inputs can reach, is a landmark: a run
whose loss sits there has learned the prior and not yet the inputs (a plateau many runs
sit on before they learn: an Embedding model on text, a deep stack at a low rate), while a
loss that is flat above it has not even learned the prior.

With ``pi`` the training share of each class and ``w`` its class weight, Keras's
``sum_over_batch_size`` reduction of the weighted loss averages ``w_c * -log q_c``; its
minimum over constant predictions ``q`` is at ``q_c = pi_c w_c / sum(pi w)``:

    L* = -sum_c pi_c w_c log(pi_c w_c / sum(pi w))

The ``normalized`` strategies divide by the batch's total weight: ``L* / sum(pi w)``.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from stabcheck.protocol.vocabulary import canonical_loss_name, is_normalized

# The losses whose constant-prediction minimum is the formula above (a focal loss, label
# smoothing or a user's own loss have another one: no landmark).
_CROSSENTROPIES = {"binary_crossentropy", "sparse_categorical_crossentropy",
                   "categorical_crossentropy"}


def prior_loss(loss: str | None, class_counts: Sequence[int],
               class_weights: Mapping[str, float] | None, strategy: str = "none"
               ) -> float | None:
    """The loss of the best prediction that ignores the inputs, or None where it is not
    known (another loss, no class counts, a weight table of another length).

    Args:
        loss: the compiled loss's name (any Keras spelling).
        class_counts: training samples per class index.
        class_weights: the probe's weights by class name, in class order (None: 1.0).
        strategy: the class-weight strategy (``normalized...`` divides by the weights).
    """
    if not loss or canonical_loss_name(str(loss)) not in _CROSSENTROPIES:
        return None
    counts = [float(c) for c in class_counts]
    total = sum(counts)
    if total <= 0 or len(counts) < 2:
        return None
    weights = [1.0] * len(counts) if class_weights is None else \
        [float(w) for w in class_weights.values()]
    if len(weights) != len(counts) or any(not math.isfinite(w) or w < 0 for w in weights):
        return None
    mass = [c / total * w for c, w in zip(counts, weights, strict=True)]
    z = sum(mass)
    if z <= 0:
        return None
    value = -sum(m * math.log(m / z) for m in mass if m > 0)
    return value / z if is_normalized(strategy) else value
