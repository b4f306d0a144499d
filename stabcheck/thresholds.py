"""Every classification threshold in one place, each with where its value comes from.

Changing a value here changes the verdicts; the tests in ``tests/test_classify.py`` pin
the behaviour at the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Numbers the classifier compares a probe's record against."""

    # Divergence: the loss, smoothed by a bias-corrected exponential moving average with
    # beta 0.98, rises above 4x the best smoothed loss seen so far. Both numbers are the
    # learning-rate finders' rule: Lightning (``lightning/pytorch/tuner/lr_finder.py``,
    # ``_LRCallback``: beta=0.98, ``early_stop_threshold=4.0``) and fastai's ``lr_find``.
    ema_beta: float = 0.98
    divergence_factor: float = 4.0

    # Steps ignored by the divergence rule while the smoothed loss warms up: the
    # bias-corrected EMA is noisy for the first few steps (fastai skips the same start).
    warmup_steps: int = 5

    # Exploding gradients: the global gradient norm reaches 100x (two orders of
    # magnitude) its median over the first ``early_window`` steps. "Orders of magnitude"
    # is the symptom named in Pascanu et al. 2013, "On the difficulty of training RNNs".
    explosion_ratio: float = 100.0
    early_window: int = 10

    # Stalled: the smoothed loss moved by less than 1% of its starting value over the
    # whole probe, and held-out accuracy is within 2 points of always predicting the
    # majority class. The 1% tolerance mirrors Keras ``ReduceLROnPlateau``'s relative
    # ``min_delta`` practice; chance is the majority-class rate of the held-out split.
    stall_rel_tolerance: float = 0.01
    stall_chance_margin: float = 0.02

    # A class counts as "never predicted" only with at least 5 held-out samples: a model
    # with a real recall of 50% misses all 5 by chance only 3% of the time (0.5^5), while
    # missing 1 or 2 samples says nothing.
    min_class_support: int = 5

    # Overcorrection: a class whose true held-out share is at least 2x another's is
    # predicted less often than that other one by the same factor (the ranking of
    # predicted shares is inverted). Background 004 (balanced weights over hundreds
    # of classes) describes the effect; the factor 2 keeps noise from tripping it.
    overcorrection_factor: float = 2.0

    # Host-memory peaks within 5% of the budget are flagged as "near the budget":
    # allocator fragmentation and data-dependent shapes easily move a peak that much
    # (Lightning's batch-size finder backs off on the first OOM for the same reason).
    memory_margin: float = 0.05


DEFAULT_THRESHOLDS = Thresholds()
