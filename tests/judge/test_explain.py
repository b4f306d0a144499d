"""judge.explain, judge.gridview and the overcorrection advice: a cause is named only where
the grid shows it; a weighting equal to another (within ``weight_ratio_tolerance`` on the
largest-to-smallest weight ratio) is not "milder"."""

from __future__ import annotations

import dataclasses

import pytest

from stabcheck.judge.advice import overcorrection_fix
from stabcheck.judge.explain import numerical_causes
from stabcheck.judge.gridview import ProbeGrid, measurably_milder, mildness_ranks
from stabcheck.judge.summary import summarize
from stabcheck.results import Outcome, RunReport
from tests.report.terminal.test_report import make_report, make_result, said

# 1:571 (balanced on the fraud example's sample), a custom table of 1:569, its square root
WEIGHTS = {
    "none": None,
    "balanced": {"0": 0.5, "1": 285.5},
    "custom": {"0": 1.0, "1": 569.0},
    "sqrt": {"0": 0.7071, "1": 16.90},
    "x100": {"0": 0.5, "1": 28550.0},
}


def with_weights(report: RunReport, **ratios: float) -> RunReport:
    """``report`` with the class-weight table above (``ratios`` overrides a strategy's
    weight of class 1, class 0 weighing 1)."""
    table = {**WEIGHTS, **{s: {"0": 1.0, "1": r} for s, r in ratios.items()}}
    return dataclasses.replace(report, class_weight_table=table)


@pytest.mark.parametrize(("ratio", "than", "milder"), [
    (569.0, 571.0, False),   # the pair: the same weighting
    (571.0, 569.0, False),
    (545.0, 571.0, False),   # 4.8% apart: within 5%
    (540.0, 571.0, True),    # 5.7% apart
    (23.9, 571.0, True),     # sqrt of balanced
    (1.0, 1.04, False),
    (1.0, 2.0, True),
])
def test_measurably_milder(ratio: float, than: float, milder: bool) -> None:
    assert measurably_milder(ratio, than, 0.05) is milder


def test_mildness_ranks_group_equal_weightings() -> None:
    report = with_weights(make_report([]))
    ranks = mildness_ranks(report, ["x100", "custom", "balanced", "none", "sqrt", "focal"])
    # focal weighs through its alpha as balanced does: the class counts' ratio (1000:500)
    assert ranks == {"none": 0, "focal": 1, "sqrt": 2, "custom": 3, "balanced": 3, "x100": 4}


@pytest.mark.parametrize("custom_ratio", [569.0, 573.0])
def test_an_equal_weighting_is_not_milder_and_the_grid_names_the_learning_rate(
    custom_ratio: float,
) -> None:
    """custom failed at lr 0.01 where balanced, of the same ratio, trained; custom trained at
    lr 0.001: the lower learning rate is what the grid shows, not milder weights."""
    results = [
        make_result(Outcome.DIVERGED, cw="custom", lr=0.01, evidence={"step": 5}),
        make_result(Outcome.STABLE, cw="balanced", lr=0.01),
        make_result(Outcome.STABLE, cw="custom", lr=0.001),
        make_result(Outcome.STABLE, cw="balanced", lr=0.001),
    ]
    report = with_weights(make_report(results), custom=custom_ratio)
    assert ProbeGrid(report).milder("custom") == []
    (cause,) = numerical_causes(report)
    assert cause.kind == "unknown"
    text = " ".join(said(report))
    assert "milder" not in text
    assert "Why: the class weights" not in text
    assert "Fix: a lower learning rate: custom was stable at lr 0.001." in text
    (summary,) = summarize(report).causes
    assert "milder" not in summary.headline + " ".join(summary.details)


def test_a_measurably_milder_weighting_that_trained_is_named() -> None:
    results = [
        make_result(Outcome.DIVERGED, cw="custom", lr=0.01, evidence={"step": 5}),
        make_result(Outcome.STABLE, cw="sqrt", lr=0.01),
        make_result(Outcome.STABLE, cw="balanced", lr=0.01),  # equal: not named
    ]
    report = with_weights(make_report(results))
    (cause,) = numerical_causes(report)
    assert cause.kind == "weights"
    assert cause.details[0].startswith("Why: the class weights: class_weight=sqrt trained")
    assert cause.details[-1] == ("Fix: milder weights: sqrt was stable at the same learning "
                                 "rate, clip and batch size.")
    (summary,) = summarize(report).causes
    assert summary.headline == "class_weight=custom diverged at lr 0.01, where milder weights " \
                               "trained"


def test_an_unweighted_twin_that_failed_too_names_the_learning_rate() -> None:
    results = [
        make_result(Outcome.DIVERGED, cw="custom", lr=0.1, evidence={"step": 5}),
        make_result(Outcome.DIVERGED, cw="none", lr=0.1, evidence={"step": 4}),
        make_result(Outcome.STABLE, cw="balanced", lr=0.1),  # equal to custom: no evidence
        make_result(Outcome.STABLE, cw="custom", lr=0.01),
        make_result(Outcome.STABLE, cw="none", lr=0.01),
    ]
    report = with_weights(make_report(results))
    (cause,) = numerical_causes(report)
    assert cause.kind == "lr"
    assert summarize(report).causes[0].headline.startswith("lr 0.1 diverged")


# --------------------------------------------------------------------------- overcorrection


@pytest.mark.parametrize(("grid", "expected"), [
    # a measurably milder weighting was stable at the same settings
    ([("x100", Outcome.OVERCORRECTED), ("balanced", Outcome.STABLE)],
     "milder weights: balanced was stable, not overcorrected, at the same settings"),
    # an equal weighting is no evidence: balanced overcorrected where custom (1:569) did not
    ([("balanced", Outcome.OVERCORRECTED), ("custom", Outcome.STABLE)],
     "probe a milder weighting: sqrt or effective (--class-weight sqrt,effective)"),
    # sqrt was probed and collapsed instead: only effective is left to suggest
    ([("x100", Outcome.OVERCORRECTED), ("sqrt", Outcome.MINORITY_COLLAPSE)],
     "probe a milder weighting: effective (--class-weight effective) (the milder sqrt did "
     "not fare better at the same settings)"),
    # sqrt overcorrected too: sqrt and effective are not surely milder than it
    ([("x100", Outcome.OVERCORRECTED), ("sqrt", Outcome.OVERCORRECTED)],
     "probe weights milder than sqrt's (a largest-to-smallest ratio below 1:23.9)"),
], ids=["milder-stable", "equal-is-no-evidence", "milder-failed-too", "nothing-surely-milder"])
def test_overcorrection_fix_names_only_what_the_grid_shows(grid, expected) -> None:
    results = [make_result(outcome, cw=cw, lr=0.01) for cw, outcome in grid]
    report = with_weights(make_report(results))
    over = [r for r in results if r.verdict.outcome is Outcome.OVERCORRECTED]
    assert overcorrection_fix(report, over) == expected
    causes = [c for c in summarize(report).causes if "overcorrected" in c.headline]
    assert causes[0].details[-1] == f"Fix: {expected}."
    assert any(line.endswith(f"{expected}.") for line in said(report))
