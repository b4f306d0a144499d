"""judge.summary: the verdict line and the failures grouped by cause, on hand-made runs."""

from __future__ import annotations

import dataclasses

import pytest

from stabcheck.judge.summary import failure_causes, summarize
from stabcheck.results import Category, Outcome
from tests.report.terminal.test_report import every_outcome, make_report, make_result


@pytest.mark.parametrize(("results", "extra", "expected"), [
    ([], {"interrupted": True, "probes_planned": 4}, "no probe ran (interrupted: 0 of 4 ran)"),
    ([make_result(Outcome.DIVERGED, lr=0.1), make_result(Outcome.NON_FINITE, lr=0.01)], {},
     "2 probes: 0 stable, 1 NaN/Inf, 1 diverged - no setting was stable"),
    ([make_result(Outcome.STABLE, cw="none", lr=0.01),
      make_result(Outcome.DIVERGED, cw="none", lr=0.1)], {"interrupted": True,
                                                          "probes_planned": 6},
     "2 probes: 1 stable, 1 diverged (interrupted: 2 of 6 ran) - recommended: no class "
     "weights, lr 0.01, no clip, batch 32"),
], ids=["nothing-ran", "nothing-stable", "interrupted"])
def test_verdict_line(results, extra, expected):
    assert summarize(dataclasses.replace(make_report(results), **extra)).verdict == expected


def test_every_failing_probe_is_in_exactly_one_cause():
    report = make_report(every_outcome())
    causes = failure_causes(report)
    ids = [pid for cause in causes for pid in cause.probe_ids]
    failing = [r.probe.id for r in report.results if r.verdict.category is not Category.OK]
    assert sorted(ids) == sorted(failing)
    assert [c.category for c in causes] == sorted(
        (c.category for c in causes), key=[Category.NUMERICAL, Category.MEMORY,
                                           Category.CRASH, Category.LEARNING,
                                           Category.ERROR].index)


def test_the_learning_rate_cause_names_every_weighting_once():
    results = [make_result(Outcome.DIVERGED, cw=cw, lr=0.1, evidence={"step": 2})
               for cw in ("none", "balanced", "x100")]
    results += [make_result(Outcome.STABLE, cw=cw, lr=0.01) for cw in ("none", "balanced",
                                                                       "x100")]
    (cause,) = summarize(make_report(results)).causes
    assert cause.title == "lr 0.1 diverged for every weighting (3 probes)"
    assert cause.details[0] == ("Where: cw=none,lr=0.1,clip=none,bs=32: the loss diverged "
                                "from step 2.")
    assert cause.details[-1] == ("Fix: a lower learning rate: none, balanced and x100 were "
                                 "stable at lr 0.01.")


def test_all_stable_has_no_cause_and_one_note():
    summary = summarize(make_report([make_result(Outcome.STABLE, lr=lr) for lr in (0.1, 0.01)]))
    assert summary.causes == ()
    assert summary.notes == ("every setting in this grid trained without trouble",)
