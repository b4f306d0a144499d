"""The rungs: the ladder, the decision at a rung, the learning trend across rungs, and the
decisions between stages (contenders, budgets, seeds). Pure: tables of synthetic runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS as T
from stabcheck.judge.classify import classify
from stabcheck.judge.rungs import (
    CONTENDER,
    FIRST_RUNG,
    climb,
    ladder,
    next_rung,
    numerical_risk,
    rung_trend_words,
)
from stabcheck.judge.stages import StepBudget, contender_caps, default_budget
from stabcheck.results import (
    HoldoutEval,
    Outcome,
    Probe,
    ProbeRun,
    RungEval,
    Termination,
)
from tests.judge.test_classify import (
    GOOD_HOLDOUT,
    decreasing,
    holdout,
    make_probe,
    records,
)

WEIGHTED = {"0": 0.6, "1": 3.0}


@pytest.mark.parametrize(("steps", "rungs"), [
    (100, (25, 50, 100, 200, 400)),  # a quarter first, then doubling
    (60, (20, 40, 60, 120, 240)),  # the first rung at least the trend rule's 20 steps
    (40, (20, 40, 80, 160)),  # ... but at most half the steps: two rungs before them
    (30, (15, 30, 60, 120)),
    (5, (3, 5, 10, 20)),
    (1, (1, 2, 4)),
])
def test_the_ladder(steps: int, rungs: tuple[int, ...]) -> None:
    assert ladder(steps).rungs == rungs
    assert ladder(steps).up_to(steps)[-1] == steps


def staged_run(losses: Sequence[float], stage: str, evals: Sequence[tuple[int, HoldoutEval]],
               planned: int = 100, weights: dict[str, float] | None = None,
               norms: Sequence[float] | None = None,
               termination: Termination = Termination.COMPLETED) -> ProbeRun:
    """A run climbing ``stage``'s rungs of a ``planned``-step ladder, evaluated at
    ``evals`` (its last evaluation is its held-out result)."""
    probe = dataclasses.replace(make_probe(weights, planned), rungs=ladder(planned).rungs,
                                stage=stage)
    rungs = tuple(RungEval(step, 0.1 * step, h) for step, h in evals)
    return ProbeRun(probe, termination, steps=records(losses, norms),
                    holdout=rungs[-1].holdout if rungs else None, rungs=rungs)


# Overcorrected binary predictions (20% rare): the rare class's share of the predictions
# over its share of the samples.
OVER_5X = holdout((80, 20), (0, 100))  # only the rare class predicted: 5x
OVER_4X = holdout((80, 20), (20, 80))  # 4x
OVER_3_7X = holdout((80, 20), (26, 74))  # 3.7x (predicted 2.8x as often as the common)
OVER_3_6X = holdout((80, 20), (28, 72))  # 3.6x


def decide(run: ProbeRun) -> int | None:
    return next_rung(run, classify(run), T)


# -------------------------------------------------------------- the decision at a rung


def test_a_clean_first_rung_stops_there() -> None:
    run = staged_run(decreasing(25), FIRST_RUNG, [(25, GOOD_HOLDOUT)])
    assert classify(run).outcome is Outcome.STABLE
    assert decide(run) is None  # not a contender yet: its learning is not its to earn


def test_a_learning_problem_at_the_first_rung_is_not_called_nor_climbed_for() -> None:
    """Learning verdicts are the contenders' to earn: a first rung's learning problem is
    withheld (one rung: no trend), and the setting climbs on only for a numerical risk."""
    run = staged_run(decreasing(25), FIRST_RUNG, [(25, OVER_5X)], weights=WEIGHTED)
    verdict = classify(run)
    assert verdict.outcome is Outcome.STABLE  # one rung: no trend yet, not called
    assert verdict.evidence["not_judged_because"] == "one_rung"
    assert verdict.evidence["withheld_verdict"] == "overcorrected"
    assert decide(run) is None
    contender = staged_run(decreasing(25), CONTENDER, [(25, OVER_5X)], weights=WEIGHTED)
    assert decide(contender) == 50  # a contender climbs, and its trend decides


def test_a_nan_is_final_at_any_rung() -> None:
    losses = [*decreasing(2), float("nan")]
    run = staged_run(losses, CONTENDER, [(3, GOOD_HOLDOUT)], termination=Termination.NON_FINITE)
    run = dataclasses.replace(run, nonfinite=None)
    assert classify(run).outcome is Outcome.NON_FINITE
    assert decide(run) is None


def test_a_trend_divergence_before_the_planned_steps_is_a_risk_to_confirm() -> None:
    """The loss rising from step 10 on, judged at the first rung: diverged by the trend
    rule there, but a run of 100 planned steps climbs on to confirm it (a spike it comes
    back from is not a blow-up); judged at its planned steps the verdict is final."""
    rising = [1.0] * 10 + [1.0 * 1.25 ** i for i in range(1, 16)]
    run = staged_run(rising, FIRST_RUNG, [(25, GOOD_HOLDOUT)])
    assert classify(run).outcome is Outcome.DIVERGED
    assert decide(run) == 50  # a numerical risk: the first stage climbs on to settle it
    assert numerical_risk(run) is not None
    final = staged_run(rising, CONTENDER, [(25, GOOD_HOLDOUT)], planned=25)
    assert decide(final) is None


def test_a_contender_climbs_to_its_planned_steps_then_only_while_unsettled() -> None:
    assert decide(staged_run(decreasing(25), CONTENDER, [(25, GOOD_HOLDOUT)])) == 50
    settled = staged_run(decreasing(100), CONTENDER,
                         [(25, GOOD_HOLDOUT), (50, GOOD_HOLDOUT), (100, GOOD_HOLDOUT)])
    assert decide(settled) is None
    never = holdout((80, 20), (100, 0))  # the minority never predicted: it trains on
    collapsed = staged_run(decreasing(100), CONTENDER,
                           [(25, never), (50, never), (100, never)])
    assert classify(collapsed).outcome is Outcome.MINORITY_COLLAPSE
    assert decide(collapsed) == 200


def test_an_overcorrection_hiding_a_class_the_model_ranks_climbs_past_its_steps() -> None:
    """x100 weights hold the common class under the threshold at every rung to the planned
    100 steps: called there when the model ranks it at chance, while one that ranks it at
    ROC-AUC 0.74 (z about 15 on 660 + 660 samples) trains on to see whether it comes out
    (the FordA-like problem's does: 0.84 at step 200, 0.90 at 400)."""
    def hiding(auc: float) -> HoldoutEval:
        return HoldoutEval(1320, 0.5, (660, 660), (0, 1320), (0.0, 1.0),
                           {"unpredicted_auc": [{"class": 0, "auc": auc}]})
    weights = {"0": 1.0, "1": 100.0}
    ranked = staged_run(decreasing(100), CONTENDER,
                        [(25, hiding(0.70)), (50, hiding(0.73)), (100, hiding(0.74))],
                        weights=weights)
    assert classify(ranked).outcome is Outcome.OVERCORRECTED  # below still_learning_auc
    assert decide(ranked) == 200
    blind = staged_run(decreasing(100), CONTENDER,
                       [(25, hiding(0.5)), (50, hiding(0.5)), (100, hiding(0.5))],
                       weights=weights)
    assert classify(blind).outcome is Outcome.OVERCORRECTED
    assert decide(blind) is None


def test_no_probe_climbs_past_a_time_budgets_deadline() -> None:
    run = staged_run(decreasing(25), CONTENDER, [(25, GOOD_HOLDOUT)])
    assert climb(run) == 50
    assert climb(run, deadline=0.0) is None


# ------------------------------------------------- learning verdicts from the trend


@pytest.mark.parametrize(("before", "after", "called"), [
    (OVER_4X, OVER_4X, True),  # persisting
    (OVER_3_6X, OVER_5X, True),  # growing
    (OVER_5X, OVER_4X, True),  # 5x -> 4x: within the 25% margin, persisting
    (OVER_5X, OVER_3_7X, None),  # 5x -> 3.7x: shrinking, not called, too early
])
def test_an_overcorrection_is_called_only_when_it_persists_across_rungs(
        before: HoldoutEval, after: HoldoutEval, called: bool | None) -> None:
    run = staged_run(decreasing(100), CONTENDER, [(25, before), (50, before), (100, after)],
                     weights=WEIGHTED)
    verdict = classify(run)
    if called:
        assert verdict.outcome is Outcome.OVERCORRECTED
        assert "across rungs" in verdict.summary
        assert verdict.evidence["rung_trend"]["steps"] == [50, 100]
    else:
        assert verdict.outcome is Outcome.STABLE
        assert verdict.evidence["not_judged_because"] == "shrinking"
        assert "shrinking (5.0x at step 50, 3.7x at step 100)" in \
            verdict.evidence["learning_verdict_reason"]
        assert decide(run) == 200  # unsettled: a contender climbs on


def test_a_collapse_called_across_rungs_names_its_trend() -> None:
    never = holdout((80, 20), (100, 0))
    run = staged_run(decreasing(50), FIRST_RUNG, [(25, never), (50, never)])
    verdict = classify(run)
    assert verdict.outcome is Outcome.MINORITY_COLLAPSE
    assert "persisting across rungs: class 1 never predicted" in verdict.summary


def test_the_trend_of_the_rarest_class_in_words() -> None:
    rising = staged_run(decreasing(100), CONTENDER, [
        (25, holdout((80, 20), (100, 0))), (50, holdout((80, 20), (95, 5))),
        (100, holdout((80, 20), (88, 12)))])
    assert rung_trend_words(rising, ("a", "b")) == \
        "class b predicted 0 -> 5 -> 12 times (20 held out), still rising"
    one = staged_run(decreasing(25), FIRST_RUNG, [(25, holdout((80, 20), (100, 0)))])
    assert rung_trend_words(one) == "class 1 predicted 0 times at step 25 (20 held out)"


def test_a_probe_without_rungs_is_judged_on_its_one_evaluation() -> None:
    run = ProbeRun(make_probe(WEIGHTED, 50), Termination.COMPLETED, steps=records(decreasing()),
                   holdout=OVER_5X)
    assert classify(run).outcome is Outcome.OVERCORRECTED


# --------------------------------------------------------------- between stages


def _probe(pid: str) -> Probe:
    return dataclasses.replace(make_probe(), id=pid)


def _stub(pid: str):
    from stabcheck.results import ProbeResult, Verdict
    return ProbeResult(ProbeRun(_probe(pid), Termination.NOT_RUN),
                       Verdict(Outcome.STABLE, {}, ""))


def test_contenders_climb_as_far_as_the_budget_affords_the_leader_first() -> None:
    lad = ladder(100)
    chosen = [_stub("a"), _stub("b"), _stub("c")]
    # no bound: every contender may climb to the top of the ladder
    assert contender_caps(chosen, lad, StepBudget(None), reserve=200) == {
        "a": 400, "b": 400, "c": 400}
    # 300 steps: each to its planned steps, nothing beyond (the leader's seeds' reserve)
    assert contender_caps(chosen, lad, StepBudget(500), reserve=200) == {
        "a": 100, "b": 100, "c": 100}
    # 600: the leader one rung further, then the next
    assert contender_caps(chosen, lad, StepBudget(700), reserve=200) == {
        "a": 200, "b": 200, "c": 100}
    # 150: only the leader is afforded; the others stay at their first rung
    assert contender_caps(chosen, lad, StepBudget(150), reserve=200) == {"a": 100}


def test_the_default_budget_is_twice_a_plain_fit_and_covers_a_small_grids_most() -> None:
    assert default_budget(18, ladder(100), seeds=3) == 2 * 18 * 100
    # one setting: its second rung, then the finalists' and the leader's seeds' top rungs
    assert default_budget(1, ladder(100), seeds=3) == 50 + (3 + 2) * 400
    assert T.first_rung_fraction == 0.25


def test_seeds_go_to_the_leader_and_to_the_next_finalist_when_the_leader_falls_behind(
) -> None:
    """The leader's seeds first; the next finalist's when the leader's worst seed falls
    behind its one seed (by more than the F1 tolerance) or the leader failed a seed."""
    from stabcheck.judge.stages import seed_candidate
    from tests.judge.test_ranking import _seeded, _stable
    from tests.report.terminal.test_report import make_report, with_holdout

    leader, close = "cw=none,lr=0.01,clip=none,bs=32", "cw=none,lr=0.1,clip=none,bs=32"
    grid = make_report([_stable(0.01, 0.95), _stable(0.1, 0.93), _stable(0.001, 0.60)])
    assert seed_candidate(grid, []).probe.id == leader
    # the leader holds at 0.92 at its worst: within 0.02 of the next one's 0.93, it stands
    held = _seeded(grid, {leader: [(Outcome.STABLE, 0.92), (Outcome.STABLE, 0.94)]})
    assert seed_candidate(held, [leader]) is None
    # its worst seed falls to 0.85, behind the next one's 0.93: that one's seeds too
    behind = _seeded(grid, {leader: [(Outcome.STABLE, 0.85), (Outcome.STABLE, 0.94)]})
    assert seed_candidate(behind, [leader]).probe.id == close
    # the same gap on a held-out split with 2 samples of the rare class is one sample's
    # luck (one sample moves macro-F1 by about 1/(2 x 2) = 0.25): no more seeds
    tiny = make_report([with_holdout(_stable(0.01, 0.95), f1=0.95, true=(98, 2)),
                        with_holdout(_stable(0.1, 0.93), f1=0.93, true=(98, 2)),
                        with_holdout(_stable(0.001, 0.60), f1=0.60, true=(98, 2))])
    lucky = _seeded(tiny, {leader: [(Outcome.STABLE, 0.85), (Outcome.STABLE, 0.94)]})
    assert seed_candidate(lucky, [leader]) is None
    # it collapses under a seed, or has no skill under one: the next finalist's seeds
    for seeds in ([(Outcome.MINORITY_COLLAPSE, 0.30), (Outcome.STABLE, 0.94)],
                  [(Outcome.STABLE, 0.20), (Outcome.STABLE, 0.94)]):
        failed = _seeded(grid, {leader: seeds})
        assert seed_candidate(failed, [leader]).probe.id == close
        both = _seeded(grid, {leader: seeds, close: [(Outcome.STABLE, 0.9)] * 2})
        assert seed_candidate(both, [leader, close]) is None  # the third is behind 0.90
