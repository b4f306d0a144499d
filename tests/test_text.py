"""Plain formatting shared by the report views."""

from __future__ import annotations

import math

import pytest

from stabcheck.text import executor_text, fmt_weight


@pytest.mark.parametrize(("environment", "expected"), [
    ({"executor": "ray", "ray": {"address": "local", "nodes": 3, "cpus": 2.0, "gpus": 0}},
     "on a Ray cluster (local; 3 nodes, 2 CPUs)"),
    ({"executor": "ray", "ray": {"address": "ray://head:10001", "nodes": 1, "cpus": 16.0,
                                 "gpus": 8.0}},
     "on a Ray cluster (ray://head:10001; 1 node, 16 CPUs, 8 GPUs)"),
    ({"executor": "local"}, None),
    ({}, None),  # a result from before executors
])
def test_where_the_probes_ran(environment: dict, expected: str | None) -> None:
    assert executor_text(environment) == expected


@pytest.mark.parametrize(("weight", "expected"), [
    (4.3966e-06, "4.397e-06"),  # rounded to 6 decimals it read 4e-06
    (100 / 180, "0.5556"),
    (0.50088, "0.5009"),
    (5.0, "5"),
    (285.52, "285.5"),
    (1000.0, "1,000"),
    (28550.4, "28,550"),
    (None, "—"),
    (math.inf, "inf"),
])
def test_a_weight_keeps_its_significant_digits(weight: float | None, expected: str) -> None:
    assert fmt_weight(weight) == expected


def test_a_stable_setting_whose_first_rung_showed_a_problem_reads_ok_question_mark():
    """Not a contender, its learning not judged: "ok?" where its first rung showed a
    problem (withheld), plain "ok" where the model was only still learning a class."""
    import dataclasses

    from stabcheck.results import Outcome, Verdict
    from stabcheck.text import UNJUDGED_CELL, cell
    from tests.report.terminal.test_report import make_result

    base = make_result(Outcome.STABLE)

    def with_evidence(**evidence):
        return dataclasses.replace(base, verdict=Verdict(Outcome.STABLE, evidence, "x"))

    seen = with_evidence(withheld_verdict="overcorrected", not_judged_because="not_contender",
                         schedule={"first_rung_not_judged": "one_rung"})
    early = with_evidence(withheld_verdict="minority_collapse",
                          not_judged_because="not_contender",
                          schedule={"first_rung_not_judged": "still_learning"})
    assert cell(seen) == UNJUDGED_CELL
    assert cell(early)[0] == cell(base)[0] == "ok"
