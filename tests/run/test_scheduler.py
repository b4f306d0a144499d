"""Several workers at once: the same verdicts as one worker, in plan order, and a crash
still costs only its own probe."""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, outcomes

GRID = dict(model="builtin:mlp", data="builtin:breast_cancer", optimizer="sgd",
            class_weight=["none", "x100"], lr=["0.01", "1.0"], clip=["none", "global_norm=1.0"],
            steps=30)


def test_parallel_workers_give_the_verdicts_of_one_worker(probe_run, tmp_path):
    one, _, _ = probe_run(**GRID, workers=1)
    two, _, _ = probe_run(**GRID, workers=2, journal=str(tmp_path / "two.jsonl"))
    assert [r.probe.id for r in two.results] == [r.probe.id for r in one.results]  # plan order
    assert outcomes(two) == outcomes(one)
    assert "numerical" in {r.verdict.category.value for r in one.results}  # not all alike


@pytest.mark.slow  # a crash alone: tests/executors/test_local.py
def test_a_crash_among_parallel_workers_costs_only_its_probe(probe_run, tmp_path, monkeypatch):
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    monkeypatch.setenv("STABCHECK_TEST_TRIP_AT", "12")
    report, _, journal = probe_run(model=f"{FIXTURES / 'user_models.py'}:sigkill",
                                   data="builtin:breast_cancer", class_weight=["none"],
                                   lr=["0.05", "0.06", "0.07", "0.08"], steps=5, workers=2)
    got = [r.verdict.outcome.value for r in report.results]
    assert got.count("crashed") == 1
    assert {o for o in got if o != "crashed"} <= {"stable", "stalled"}
    assert len(report.results) == 4
    lines = [line for line in journal if line["type"] == "probe"]  # a line per job
    assert {line["id"] for line in lines} == {r.probe.id for r in report.results}
    assert [line["outcome"] for line in lines].count("crashed") == 1
