"""The grid in stages, for real: tiny real trainings climbing their rungs.

A NaN ends its probe in the first rung while healthy settings climb on; a budget that
ends before a learning verdict leaves it not judged, with what the rungs showed; the
leading contender's other seeds run as rungs on the run's workers.
"""

from __future__ import annotations

from tests.conftest import outcomes

# 4 settings: more than the 3 finalists, so every setting climbs the first rung (20 of
# 40 steps) and the contenders climb on. SGD at lr 1000 turns NaN at step 4.
GRID = dict(model="builtin:mlp", data="builtin:breast_cancer", optimizer="sgd",
            class_weight=["none", "x100"], lr=["0.01", "1000"], steps=40)


def test_a_nan_ends_its_probe_in_the_first_rung_while_healthy_settings_climb_on(probe_run):
    report, data, journal = probe_run(**GRID)
    got = outcomes(report)
    by_id = {r.probe.id: r for r in report.results}
    nan = by_id["cw=none,lr=1000,clip=none,bs=32"]
    assert got[nan.probe.id] == "non_finite"
    assert nan.run.steps_completed == nan.verdict.evidence["step"] <= 5
    assert nan.verdict.evidence["schedule"] == {"stage": "first_rung", "contender": False,
                                                "steps": nan.run.steps_completed, "cap": None}
    healthy = by_id["cw=none,lr=0.01,clip=none,bs=32"]
    assert got[healthy.probe.id] == "stable"
    assert healthy.verdict.evidence["schedule"]["contender"] is True
    assert healthy.run.steps_completed == 40  # its planned steps, evaluated at each rung
    assert [r.step for r in healthy.run.rungs] == [20, 40]
    # the JSON says where each verdict was reached and how the steps were spent
    probes = {p["id"]: p for p in data["probes"]}
    assert probes[nan.probe.id]["verdict_at_step"] == nan.run.steps_completed
    assert probes[healthy.probe.id]["verdict_at_step"] == 40
    assert [r["step"] for r in probes[healthy.probe.id]["rungs"]] == [20, 40]
    stages = [s["stage"] for s in data["schedule"]["stages"]]
    assert stages == ["first_rung", "contender"]
    assert data["schedule"]["steps_run"] < data["schedule"]["fit_loop_steps"]
    assert data["schedule"]["steps_run"] == sum(
        r["steps_completed"] for r in journal if r.get("type") in ("probe", "seed_probe"))


def test_a_budget_that_ends_before_a_learning_verdict_says_how_far_it_got(probe_run):
    """100 steps: the first rung of the 4 settings (the NaN ones stop at 4); a setting that
    climbed to its 40 planned steps for a learning trend is judged there, the contenders
    the budget cannot afford stay short of them: not judged, with what their held-out
    predictions did, and never recommended."""
    report, data, _ = probe_run(**GRID, budget=100)
    cut = [r for r in report.results
           if r.verdict.evidence["schedule"].get("stopped_by") == "budget"]
    assert cut and all(r.verdict.outcome.value == "stable" for r in cut)
    for result in cut:
        evidence = result.verdict.evidence
        assert result.run.steps_completed < 40
        assert evidence["learning_verdict"] == "not_judged"
        assert evidence["not_judged_because"] == "budget"
        assert evidence["schedule"]["stopped_by"] == "budget"
        assert (f"stable at {result.run.steps_completed} steps; learning not judged: the "
                "budget ended before it could train to its 40 planned steps: class ") in \
            result.verdict.summary
        assert "predicted" in evidence["learning_verdict_reason"]  # what the rungs showed
    assert data["schedule"]["budget"] == {"steps": 100, "seconds": None, "default": False}
    assert data["schedule"]["steps_run"] <= 100
    # a setting the budget left short is never recommended
    rec = data["recommended_configuration"]
    assert rec is None or rec["probe_id"] not in {r.probe.id for r in cut}


def test_the_leaders_other_seeds_climb_the_same_rungs(probe_run):
    report, data, journal = probe_run(model="builtin:mlp", data="builtin:breast_cancer",
                                      class_weight=["none"], lr=["0.01"], steps=40, seeds=3)
    (result,) = report.results
    seeds = {p.seed: p.result for p in report.seed_probes}
    assert sorted(seeds) == [1, 2]
    for seed, again in seeds.items():
        assert again.probe.id == result.probe.id
        assert [r.step for r in again.run.rungs] == [r.step for r in result.run.rungs], seed
        assert again.run.steps_completed == result.run.steps_completed
    jobs = [(r["type"], r["job"]["stage"], r["job"]["seed"]) for r in journal
            if r.get("type") in ("probe", "seed_probe")]
    assert jobs == [("probe", "contender", None), ("seed_probe", "seed", 1),
                    ("seed_probe", "seed", 2)]
    assert data["recommended_configuration"]["seeds"] == 3
