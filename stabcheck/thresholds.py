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

    # Early exit: a probe whose smoothed loss is 1000x its best at step 20 or later is
    # decided (250 times past the 4x divergence rule); the worker stops it there instead
    # of spending the remaining steps. Not before step 20: a run on its way to NaN gets
    # there within a few steps as a rule, and then reports the NaN and where it appeared.
    early_stop_factor: float = 1000.0
    early_stop_min_steps: int = 20

    # Exploding gradients: the global gradient norm reaches 100x (two orders of
    # magnitude) its median over the first ``early_window`` steps. "Orders of magnitude"
    # is the symptom named in Pascanu et al. 2013, "On the difficulty of training RNNs".
    explosion_ratio: float = 100.0
    early_window: int = 10

    # Stalled: the loss did not move and the held-out predictions carry no information.
    # "Did not move": the mean of the last ``early_window`` losses is within 1% of the mean
    # of the first ``early_window`` (the 1% mirrors Keras ``ReduceLROnPlateau``'s relative
    # ``min_delta`` practice), or within 2 standard errors of the batch-to-batch noise (the
    # usual two-sigma test; the noise is estimated from successive differences, so a
    # trend does not count as noise) as long as that is under 5%. A model that does not
    # learn still sees a different batch at every step: a frozen MLP's loss on
    # breast_cancer jitters by +-10% per batch of 32 and its window means by 1-2%, while
    # a class-weighted loss can jitter by half its value; the 5% cap keeps such noise from
    # excusing a real move.
    stall_rel_tolerance: float = 0.01
    stall_noise_z: float = 2.0
    stall_noise_cap: float = 0.05
    # "No information": held-out accuracy within 2 points of always predicting the majority
    # class (chance is the majority-class rate of the held-out split) and, where measured,
    # balanced accuracy (mean per-class recall) within 0.05 of 1/k, what a classifier
    # that ignores its input scores. The second test keeps a class-weighted model, whose
    # accuracy is below the majority rate by design, from passing for one that learned
    # nothing; 0.05 is about two standard errors of a balanced accuracy measured on 40
    # minority samples.
    stall_chance_margin: float = 0.02
    stall_balanced_margin: float = 0.05

    # A regression probe that finished learned nothing when its held-out R² is at or
    # below this: R² 0 is what predicting the held-out mean scores (the definition of
    # the coefficient of determination), below 0 is worse than that constant. The issue
    # that asked for regression probes (issue 10) names the bound.
    stall_r2: float = 0.0

    # A class counts as "never predicted" only with at least 5 held-out samples: a model
    # with a real recall of 50% misses all 5 by chance only 3% of the time (0.5^5), while
    # missing 1 or 2 samples says nothing.
    min_class_support: int = 5

    # Overcorrection (under class weights or focal alpha). The classes are split at the
    # median of their held-out counts into the common half and the rare half (with two
    # classes: one each), and the factor is used twice:
    # - inverted: the common classes are on average at least 2x as frequent as the rare
    #   ones, yet the rare ones are predicted on average at least 2x as often (the ranking
    #   of predicted shares is inverted);
    # - over-predicted (three classes or more): the rare half gets at least 2x its share
    #   of the predictions, the effect issue 004 describes for balanced weights over
    #   hundreds of classes. With two classes a rare class predicted at a multiple of its
    #   share is the ordinary price of its recall, so only the inversion counts there.
    # Comparing halves, not pairs of classes, keeps a single confusion between two of
    # many classes from tripping it; the factor 2 keeps noise from tripping it.
    overcorrection_factor: float = 2.0

    # Host-memory peaks within 5% of the budget are flagged as "near the budget":
    # allocator fragmentation and data-dependent shapes easily move a peak that much
    # (Lightning's batch-size finder backs off on the first OOM for the same reason).
    memory_margin: float = 0.05

    # The recommendation: stable settings whose held-out macro-F1 is within 0.02 of the
    # best count as equally good (a 0.02 difference is about the standard error of an F1
    # measured on a few hundred held-out samples); among them the one with no numerical
    # failure next to it in the grid and the highest minority recall is recommended.
    recommend_f1_tolerance: float = 0.02


DEFAULT_THRESHOLDS = Thresholds()
