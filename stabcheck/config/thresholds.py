"""Every classification threshold in one place, each with where its value comes from.

Changing a value here changes the verdicts; the tests in ``tests/judge/test_classify.py`` pin
the behaviour at the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Numbers the classifier compares a probe's record against."""

    # The smoothed loss the report shows (``final_loss``): a bias-corrected exponential
    # moving average with beta 0.98, as the learning-rate finders smooth it (Lightning's
    # ``_LRCallback`` and fastai's ``lr_find``). Display only: no rule compares it.
    ema_beta: float = 0.98

    # Divergence (``stabcheck.judge.trend``): "the long run would blow up", judged on medians,
    # because per-batch losses of weighted, imbalanced data are heavy-tailed (on a
    # fraud-style set of 50,000 rows with 0.2% positives, at batch 32 the rare batch holding
    # a positive costs 1000x the others, and an EMA-over-its-best rule called every such
    # probe diverged; a plain fit of the same settings was healthy). The curve is cut into
    # windows of 20% of the probe's steps (at least 5); a window's median ignores a minority
    # of expensive batches. The probe diverged when
    # - the last window's median is above 4x the first step's loss (the untrained model's:
    #   "it stays far above the start at the end"), or
    # - the medians of the last three windows rise, the last one to above 4x the lowest
    #   window ("it keeps growing"),
    # and the median of the last 5 steps is not back below the start (the first rule) or
    # above that level too (the second): a swing that fills the last window but has come
    # back below the start by the last step recovered (the fraud-style data at batch 32,
    # balanced: 0.02 -> 1.8 -> 0.026 over steps 74-100); one whose last steps still sit
    # above the start has not (the keras-io fraud model, x100 at lr 0.1 clipped: 13x its
    # start over the last 20 of 100 steps, 3.8x over the last 5; its 30-epoch fit's loss
    # climbs to 200x).
    # The factor 4 is the learning-rate finders' divergence threshold (Lightning
    # ``early_stop_threshold=4.0``, fastai ``lr_find``), applied here to medians rather than
    # to an average one batch can lift. Below 10% of the start (``trend_floor``) a loss
    # counts as learned: a rise from 1e-26 to 1e-2 (Adam drives the easy class to zero and
    # the rare class's batches bring it back, the fraud-style data at batch 32, lr 1e-2) is not a
    # blow-up while it stays an order of magnitude below the start.
    divergence_factor: float = 4.0
    trend_window_fraction: float = 0.2
    trend_min_window: int = 5
    trend_floor: float = 0.1
    # A probe of fewer steps than this is too short to judge a trend (4 windows of 5): it is
    # judged only for an outright blow-up, and its evidence says so.
    trend_min_steps: int = 20
    # A spike is sustained when the median of 5 consecutive losses passes 4x the start (3
    # of 5 batches, which rare heavy batches at a 0.2% positive rate almost never are);
    # one that recovers is a warning on a stable probe, not a divergence. The same 5-step
    # median is the gradient-norm trend below.
    spike_window: int = 5

    # Early exit: a probe the median of whose last 5 losses is above 1000x the first
    # step's loss at step 20 or later is decided (250 times past the 4x divergence rule);
    # the worker stops it there instead of spending the remaining steps. Not before step
    # 20: a run on its way to NaN gets there within a few steps as a rule, and then
    # reports the NaN and where it appeared.
    early_stop_factor: float = 1000.0
    early_stop_min_steps: int = 20

    # Exploding gradients: the median of 5 consecutive global gradient norms reaches 100x
    # (two orders of magnitude) the baseline. "Orders of magnitude" is the symptom named in
    # Pascanu et al. 2013, "On the difficulty of training RNNs". The baseline is the median
    # over the first ``early_window`` steps, but at least 0.1x the first step's norm: on
    # imbalanced data the common class's loss falls towards zero in a few steps and its
    # gradients vanish (1e-10 at step 5 on the fraud-style data), and measured
    # against that any batch holding a rare sample "explodes"; one order of magnitude below
    # the untrained model's gradient keeps a growth of two orders above it the symptom.
    explosion_ratio: float = 100.0
    early_window: int = 10
    gradient_floor: float = 0.1

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
    # the coefficient of determination), below 0 is worse than that constant.
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
    #   of the predictions, the effect of balanced weights over hundreds of classes
    #   (their rarest get weights in the hundreds). With two classes a rare class
    #   predicted at a multiple of its share is the ordinary price of its recall, so only
    #   the inversion counts there.
    # Comparing halves, not pairs of classes, keeps a single confusion between two of
    # many classes from tripping it; the factor 2 keeps noise from tripping it.
    overcorrection_factor: float = 2.0
    # A margin before it fires (hysteresis): the measured ratio (or share) must pass the
    # factor by 25%, 2.5x; between 2x and 2.5x the probe stays ``stable`` with a
    # "borderline" warning. The predicted counts of two probes that differ only by a clip
    # move by 10-20% (measured: ``overcorrected`` vs ``ok`` flipped with clipping while the
    # counts barely changed); a margin above that keeps the verdict from flipping on them.
    overcorrection_margin: float = 0.25

    # Learning verdicts need warmed-up inference statistics. A BatchNormalization layer's
    # moving mean and variance are exponential averages with its momentum (Keras: 0.99);
    # after n steps the initial values (mean 0, variance 1) still weigh momentum^n (0.37
    # after 100 steps). Until that is below 5% (three time constants, e^-3; about 300
    # steps at 0.99) the held-out predictions in inference mode are not yet the trained
    # model's, and a collapse or overcorrection seen only in inference mode (not with batch
    # statistics) is "not enough steps to judge".
    bn_warmup_residual: float = 0.05
    # With no learning verdict, inference-mode predictions of such a model are withheld
    # when batch statistics are more than 5 points more accurate: twice the binomial
    # standard error of an accuracy near 90% measured on 400 held-out samples (1.5 points).
    bn_accuracy_gap: float = 0.05

    # The rungs (``stabcheck.judge.rungs``). The first rung is a quarter of --steps (at
    # least ``trend_min_steps``, so the loss-trend rule judges a divergence there): the
    # reduction factor eta = 4 of successive halving (Hyperband's eta is 3 or 4, Li et al.
    # 2017; ASHA's experiments use 4, Li et al. 2020): every setting climbs it, and
    # numerical and memory verdicts are final there.
    first_rung_fraction: float = 0.25
    # A contender whose learning verdict is unsettled at --steps (a class not predicted
    # yet, a problem shrinking from rung to rung) climbs on, the steps doubled, up to 4x
    # the planned ones: unweighted cross-entropy learns the class prior first and the
    # rare classes later, and 100 steps judged runs that predict the minority after a few
    # epochs as collapsed (bench/validity.py at 100 steps: 5 of 29 settings; at 400 steps
    # 1 of 16). 1 turns it off. Numerical verdicts are never extended: they are decided.
    collapse_extension_factor: int = 4
    # A healthy first rung heading for a numerical failure climbs on to --steps to settle
    # it: the loss's last three trend windows rise to twice the lowest, or the gradient
    # norm's trend is at a tenth of the explosion ratio (10x its baseline): half way (on
    # a log scale for the norm) to what the divergence and explosion rules call failed.
    risk_factor: float = 2.0

    # A class never predicted after the probe's steps is not yet a collapse when the model
    # already ranks it: its score for the class puts a random sample of it above a random
    # other sample at least 3 times in 4 (one-vs-rest ROC-AUC >= 0.75) and at least 3
    # standard errors above chance (0.5; the Mann-Whitney standard error with no signal,
    # sqrt((n1 + n2 + 1) / (12 n1 n2)); z >= 3 is p < 0.0015 one-sided), while the loss is
    # still falling. Unweighted cross-entropy on imbalanced data learns the class prior
    # first and moves the rare classes' scores past the threshold later: on the fraud,
    # forum (1:1000) and BatchNorm problems of bench/validity_problems.py the runs whose
    # minority was unpredicted at step 100 ranked it at 0.78-0.99 and predicted it in the
    # 20-epoch fit, while a model that only learned the prior ranks at chance.
    still_learning_auc: float = 0.75
    still_learning_z: float = 3.0

    # A stalled classifier whose loss is within 2% of the loss of predicting the class
    # shares for every sample (``stabcheck.judge.prior``) has learned the prior and not
    # yet the inputs: a plateau runs often leave later (the keras-io text model of
    # bench/validity_problems.py sits at 0.693 = ln 2 for its first ~500 steps at lr 1e-3,
    # then learns in its first epoch). 2% is well above the window median's wander on
    # such a plateau (0.1-0.2% there) and below where a model that learned something
    # sits (the frozen breast_cancer MLP at lr 1e-7: 6% below its prior's 0.66).
    plateau_prior_tolerance: float = 0.02

    # Host-memory peaks within 5% of the budget are flagged as "near the budget":
    # allocator fragmentation and data-dependent shapes easily move a peak that much
    # (Lightning's batch-size finder backs off on the first OOM for the same reason).
    memory_margin: float = 0.05

    # Two class weightings whose largest-to-smallest weight ratios are within 5% of each
    # other are the same weighting: neither is "milder", and a difference in how they fared
    # is not the weights' doing. The counts behind a ratio come from a sample: balanced
    # weights from the stratified sample and a custom table the user computed on all the
    # data differ by the sample's rounding (1:569 and 1:571 on the fraud example, 0.4%),
    # and one sample more or less of a class of 20 moves its ratio by 5%.
    weight_ratio_tolerance: float = 0.05

    # The recommendation: stable settings whose held-out macro-F1 is within 0.02 of the
    # best count as equally good (a 0.02 difference is about the standard error of an F1
    # measured on a few hundred held-out samples); among them the one with no numerical
    # failure next to it in the grid and the highest minority recall is recommended.
    recommend_f1_tolerance: float = 0.02


DEFAULT_THRESHOLDS = Thresholds()
