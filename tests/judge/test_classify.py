"""Tests of ``stabcheck.judge.classify``: each outcome from the record that means it, and not from
the near-misses next to it. Runs are built by hand; curves come from simple formulas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS
from stabcheck.judge.classify import classify, smoothed_losses
from stabcheck.results import (
    Category,
    HoldoutEval,
    MemoryEvidence,
    NonFinite,
    Outcome,
    Probe,
    ProbeRun,
    ProbeSettings,
    StepRecord,
    Termination,
    Verdict,
)
from tests.conftest import FIXTURES

GiB = 2**30
BETA = DEFAULT_THRESHOLDS.ema_beta

WEIGHTED = {"0": 0.555556, "1": 5.0}


# --------------------------------------------------------------------------- factories


def make_probe(class_weights: dict[str, float] | None = None, steps: int = 50) -> Probe:
    settings = ProbeSettings(
        class_weight="none" if class_weights is None else "balanced",
        class_weights=class_weights, learning_rate=0.01, clip="none", batch_size=32,
        optimizer="adam", loss="sparse_categorical_crossentropy",
    )
    return Probe(f"cw={settings.class_weight},lr=0.01,clip=none,bs=32", settings, steps)


def records(
    losses: Sequence[float], norms: Sequence[float] | None = None
) -> tuple[StepRecord, ...]:
    norms = [1.0] * len(losses) if norms is None else norms
    return tuple(
        StepRecord(i, float(loss), float(norm))
        for i, (loss, norm) in enumerate(zip(losses, norms, strict=True), start=1)
    )


def curve(f: Callable[[int], float], n: int = 50) -> list[float]:
    return [f(i) for i in range(n)]


def decreasing(n: int = 50) -> list[float]:
    return curve(lambda i: 1.0 / (1.0 + 0.05 * i), n)


def holdout(
    true: Sequence[int], pred: Sequence[int], accuracy: float | None = None
) -> HoldoutEval:
    n = sum(true)
    if accuracy is None:  # the best accuracy these counts allow
        accuracy = sum(min(t, p) for t, p in zip(true, pred, strict=True)) / n
    recall = tuple(min(t, p) / t if t else None for t, p in zip(true, pred, strict=True))
    return HoldoutEval(n, accuracy, tuple(true), tuple(pred), recall)


GOOD_HOLDOUT = holdout((80, 20), (78, 22), accuracy=0.95)


def completed(
    losses: Sequence[float],
    norms: Sequence[float] | None = None,
    ho: HoldoutEval | None = GOOD_HOLDOUT,
    class_weights: dict[str, float] | None = None,
) -> ProbeRun:
    return ProbeRun(make_probe(class_weights, len(losses)), Termination.COMPLETED,
                    steps=records(losses, norms), holdout=ho)


def died(
    returncode: int | None,
    memory: MemoryEvidence | None = None,
    stderr: str = "",
    steps: int = 12,
    termination: Termination = Termination.DIED,
) -> ProbeRun:
    return ProbeRun(
        make_probe(), termination, steps=records(decreasing(steps)), returncode=returncode,
        memory=memory or MemoryEvidence(None, None, None), stderr_tail=stderr,
    )


def with_exception(exc: dict[str, Any], steps: int = 3) -> ProbeRun:
    return ProbeRun(make_probe(), Termination.EXCEPTION, steps=records(decreasing(steps)),
                    exception=exc)


def check(verdict: Verdict, outcome: Outcome) -> Verdict:
    assert verdict.outcome is outcome, (verdict.outcome, verdict.summary, verdict.evidence)
    assert verdict.category is outcome.category
    assert isinstance(verdict.summary, str) and verdict.summary
    return verdict


def losses_ending_at_smoothed(target: float, flat: int = 20) -> list[float]:
    """``flat`` steps of loss 1.0, then one loss that puts the smoothed loss at ``target``.

    The smoothed loss of a constant 1.0 is exactly 1.0 (the best), so the last step's
    smoothed value is ``target`` times the best.
    """
    n = flat + 1
    raw_avg = 1 - BETA**flat  # the EMA before bias correction after ``flat`` ones
    last = (target * (1 - BETA**n) - BETA * raw_avg) / (1 - BETA)
    return [1.0] * flat + [last]


# --------------------------------------------------------------------------- smoothing


@pytest.mark.parametrize(
    "losses", [[2.5], [0.7, 0.3], [1.0, 5.0, 2.0], [10.0] * 5, decreasing(10)]
)
def test_smoothed_first_value_is_first_loss(losses: list[float]) -> None:
    smooth = smoothed_losses(losses, BETA)
    assert len(smooth) == len(losses)
    assert smooth[0] == pytest.approx(losses[0], rel=1e-12)


def test_smoothed_constant_stays_constant_and_hand_values() -> None:
    assert smoothed_losses([3.0] * 30, BETA) == pytest.approx([3.0] * 30, rel=1e-12)
    # second value: (0.98 * 0.02 * 1 + 0.02 * 2) / (1 - 0.98**2)
    expected = (0.98 * 0.02 * 1.0 + 0.02 * 2.0) / (1 - 0.98**2)
    assert smoothed_losses([1.0, 2.0], BETA)[1] == pytest.approx(expected, rel=1e-12)
    assert smoothed_losses([], BETA) == []


def test_boundary_helper_hits_target() -> None:
    assert smoothed_losses(losses_ending_at_smoothed(3.5), BETA)[-1] == pytest.approx(3.5)


# --------------------------------------------------------------------------- stable


@pytest.mark.parametrize(
    ("name", "losses"),
    [
        ("decreasing", decreasing()),
        ("exponential decay", curve(lambda i: 2.0 * math.exp(-0.05 * i))),
        # noisy: +-50% around a decreasing trend, never diverging
        ("noisy", curve(lambda i: (1.0 / (1 + 0.02 * i)) * (1 + 0.5 * (-1) ** i), 100)),
        # one raw spike to 10x the best after warm-up: smoothing absorbs it
        ("single spike", [1.0] * 20 + [10.0] + curve(lambda i: 1.0 - 0.01 * i, 20)),
        # the smoothed loss climbs to just under 4x its best
        ("just under 4x", losses_ending_at_smoothed(3.99)),
        # one expensive last batch (the old EMA rule's 4.01x and 10x its best): one batch
        # holding a rare, heavily weighted sample is not a divergence
        ("one expensive batch (4.01x)", losses_ending_at_smoothed(4.01)),
        ("one expensive batch (10x)", losses_ending_at_smoothed(10.0)),
        # heavy tails: a falling loss with one batch in 16 costing 300x the others
        ("heavy-tailed", curve(lambda i: (300.0 if i % 16 == 7 else 1.0) / (1 + 0.05 * i), 100)),
    ],
)
def test_stable(name: str, losses: list[float]) -> None:
    v = check(classify(completed(losses)), Outcome.STABLE)
    assert v.category is Category.OK
    assert v.evidence["holdout_accuracy"] == 0.95
    assert v.evidence["final_loss"] == pytest.approx(smoothed_losses(losses, BETA)[-1])
    assert f"trained {len(losses)} steps" in v.summary


# --------------------------------------------------------------------------- non_finite


@pytest.mark.parametrize(
    ("nonfinite", "needles"),
    [
        (NonFinite(37, "loss", None, "nan"), ("NaN at step 37", "loss")),
        (NonFinite(5, "loss", None, "inf"), ("+Inf at step 5",)),
        (NonFinite(12, "gradient", "dense_1/kernel", "inf"),
         ("+Inf at step 12", "dense_1/kernel gradient")),
        (NonFinite(3, "weight", "conv2d/bias", "-inf"), ("-Inf at step 3", "conv2d/bias weight")),
        (NonFinite(9, "gradient", "dense/kernel", "nan"), ("NaN at step 9", "dense/kernel")),
    ],
)
def test_non_finite(nonfinite: NonFinite, needles: tuple[str, ...]) -> None:
    losses = decreasing(nonfinite.step - 1) + [math.nan]
    run = ProbeRun(make_probe(), Termination.NON_FINITE, steps=records(losses),
                   nonfinite=nonfinite)
    v = check(classify(run), Outcome.NON_FINITE)
    assert v.category is Category.NUMERICAL
    for needle in needles:
        assert needle in v.summary
    assert v.evidence["step"] == nonfinite.step
    assert v.evidence["where"] == nonfinite.where
    assert v.evidence["variable"] == nonfinite.variable
    assert v.evidence["value"] == nonfinite.value
    assert v.evidence["last_finite_loss"] == pytest.approx(losses[-2])


def test_non_finite_at_first_step_has_no_last_finite_loss() -> None:
    run = ProbeRun(make_probe(), Termination.NON_FINITE, steps=records([math.nan]),
                   nonfinite=NonFinite(1, "loss", None, "nan"))
    v = check(classify(run), Outcome.NON_FINITE)
    assert v.evidence["last_finite_loss"] is None


# --------------------------------------------------------------------------- diverged


@pytest.mark.parametrize(
    ("losses", "step", "rule"),
    [
        # exponential growth from step 21: blown up (1000x the start) by the end
        (curve(lambda i: 1.0 if i < 20 else 1.0 * 1.5 ** (i - 19), 60), None, "blown_up"),
        # a rise to 6x the start that stays there: far above the start at the end
        (curve(lambda i: 1.0 if i < 20 else min(6.0, 1.2 ** (i - 19)), 60), 28, "above_start"),
        # a jump at step 2 that stays: reported from the step it began
        ([0.1] + [10.0] * 49, 2, "above_start"),
        # the loss falls from 1.0 to 0.1, then keeps growing (to 0.5, below the start):
        # the medians of the last three windows rise, the last 5x the lowest
        (curve(lambda i: 1.0 - 0.9 * i / 40 if i < 40 else 0.1 * 1.04 ** (i - 39), 100), None,
         "still_rising"),
        # a blow-up the worker stops early: 1000x the start over the last 5 steps
        ([1.0] * 20 + [5e3] * 5, 21, "blown_up"),
    ],
)
def test_diverged(losses: list[float], step: int | None, rule: str) -> None:
    v = check(classify(completed(losses)), Outcome.DIVERGED)
    assert v.category is Category.NUMERICAL
    assert v.evidence["rule"] == rule
    assert v.evidence["factor"] > DEFAULT_THRESHOLDS.divergence_factor
    assert v.evidence["step"] <= v.evidence["decided_at_step"] == len(losses)
    if step is not None:
        assert v.evidence["step"] == step
    assert f"diverged from step {v.evidence['step']}" in v.summary


def test_still_rising_names_the_three_windows() -> None:
    losses = curve(lambda i: 1.0 - 0.9 * i / 40 if i < 40 else 0.1 * 1.04 ** (i - 39), 100)
    v = check(classify(completed(losses)), Outcome.DIVERGED)
    medians = v.evidence["window_medians"]
    assert medians[-3] < medians[-2] < medians[-1] < losses[0]  # below the start, rising
    assert "last three 20-step windows rose" in v.summary


def test_an_early_spike_that_recovers_is_stable_with_a_warning() -> None:
    """A fraud-style curve (balanced, lr 1e-2, batch 2048): 0.34 -> 12.6 at step 2,
    a few steps up there, then down to 0.03 by step 100."""
    losses = [0.34, 12.6, 11.0, 8.0, 4.0, 2.0] + curve(lambda i: 1.0 * 0.96 ** i + 0.027, 94)
    v = check(classify(completed(losses)), Outcome.STABLE)
    assert v.evidence["loss_spike"]["peak_step"] == 2
    (warning,) = v.evidence["warnings"]
    assert warning.startswith("loss spiked to 12.6 at step 2 and recovered")
    assert warning in v.summary


def test_a_probe_too_short_to_tell_says_so() -> None:
    v = check(classify(completed([1.0, 3.0, 5.0, 2.0, 1.0, 0.9, 0.8])), Outcome.STABLE)
    assert v.evidence["loss_trend"]["trend"] == "too_short"
    assert "too few to judge the loss trend" in v.summary


def test_a_short_probe_that_blew_up_is_diverged() -> None:
    check(classify(completed([1.0, 1e4, 1e5, 1e6, 1e7, 1e8])), Outcome.DIVERGED)


def test_user_thresholds_reach_the_trend_rule() -> None:
    losses = [1.0] * 20 + [3.0] * 20  # 3x the start at the end
    check(classify(completed(losses)), Outcome.STABLE)
    strict = replace(DEFAULT_THRESHOLDS, divergence_factor=2.0)
    check(classify(completed(losses), thresholds=strict), Outcome.DIVERGED)


# --------------------------------------------------------------------------- recorded curves

RECORDED = json.loads((FIXTURES / "fraud_curves.json").read_text())


def recorded(probe_id: str, ho: HoldoutEval | None = GOOD_HOLDOUT) -> ProbeRun:
    curves = RECORDED["curves"][probe_id]
    return completed(curves["losses"], curves["grad_norms"], ho=ho)


@pytest.mark.parametrize("probe_id", sorted(RECORDED["curves"]))
def test_recorded_fraud_curves_are_not_numerical(probe_id: str) -> None:
    """Every probe of a fraud-style grid (the EMA rule called 4 of 8
    diverged; a plain fit of each was finite) is not a numerical failure."""
    v = classify(recorded(probe_id))
    assert v.category is not Category.NUMERICAL, (probe_id, v.summary)


def test_recorded_heavy_tailed_batches_are_evidence_not_a_warning() -> None:
    """class_weight=none, lr 1e-3, batch 32: the batches holding a positive cost up to 0.64
    against 0.001 for the others; the trend never left the floor."""
    v = check(classify(recorded("cw=none,lr=0.001,clip=none,bs=32")), Outcome.STABLE)
    assert "warnings" not in v.evidence
    assert v.evidence["heavy_batches"]["count"] >= 1


def test_recorded_spike_at_batch_2048_recovers_with_a_warning() -> None:
    v = check(classify(recorded("cw=balanced,lr=0.01,clip=none,bs=2048")), Outcome.STABLE)
    assert v.evidence["loss_spike"]["peak_step"] == 3
    assert "loss spiked to 13.7 at step 3 and recovered" in v.summary


# --------------------------------------------------------------------------- exploding gradients


def spike_norms(ratio: float, at: int = 30, n: int = 50) -> list[float]:
    norms = [1.0 + 0.01 * (i % 3) for i in range(n)]  # early median 1.01
    norms[at - 1] = ratio * 1.01
    return norms


@pytest.mark.parametrize("ratio", [100.0, 150.0, 1e4])
def test_exploding_gradients(ratio: float) -> None:
    norms = spike_norms(ratio)
    for step in range(31, len(norms) + 1):  # sustained: from step 30 to the end
        norms[step - 1] = ratio * 1.01
    v = check(classify(completed(decreasing(), norms)), Outcome.EXPLODING_GRADIENTS)
    assert v.category is Category.NUMERICAL
    assert v.evidence["step"] == 30
    assert v.evidence["decided_at_step"] == 32  # 3 of the last 5 steps
    assert v.evidence["early_median"] == pytest.approx(1.01)
    assert v.evidence["ratio"] == pytest.approx(ratio)


@pytest.mark.parametrize("ratio", [100.0, 1e4])
def test_a_sustained_spike_the_run_recovers_from_is_not_an_explosion(ratio: float) -> None:
    """Six steps far above the baseline, then back to it by the end while the loss falls:
    a spike with a warning, not exploding gradients."""
    norms = spike_norms(ratio)
    for step in range(31, 36):
        norms[step - 1] = ratio * 1.01
    v = check(classify(completed(decreasing(), norms)), Outcome.STABLE)
    assert v.evidence["gradient_spike"]["recovered"] is True
    assert v.evidence["gradient_spike"]["step"] == 30
    assert any("came back by step" in w and "not an explosion" in w
               for w in v.evidence["warnings"])


@pytest.mark.parametrize("ratio", [100.0, 1e4])
def test_one_batch_with_a_large_gradient_is_evidence_not_explosion(ratio: float) -> None:
    """A batch holding a rare, heavily weighted sample: one step's norm is not a trend."""
    v = check(classify(completed(decreasing(), spike_norms(ratio))), Outcome.STABLE)
    assert v.evidence["gradient_spike"]["step"] == 30


def test_a_vanishing_early_gradient_is_not_the_baseline() -> None:
    """The common class's loss driven to zero: gradients of 1e-10 by step 5. The baseline is
    at least 0.1x the first step's norm, so later batches of norm 1 are no explosion."""
    norms = [20.0, 1e-3, 1e-6, 1e-8, 1e-10] + [1e-10] * 5 + [1.0] * 40
    v = check(classify(completed(decreasing(), norms)), Outcome.STABLE)
    assert "gradient_spike" not in v.evidence


@pytest.mark.parametrize("ratio", [90.0, 99.0, 10.0])
def test_gradient_spike_below_100x_is_not_explosion(ratio: float) -> None:
    check(classify(completed(decreasing(), spike_norms(ratio))), Outcome.STABLE)


def test_large_gradients_within_early_window_are_the_baseline() -> None:
    norms = [500.0] * 10 + [600.0] * 40  # large but steady: ratio 1.2
    check(classify(completed(decreasing(), norms)), Outcome.STABLE)


def test_explosion_needs_more_steps_than_the_early_window() -> None:
    norms = [1.0] * 9 + [1e6]  # 10 steps: no baseline to compare against
    check(classify(completed(decreasing(10), norms)), Outcome.STABLE)


# --------------------------------------------------------------------------- stalled


@pytest.mark.parametrize(
    ("losses", "ho"),
    [
        ([0.69] * 50, holdout((80, 20), (100, 0), accuracy=0.8)),
        ([0.69] * 50, holdout((80, 20), (95, 5), accuracy=0.81)),
        (curve(lambda i: 0.69 - 1e-5 * i), holdout((50, 30, 20), (100, 0, 0), accuracy=0.5)),
    ],
)
def test_stalled(losses: list[float], ho: HoldoutEval) -> None:
    v = check(classify(completed(losses, ho=ho)), Outcome.STALLED)
    assert v.category is Category.LEARNING
    assert v.evidence["relative_loss_change"] < DEFAULT_THRESHOLDS.stall_rel_tolerance
    assert v.evidence["chance_accuracy"] == max(ho.true_counts) / ho.n
    assert "at chance" in v.summary


def noisy_flat(n: int = 40, level: float = 0.62, jitter: float = 0.1,
               phase: float = 0.0) -> list[float]:
    """A model that does not learn: each batch's loss scatters around one level (as a
    frozen MLP's did on breast_cancer at lr 1e-7: 0.54 to 0.69 around 0.62)."""
    return [level * (1 + jitter * math.sin(2.1 * i + phase)) for i in range(n)]


@pytest.mark.parametrize("phase", [0.0, 1.0, 2.0, 3.0])
def test_stalled_through_batch_noise(phase: float) -> None:
    losses = noisy_flat(phase=phase)
    v = check(classify(completed(losses, ho=holdout((71, 42), (113, 0), accuracy=0.628))),
              Outcome.STALLED)
    assert v.evidence["relative_loss_change"] < 2 * v.evidence["relative_loss_noise"]


def test_a_move_within_noise_but_over_the_cap_is_not_stalled() -> None:
    # half the loss's value in jitter (a class-weighted loss), and a 10% drop
    losses = [x * (1 - 0.1 * (i >= 20)) for i, x in enumerate(noisy_flat(jitter=0.5))]
    v = classify(completed(losses, ho=holdout((71, 42), (113, 0), accuracy=0.628)))
    assert v.outcome is Outcome.MINORITY_COLLAPSE


def test_a_flat_loss_with_a_balanced_accuracy_above_chance_is_not_stalled() -> None:
    """A class-weighted model is less accurate than the majority rate by design; its
    balanced accuracy shows it learned (a real probe: 73% accuracy, recall 0.72/0.73)."""
    ho = holdout((950, 50), (709, 291), accuracy=0.731)
    ho = HoldoutEval(ho.n, ho.accuracy, ho.true_counts, ho.pred_counts, (0.73, 0.72),
                     {"balanced_accuracy": 0.725})
    check(classify(completed(noisy_flat(), ho=ho, class_weights=WEIGHTED)), Outcome.STABLE)
    frozen = HoldoutEval(ho.n, 0.183, ho.true_counts, (150, 850), (0.15, 0.9),
                         {"balanced_accuracy": 0.525})
    v = check(classify(completed(noisy_flat(), ho=frozen, class_weights=WEIGHTED)),
              Outcome.STALLED)
    assert "below chance" in v.summary


def test_noisy_but_falling_loss_at_chance_is_not_stalled() -> None:
    losses = [x * (1 - 0.01 * i) for i, x in enumerate(noisy_flat())]  # 40% lower by the end
    check(classify(completed(losses, ho=holdout((71, 42), (113, 0), accuracy=0.637))),
          Outcome.MINORITY_COLLAPSE)


@pytest.mark.parametrize(
    ("losses", "ho", "outcome"),
    [
        # flat loss but good held-out accuracy
        ([0.69] * 50, holdout((80, 20), (79, 21), accuracy=0.95), Outcome.STABLE),
        ([0.69] * 50, holdout((80, 20), (78, 22), accuracy=0.85), Outcome.STABLE),
        # moving loss at chance accuracy: learning, not stalled
        (decreasing(), holdout((80, 20), (80, 20), accuracy=0.8), Outcome.STABLE),
    ],
)
def test_flat_loss_near_misses_not_stalled(
    losses: list[float], ho: HoldoutEval, outcome: Outcome
) -> None:
    check(classify(completed(losses, ho=ho)), outcome)


def test_flat_loss_without_holdout_is_not_stalled() -> None:
    check(classify(completed([0.69] * 50, ho=None)), Outcome.STABLE)


def _at_chance(ranking_auc: float) -> HoldoutEval:
    """A balanced binary held-out split, every sample predicted class 1."""
    return HoldoutEval(100, 0.5, (50, 50), (0, 100), (0.0, 1.0),
                       {"balanced_accuracy": 0.5, "ranking_auc": ranking_auc})


def test_a_stall_at_the_class_priors_loss_is_a_plateau_not_judged() -> None:
    """Flat at ln 2 on balanced classes: the model learned the class shares and nothing
    of the inputs yet (the keras-io text model's first ~500 steps at lr 1e-3): not judged,
    with the prior's loss in the evidence. A flat loss above the prior's (it has not even
    learned the shares), a model whose scores are one number for every sample (dead), or
    no class counts to compute the prior from: stalled, as before."""
    flat = [math.log(2) * (1 + 0.002 * math.sin(i)) for i in range(50)]
    v = classify(completed(flat, ho=_at_chance(0.53)), class_counts=[500, 500])
    check(v, Outcome.STABLE)
    assert v.evidence["not_judged_because"] == "plateau"
    assert v.evidence["withheld_verdict"] == "stalled"
    assert v.evidence["plateau"]["prior_loss"] == pytest.approx(math.log(2))
    assert "loss of predicting the class shares" in v.summary
    check(classify(completed(flat, ho=_at_chance(0.5)), class_counts=[500, 500]),
          Outcome.STALLED)
    check(classify(completed(flat, ho=_at_chance(0.53))), Outcome.STALLED)
    above = [0.69] * 50  # 80/20 classes: the prior's loss is 0.50
    check(classify(completed(above, ho=holdout((80, 20), (100, 0), accuracy=0.8)),
                   class_counts=[800, 200]), Outcome.STALLED)


def test_a_common_class_the_weights_hide_but_the_model_ranks_is_still_learning() -> None:
    """x100 weights on 10% positives: class 0 never predicted, but ranked at ROC-AUC 0.84
    (z far above 3) while the loss falls: too short to tell, the verdict withheld. Ranked
    at chance (0.5: the model learned nothing of it), the overcorrection stands."""
    def hiding(auc: float) -> HoldoutEval:
        return HoldoutEval(1320, 0.5, (660, 660), (0, 1320), (0.0, 1.0),
                           {"balanced_accuracy": 0.5,
                            "unpredicted_auc": [{"class": 0, "auc": auc}]})
    weights = {"0": 1.0, "1": 100.0}
    v = classify(completed(decreasing(), ho=hiding(0.84), class_weights=weights))
    check(v, Outcome.STABLE)
    assert v.evidence["not_judged_because"] == "still_learning"
    assert v.evidence["withheld_verdict"] == "overcorrected"
    check(classify(completed(decreasing(), ho=hiding(0.5), class_weights=weights)),
          Outcome.OVERCORRECTED)


# --------------------------------------------------------------------------- learning verdicts


@pytest.mark.parametrize(
    ("true", "pred", "names", "classes"),
    [
        ((80, 20), (100, 0), ("neg", "pos"), ["pos"]),
        ((60, 30, 10), (65, 35, 0), ("a", "b", "c"), ["c"]),
        ((60, 30, 10), (100, 0, 0), ("a", "b", "c"), ["b", "c"]),
        ((60, 30, 10), (65, 35, 0), (), ["2"]),  # no names: class indices
    ],
)
def test_minority_collapse(
    true: tuple[int, ...], pred: tuple[int, ...], names: tuple[str, ...], classes: list[str]
) -> None:
    run = completed(decreasing(), ho=holdout(true, pred, accuracy=0.9))
    v = check(classify(run, names), Outcome.MINORITY_COLLAPSE)
    assert v.category is Category.LEARNING
    assert v.evidence["classes"] == classes
    assert v.evidence["pred_counts"] == list(pred)
    assert "never predicted" in v.summary


@pytest.mark.parametrize(
    ("true", "pred"),
    [((80, 20), (79, 1)), ((60, 30, 10), (64, 34, 2)), ((60, 30, 0), (70, 30, 0))],
)
def test_rare_class_predicted_at_least_once_is_not_collapse(
    true: tuple[int, ...], pred: tuple[int, ...]
) -> None:
    check(classify(completed(decreasing(), ho=holdout(true, pred, accuracy=0.9))),
          Outcome.STABLE)


@pytest.mark.parametrize(
    ("true", "pred", "common"),
    [
        ((90, 10), (0, 100), "neg"),
        ((60, 30, 10), (0, 50, 50), "a"),
    ],
)
def test_overcorrected_majority_never_predicted_under_class_weights(
    true: tuple[int, ...], pred: tuple[int, ...], common: str
) -> None:
    names = ("neg", "pos") if len(true) == 2 else ("a", "b", "c")
    run = completed(decreasing(), ho=holdout(true, pred), class_weights=WEIGHTED)
    v = check(classify(run, names), Outcome.OVERCORRECTED)
    assert v.category is Category.LEARNING
    assert v.evidence["common_class"] == common
    assert "never predicted" in v.summary


def test_majority_never_predicted_without_class_weights_is_not_overcorrected() -> None:
    run = completed(decreasing(), ho=holdout((90, 10), (0, 100)), class_weights=None)
    check(classify(run, ("neg", "pos")), Outcome.MINORITY_COLLAPSE)


@pytest.mark.parametrize(
    ("true", "pred", "common", "rare"),
    [
        ((90, 10), (25, 75), "0", "1"),
        ((80, 20), (25, 75), "0", "1"),
        ((50, 30, 20), (15, 25, 60), "0", "2"),
    ],
)
def test_overcorrected_inverted_shares(
    true: tuple[int, ...], pred: tuple[int, ...], common: str, rare: str
) -> None:
    run = completed(decreasing(), ho=holdout(true, pred), class_weights=WEIGHTED)
    v = check(classify(run), Outcome.OVERCORRECTED)
    assert (v.evidence["common_class"], v.evidence["rare_class"]) == (common, rare)
    assert "invert" in v.summary


@pytest.mark.parametrize(
    ("true", "pred"),
    [
        ((90, 10), (45, 55)),
        ((90, 10), (80, 20)),
        ((80, 20), (40, 60)),  # 4x as common, predicted 1.5x less often: below the factor 2
        ((50, 50), (20, 80)),  # equal true shares: nothing to invert
        ((60, 40), (40, 60)),
    ],
)
def test_shifted_shares_are_not_overcorrected(
    true: tuple[int, ...], pred: tuple[int, ...]
) -> None:
    run = completed(decreasing(), ho=holdout(true, pred), class_weights=WEIGHTED)
    check(classify(run), Outcome.STABLE)


def long_tail(k: int = 40, n_max: int = 400, ratio: float = 100.0) -> list[int]:
    """Held-out counts of a long-tailed problem: ``n_max`` down to ``n_max / ratio``."""
    return [max(2, round(n_max * ratio ** (-c / (k - 1)))) for c in range(k)]


def many_class_run(pred: Sequence[int], true: Sequence[int],
                   class_weight: str = "balanced") -> ProbeRun:
    weights = None if class_weight == "none" else {str(c): 1.0 for c in range(len(true))}
    settings = ProbeSettings(class_weight, weights, 0.05, "none", 32, "sgd",
                             "sparse_categorical_crossentropy")
    probe = Probe(f"cw={class_weight},lr=0.05,clip=none,bs=32", settings, 50)
    return ProbeRun(probe, Termination.COMPLETED, steps=records(decreasing()),
                    holdout=holdout(true, pred))


def spread_to_rare(true: Sequence[int], factor: float) -> list[int]:
    """Predictions that give the rare half ``factor`` times its share, taken evenly (in
    proportion) from the common half; every class still predicted."""
    k = len(true)
    common, rare = range(k // 2), range(k // 2, k)
    moved = (factor - 1) * sum(true[c] for c in rare)
    pred = [float(t) for t in true]
    total_common = sum(true[c] for c in common)
    for c in common:
        pred[c] -= moved * true[c] / total_common
    for c in rare:
        pred[c] += moved * true[c] / sum(true[r] for r in rare)
    pred = [max(1, round(p)) for p in pred]
    pred[0] += sum(true) - sum(pred)
    return pred


@pytest.mark.parametrize("factor", [2.6, 3.0, 5.0])
def test_many_classes_rare_half_overpredicted_is_overcorrected(factor: float) -> None:
    """Balanced weights over many classes over-predict the rare classes."""
    true = long_tail()
    pred = spread_to_rare(true, factor)
    v = check(classify(many_class_run(pred, true)), Outcome.OVERCORRECTED)
    assert v.evidence["rule"] == "rare_overpredicted"
    assert v.evidence["rare_classes"] == 20
    assert v.evidence["rare_share_pred"] == pytest.approx(
        factor * v.evidence["rare_share_true"], rel=0.05)
    assert "over-predict the rare classes" in v.summary


@pytest.mark.parametrize("factor", [1.0, 1.5, 1.9])
def test_many_classes_rare_half_mildly_raised_is_not_overcorrected(factor: float) -> None:
    true = long_tail()
    check(classify(many_class_run(spread_to_rare(true, factor), true)), Outcome.STABLE)


@pytest.mark.parametrize("factor", [2.0, 2.2, 2.4])
def test_many_classes_rare_half_within_the_margin_is_borderline(factor: float) -> None:
    """Between the factor (2x) and the margin above it (2.5x): stable, with a warning, so
    that a clip that moves the counts by 10% does not flip the verdict."""
    true = long_tail()
    v = check(classify(many_class_run(spread_to_rare(true, factor), true)), Outcome.STABLE)
    assert v.evidence["borderline_overcorrection"]["rule"] == "rare_overpredicted"
    assert "borderline overcorrection" in v.summary


def test_overcorrection_does_not_flip_with_a_small_change_of_the_counts() -> None:
    """Two twins whose predicted counts differ by 10%: the same verdict."""
    true = long_tail()
    verdicts = {classify(many_class_run(spread_to_rare(true, f), true)).outcome
                for f in (2.05, 2.25)}
    assert verdicts == {Outcome.STABLE}


def test_many_classes_without_weights_is_never_overcorrected() -> None:
    true = long_tail()
    pred = spread_to_rare(true, 4.0)
    check(classify(many_class_run(pred, true, class_weight="none")), Outcome.STABLE)


def test_focal_counts_as_class_weighting() -> None:
    true = long_tail()
    check(classify(many_class_run(spread_to_rare(true, 4.0), true, class_weight="focal")),
          Outcome.OVERCORRECTED)


def test_one_confused_pair_among_many_classes_is_not_overcorrected() -> None:
    """A rare class that absorbs a neighbour's samples is a confusion, not an inversion:
    the pairwise comparison the rule used to make tripped on it (seen for real on a
    40-class long tail, 97% accuracy, macro-F1 0.92)."""
    true = long_tail()
    pred = list(true)
    for c in (23, 24, 25):
        pred[c] -= 10
    pred[39] += 30  # class 39 (4 samples) predicted 34 times; class 25 (21) only 11
    check(classify(many_class_run(pred, true)), Outcome.STABLE)


def test_many_classes_majority_never_predicted_is_overcorrected() -> None:
    true = long_tail()
    pred = list(true)
    pred[1] += pred[0]
    pred[0] = 0
    v = check(classify(many_class_run(pred, true)), Outcome.OVERCORRECTED)
    assert v.evidence["rule"] == "common_never_predicted"


def test_many_classes_rare_class_never_predicted_is_collapse_with_or_without_weights() -> None:
    true = long_tail()
    pred = list(true)
    pred[0] += pred[30]
    pred[30] = 0  # class 30 (12 held-out samples) never predicted
    for cw in ("none", "balanced"):
        v = check(classify(many_class_run(pred, true, class_weight=cw)),
                  Outcome.MINORITY_COLLAPSE)
        assert v.evidence["classes"] == ["30"]


def test_overcorrection_names_the_common_halves_of_three_classes() -> None:
    run = completed(decreasing(), ho=holdout((50, 30, 20), (15, 25, 60)),
                    class_weights=WEIGHTED)
    v = check(classify(run, ("a", "b", "c")), Outcome.OVERCORRECTED)
    assert v.evidence["rule"] == "inverted"
    assert v.summary.startswith("class weights invert the class balance: a is 2.0x as common as "
                                "classes b and c but predicted 2.8x less often")


@pytest.mark.parametrize("pred", [(30, 70), (32, 68)])
def test_inverted_shares_within_the_margin_are_borderline(pred: tuple[int, int]) -> None:
    run = completed(decreasing(), ho=holdout((90, 10), pred), class_weights=WEIGHTED)
    v = check(classify(run), Outcome.STABLE)
    assert v.evidence["borderline_overcorrection"]["rule"] == "inverted"


# --------------------------------------------------------------------------- deaths


@pytest.mark.parametrize(
    ("memory", "oom_evidence"),
    [
        (MemoryEvidence(2 * GiB, 2 * GiB, "cgroup-v2", oom_kills=1), "cgroup"),
        (MemoryEvidence(2 * GiB, 2 * GiB, "cgroup-v1", oom_kills=3), "cgroup"),
        (MemoryEvidence(30 * GiB, None, None, oom_kills=0, system_oom=True), "system"),
    ],
)
def test_oom_host_from_kernel_oom_kill(memory: MemoryEvidence, oom_evidence: str) -> None:
    v = check(classify(died(-9, memory)), Outcome.OOM_HOST)
    assert v.category is Category.MEMORY
    assert v.evidence["signal"] == "SIGKILL(-9)"
    assert v.evidence["enforced_by"] == "kernel"
    assert v.evidence["oom_evidence"] == oom_evidence
    assert v.evidence["step"] == 12
    assert "OOM killer" in v.summary


@pytest.mark.parametrize(("phase", "words"), [
    ("build", "while building the model: its weights alone need 1.0 GiB"),
    ("optimizer", "while allocating the optimizer's state, before the first step"),
    ("startup", "(while the worker started)"),
])
def test_a_kill_before_the_first_step_names_its_phase(phase: str, words: str) -> None:
    from dataclasses import replace

    run = replace(died(-9, MemoryEvidence(2 * GiB, 2 * GiB, "cgroup-v1", oom_kills=1), steps=0),
                  exception={"phase": phase, "weight_bytes": GiB})
    v = check(classify(run), Outcome.OOM_HOST)
    assert v.evidence["phase"] == phase
    assert words in v.summary
    if phase != "startup":  # it died before training began, not in a step
        assert "during the first step" not in v.summary


def test_oom_host_from_watchdog() -> None:
    memory = MemoryEvidence(int(2.1 * GiB), 2 * GiB, "watchdog")
    run = died(-9, memory, termination=Termination.OVER_BUDGET)
    v = check(classify(run), Outcome.OOM_HOST)
    assert v.evidence["enforced_by"] == "watchdog"
    assert v.evidence["budget_bytes"] == 2 * GiB
    assert "watchdog" in v.summary


@pytest.mark.parametrize(
    ("returncode", "memory", "signal_text"),
    [
        (-9, None, "SIGKILL(-9)"),
        (-9, MemoryEvidence(GiB, 2 * GiB, "cgroup-v2"), "SIGKILL(-9)"),  # no OOM kill counted
        (-11, None, "SIGSEGV(-11)"),
        (-11, MemoryEvidence(GiB, 2 * GiB, "cgroup-v2", oom_kills=1), "SIGSEGV(-11)"),
        (-6, None, "SIGABRT(-6)"),
        (3, None, "exit(3)"),
        (1, None, "exit(1)"),
        (None, None, "unknown"),
    ],
)
def test_crashed(returncode: int | None, memory: MemoryEvidence | None, signal_text: str) -> None:
    v = check(classify(died(returncode, memory, stderr="Fatal Python error")), Outcome.CRASHED)
    assert v.category is Category.CRASH
    assert v.evidence["signal"] == signal_text
    assert v.evidence["returncode"] == returncode
    assert signal_text in v.summary
    if returncode == -9:
        assert "no sign of memory exhaustion" in v.summary


_RAY_OOM = ("Task was killed due to the node running low on memory.\nMemory on the node "
            "(IP: 10.0.0.7, ID: 5f2c) where the lease was running was 30.52GB / 31.90GB "
            "(0.956745), which exceeds the memory usage threshold of 0.95.")


@pytest.mark.parametrize(
    ("cluster", "outcome", "needles"),
    [
        ({"cause": "oom", "oom": True, "error": "OutOfMemoryError", "message": _RAY_OOM,
          "node_ip": "10.0.0.7", "node_id": "5f2c9a01ee", "node_memory_used_bytes": 30_520_000_000,
          "node_memory_total_bytes": 31_900_000_000, "last_step": 41, "node_lost": False},
         Outcome.OOM_HOST, ["killed by Ray for memory", "10.0.0.7 (5f2c9a01)", "28.4 GiB",
                            "at step 41"]),
        ({"cause": "lost", "error": "ActorDiedError", "node_ip": "10.0.0.8",
          "node_id": "aa01bb02cc", "pid": 4242, "last_step": 7, "node_lost": False},
         Outcome.CRASHED, ["Ray worker (pid 4242 on node 10.0.0.8 (aa01bb02))", "ActorDiedError",
                           "at step 7"]),
        ({"cause": "lost", "error": "ActorUnavailableError", "node_ip": "10.0.0.9",
          "node_id": "ff00", "pid": 1, "last_step": 0, "node_lost": True},
         Outcome.CRASHED, ["Ray node 10.0.0.9 (ff00) was lost", "during the first step"]),
        ({"cause": "lost", "error": "ActorUnavailableError", "node_ip": "10.0.0.9",
          "node_id": "ff00", "pid": 1, "last_step": 3, "node_lost": None},
         Outcome.CRASHED, ["became unreachable", "ActorUnavailableError"]),
    ],
)
def test_a_probe_the_ray_cluster_ended(cluster: dict, outcome: Outcome,
                                       needles: list[str]) -> None:
    """Ray's evidence (its exception, the node, the memory at the kill), not the exit status
    of a worker stabcheck never saw: a memory-monitor kill is oom_host, the rest crashed."""
    run = replace(died(None, steps=0), cluster={"executor": "ray", **cluster})
    v = check(classify(run), outcome)
    assert v.evidence["cluster"]["error"] == cluster["error"]
    assert v.evidence["step"] == cluster["last_step"]
    for needle in needles:
        assert needle in v.summary, v.summary
    if outcome is Outcome.OOM_HOST:
        assert v.evidence["enforced_by"] == "ray"


def test_a_probe_that_ran_on_ray_and_died_in_its_worker_keeps_the_workers_evidence() -> None:
    """Where the probe ran (no cause): the worker's own death decides, as locally."""
    run = replace(died(-11), cluster={"executor": "ray", "node_id": "ab", "pid": 7})
    v = check(classify(run), Outcome.CRASHED)
    assert v.evidence["signal"] == "SIGSEGV(-11)"


@pytest.mark.parametrize(
    ("returncode", "stderr", "outcome"),
    [
        (-6, "terminate called after throwing an instance of 'std::bad_alloc'",
         Outcome.OOM_HOST),
        (-6, "F external/xla: CUDA_ERROR_OUT_OF_MEMORY: out of memory", Outcome.OOM_GPU),
        (-6, "OOM when allocating tensor with shape[8192,64] on /device:GPU:0", Outcome.OOM_GPU),
        (-6, "Check failed: shapes match", Outcome.CRASHED),
    ],
)
def test_allocator_abort_in_stderr(returncode: int, stderr: str, outcome: Outcome) -> None:
    v = check(classify(died(returncode, stderr=stderr)), outcome)
    assert v.evidence["signal"] == "SIGABRT(-6)"


# --------------------------------------------------------------------------- timeout / exceptions


def test_timeout() -> None:
    run = ProbeRun(make_probe(), Termination.TIMEOUT, steps=records(decreasing(7)),
                   duration_s=300.04)
    v = check(classify(run), Outcome.TIMEOUT)
    assert v.category is Category.CRASH
    assert v.evidence == {"timeout_s": 300.0, "step": 7}
    assert "step 7" in v.summary


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        ("OOM when allocating tensor with shape[8192,64,8,8] and type float on "
         "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc", Outcome.OOM_GPU),
        ("OOM when allocating tensor with shape[8192,64,8,8] by allocator cpu", Outcome.OOM_HOST),
        ("", Outcome.OOM_HOST),
    ],
)
def test_exception_oom_is_memory(message: str, outcome: Outcome) -> None:
    exc = {"etype": "ResourceExhaustedError", "message": message, "oom": True,
           "phase": "train", "step": 4}
    v = check(classify(with_exception(exc)), outcome)
    assert v.category is Category.MEMORY
    assert v.evidence["exception_type"] == "ResourceExhaustedError"
    assert v.evidence["step"] == 4


@pytest.mark.parametrize(
    ("etype", "message", "device", "outcome"),
    [
        # JAX: XLA's status names no device; the worker knew it computed on the GPU
        ("JaxRuntimeError", "RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
         "4294967296 bytes.", "GPU", Outcome.OOM_GPU),
        ("JaxRuntimeError", "RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
         "4294967296 bytes.", None, Outcome.OOM_HOST),
        # PyTorch: torch.OutOfMemoryError is the CUDA allocator's, whatever it says
        ("OutOfMemoryError", "", "GPU", Outcome.OOM_GPU),
    ],
)
def test_exception_oom_device_from_the_worker(etype: str, message: str, device: str | None,
                                              outcome: Outcome) -> None:
    exc = {"etype": etype, "message": message, "oom": True, "oom_device": device,
           "phase": "train", "step": 2}
    v = check(classify(with_exception(exc)), outcome)
    assert v.category is Category.MEMORY
    assert v.evidence["exception_type"] == etype


@pytest.mark.parametrize(
    ("exc", "needles"),
    [
        ({"etype": "ValueError", "message": "Traceback...\nbad input shape (None, 3)",
          "oom": False, "phase": "build"}, ("ValueError", "building the model",
                                            "bad input shape (None, 3)")),
        ({"etype": "InvalidArgumentError", "message": "Incompatible shapes: [32,10] vs. [32,1]",
          "oom": False, "phase": "train"}, ("InvalidArgumentError", "training",
                                            "Incompatible shapes")),
        ({"etype": "RuntimeError", "message": "", "phase": "train"}, ("RuntimeError",)),
    ],
)
def test_exception_otherwise_is_error(exc: dict[str, Any], needles: tuple[str, ...]) -> None:
    v = check(classify(with_exception(exc)), Outcome.ERROR)
    assert v.category is Category.ERROR
    assert v.evidence["exception_type"] == exc["etype"]
    for needle in needles:
        assert needle in v.summary


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    "run",
    [
        completed(decreasing()),
        completed(losses_ending_at_smoothed(10.0)),
        completed(decreasing(), spike_norms(1000.0)),
        completed([0.69] * 50, ho=holdout((80, 20), (100, 0), accuracy=0.8)),
        died(-9, MemoryEvidence(GiB, GiB, "cgroup-v2", oom_kills=1)),
        died(-11),
        with_exception({"etype": "ValueError", "message": "x", "oom": False}),
    ],
)
def test_every_verdict_category_matches_outcome(run: ProbeRun) -> None:
    v = classify(run)
    assert v.category is v.outcome.category
    assert isinstance(v.category, Category)


def _flipping(weights: dict[str, float] | None) -> ProbeRun:
    """A class-weighted text-style run: the first batch holds no rare sample (0.34), the
    heavy batches holding one cost 100x; as the model flips to predicting the rare class
    the common batches' loss rises to 3 (the median, 9x the start) while the heavy ones
    fall to 0.5: the weighted mean falls from 24 to 2.5."""
    losses = []
    for i in range(100):
        heavy = i % 4 == 1
        if i < 20:
            losses.append(0.34 if i == 0 else (100.0 if heavy else 0.34 + 0.1 * i))
        else:
            losses.append(0.5 if heavy else 3.0)
    flipped = holdout((90, 10), (5, 95))
    return completed(losses, ho=flipped, class_weights=weights)


def test_a_weighted_loss_that_falls_while_the_predictions_flip_is_overcorrected() -> None:
    v = check(classify(_flipping({"0": 0.56, "1": 500.0})), Outcome.OVERCORRECTED)
    explained = v.evidence["divergence_explained"]
    assert explained["late_mean"] < explained["early_mean"]
    assert "not a blow-up" in v.summary
    # without class weights the same curve is a divergence: nothing explains it
    check(classify(_flipping(None)), Outcome.DIVERGED)


def test_the_start_of_a_weighted_loss_is_the_untrained_models_expected_loss() -> None:
    """A first batch without a rare sample under class weights holds half the data's
    mean weight (``first_batch_weight`` 0.5): its loss, 0.35, is half the untrained
    model's expected 0.70. A run whose loss then sits at 2.0 is 2.9x that start, not
    5.7x: not diverged (read from the first step alone, it was). A first batch of twice
    the mean weight works the other way."""
    losses = [0.35] + [0.7 + 1.3 * min(1.0, i / 20) for i in range(1, 60)]
    run = replace(completed(losses, class_weights=WEIGHTED),
                  step_info={"first_batch_weight": 0.5})
    v = classify(run)
    assert v.outcome is not Outcome.DIVERGED, v.summary
    assert classify(completed(losses, class_weights=WEIGHTED)).outcome is Outcome.DIVERGED
    # a rare sample in batch 1 (twice the mean weight): its 1.4 is twice the expected
    # 0.7, and a loss that climbs to 3.5 is 5x the start (2.5x the first step's)
    climbing = [1.4] + [0.7 + 2.8 * min(1.0, i / 20) for i in range(1, 60)]
    assert classify(completed(climbing, class_weights=WEIGHTED)).outcome \
        is not Outcome.DIVERGED
    heavy = replace(completed(climbing, class_weights=WEIGHTED),
                    step_info={"first_batch_weight": 2.0})
    v = classify(heavy)
    assert v.outcome is Outcome.DIVERGED
    assert v.evidence["start_loss"] == pytest.approx(0.7)
    assert "the untrained model's expected loss: the first step's 1.4" in v.summary
