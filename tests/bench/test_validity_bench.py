"""How ``bench/validity.py`` counts a probe against its long runs (pure: no training).

The bench's rules for the targets: a not-judged probe earns no agreement with a healthy
long run and disagrees with a learning or numerical one; learning settings are those with
a learning verdict or fate; a numerical long run needs a numerical probe.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import validity  # noqa: E402
import validity_problems as vp  # noqa: E402

PROBLEM = vp.Problem("p", "test", "kio_fraud", dict, 32, ("none",), (1e-3,))
KEY = validity.setting_key("none", 1e-3, "none")


def probe(outcome: str, category: str, **evidence) -> dict:
    return {"outcome": outcome, "category": category, "summary": outcome,
            "steps_completed": 100, "steps_planned": 100, "evidence": evidence,
            "settings": {"class_weight": "none", "learning_rate": 1e-3, "clip": "none"}}


def long_runs(*fates: str) -> dict:
    return {"result": {"rows": [{"key": KEY, "seed": i, "fate": f, "why": f}
                                for i, f in enumerate(fates)]}}


NOT_JUDGED = {"learning_verdict": "not_judged", "not_judged_because": "still_learning",
              "learning_verdict_reason": "loss still falling"}


@pytest.mark.parametrize(
    ("p", "fates", "counted", "agree", "not_judged", "learning", "missed", "alarm"),
    [
        (probe("stable", "ok"), ("healthy", "healthy"), True, True, False, False, False, False),
        (probe("stable", "ok", **NOT_JUDGED), ("healthy", "healthy"),
         False, None, True, False, False, False),
        # a withheld learning verdict makes no claim: coverage, not a disagreement
        (probe("stable", "ok", **NOT_JUDGED), ("learning", "learning"),
         False, None, True, False, False, False),
        (probe("stable", "ok", **NOT_JUDGED), ("numerical", "numerical"),
         True, False, True, False, True, False),
        (probe("diverged", "numerical"), ("healthy", "healthy"),
         True, False, False, False, False, True),
        (probe("diverged", "numerical"), ("learning", "learning"),
         True, False, False, True, False, False),
        (probe("overcorrected", "learning"), ("healthy", "healthy"),
         True, False, False, True, False, False),
        (probe("stable", "ok"), ("numerical", "numerical"),
         True, False, False, False, True, False),
        (probe("stable", "ok"), ("numerical", "healthy"),
         False, None, False, False, False, False),
        (probe("crashed", "crash"), ("healthy", "healthy"),
         False, None, False, False, False, False),
    ],
)
def test_a_setting_counts_by_the_bench_rules(p, fates, counted, agree, not_judged, learning,
                                             missed, alarm):
    (row,) = validity.compare(PROBLEM, {"result": {"probes": [p]}}, long_runs(*fates))
    assert (row["counted"], row["agree"], row["not_judged"], row["learning_setting"],
            row["numerical_missed"], row["false_numerical_alarm"]) == \
        (counted, agree, not_judged, learning, missed, alarm)


def test_new_probe_fields_are_read_when_present_and_none_when_absent():
    p = probe("stable", "ok")
    assert validity.probe_fields(p)["probe_rungs"] is None
    p.update(rungs=[100, 400], decided_at_step=250, duration_s=3.5)
    fields = validity.probe_fields(p)
    assert (fields["probe_rungs"], fields["probe_decided_at_step"],
            fields["probe_duration_s"]) == ([100, 400], 250, 3.5)


def test_the_targets_are_judged_per_problem_set_and_on_learning_settings():
    held = vp.Problem("h", "test", "kio_fraud", dict, 32, ("none",), (1e-3,), held_out=True)
    rows = (validity.compare(PROBLEM, {"result": {"probes": [probe("stable", "ok")]}},
                             long_runs("healthy", "healthy"))
            + validity.compare(held, {"result": {"probes": [probe("stable", "ok")]}},
                               long_runs("learning", "learning")))
    summary = validity.summarize(rows, [PROBLEM, held])
    t = summary["targets"]
    assert t["agreement_original"]["met"] and not t["agreement_held_out"]["met"]
    assert summary["learning_counted"] == 1 and not t["learning_agreement"]["met"]
    assert t["false_numerical_alarms"]["met"] and t["numerical_caught"]["met"]


def test_long_settings_are_a_subset_of_the_grid_in_grid_order():
    fraud = next(p for p in vp.PROBLEMS if p.name == "kio_fraud")
    assert len(fraud.grid()) == 24 and len(fraud.settings()) == 16
    order = fraud.grid()
    assert fraud.settings() == sorted(fraud.settings(), key=order.index)
    for must in (("none", 0.1, "global_norm=1.0"), ("x100", 0.1, "global_norm=1.0"),
                 ("balanced", 0.1, "none")):
        assert must in fraud.settings()
    bad = vp.Problem("b", "t", "f", dict, 32, ("none",), (1e-3,),
                     long_settings=(("x100", 1e-3, "none"),))
    with pytest.raises(ValueError, match="not in the grid"):
        bad.settings()


def test_epochs_come_from_the_flag_then_quick_then_the_problem():
    text = next(p for p in vp.PROBLEMS if p.name == "kio_text")
    args = validity.parse_args([])
    assert validity.epochs_for(text, args) == 3
    assert validity.epochs_for(PROBLEM, args) == validity.EPOCHS
    assert validity.epochs_for(text, validity.parse_args(["--quick"])) == validity.QUICK_EPOCHS
    assert validity.epochs_for(text, validity.parse_args(["--epochs", "7"])) == 7


@pytest.mark.parametrize(("argv", "name"), [
    ([], "validity.json"), (["--only", "kio_text"], "validity-partial.json"),
    (["--quick"], "validity-partial.json"), (["--only", "x", "--tag", "t"], "validity-t.json"),
])
def test_a_partial_run_never_writes_the_full_runs_file(argv, name):
    assert validity.results_path(validity.parse_args(argv)).name == name


def test_fate_of_a_blow_up_that_settles_is_numerical():
    row = {"initial_loss": 1.0, "losses": [0.5, 5e3, 0.4], "pred_counts": [10, 10],
           "val_counts": [10, 10]}
    assert validity.fate_of(row)[0] == "numerical"


def test_fate_of_a_run_no_better_than_chance_is_learning():
    """The fraud example at balanced lr 0.1: 9 of 56,961 rows called non-fraud."""
    row = {"initial_loss": 0.63, "losses": [50.0, 0.696, 0.696], "pred_counts": [9, 56952],
           "val_counts": [56886, 75], "recall": [0.00016, 1.0]}
    fate, why = validity.fate_of(row)
    assert fate == "learning" and "chance" in why
    row["recall"] = [0.6, 0.9]
    assert validity.fate_of(row)[0] == "healthy"
