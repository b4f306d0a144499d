"""The recommendation ranks its finalists by their worst seed and shuns collapsed twins."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stabcheck.judge.gate import parse_fail_on
from stabcheck.judge.ranking import (
    TieBreak,
    collapse_reason,
    finalists,
    ranked,
    reprobe_seeds,
    tie_words,
)
from stabcheck.judge.summary import summarize
from stabcheck.report.html import render_html
from stabcheck.report.json import result_json
from stabcheck.report.markdown import render_markdown
from stabcheck.results import Outcome, ProbeResult, RunReport, SeedProbe
from stabcheck.run.resultio import report_from_json
from tests.conftest import validate_result
from tests.report.terminal.test_report import (
    make_report,
    make_result,
    recommendation_json,
    render,
    with_holdout,
)

LUCKY = "cw=none,lr=0.1,clip=global_norm=1,bs=32"
STEADY = "cw=none,lr=0.001,clip=none,bs=32"


def _stable(lr: float, f1: float, clip: str = "none", cw: str = "none",
            recall: float = 0.5) -> ProbeResult:
    return with_holdout(make_result(Outcome.STABLE, cw=cw, lr=lr, clip=clip), f1=f1,
                        recall=(0.9, recall))


def _collapsed(lr: float, clip: str = "none", cw: str = "none") -> ProbeResult:
    return with_holdout(make_result(Outcome.MINORITY_COLLAPSE, cw=cw, lr=lr, clip=clip),
                        f1=0.47, recall=(1.0, 0.0), pred=(100, 0), true=(90, 10))


def _seeded(report: RunReport, scores: dict[str, list[tuple[Outcome, float]]]) -> RunReport:
    """``report`` with re-probes: per probe id, (outcome, macro-F1) under seeds 1, 2, ..."""
    by_id = {r.probe.id: r for r in report.results}
    extra = []
    for pid, seeds in scores.items():
        base = by_id[pid]
        for seed, (outcome, f1) in enumerate(seeds, start=1):
            again = with_holdout(dataclasses.replace(
                base, verdict=dataclasses.replace(base.verdict, outcome=outcome)), f1=f1)
            extra.append(SeedProbe(seed, again))
    return dataclasses.replace(report, seeds=len(next(iter(scores.values()))) + 1,
                               seed_probes=tuple(extra), config={**report.config, "seed": 0})


def _lucky_grid() -> RunReport:
    """lr 0.1 with a clip scored best under seed 0; lr 1e-3 a little less; lr 0.01 between."""
    return make_report([
        _stable(0.001, 0.60),
        _stable(0.001, 0.59, clip="global_norm=1"),
        _stable(0.01, 0.62),
        _stable(0.01, 0.61, clip="global_norm=1"),
        _stable(0.1, 0.55),
        _stable(0.1, 0.80, clip="global_norm=1"),
    ])


def test_one_seed_picks_the_lucky_setting_the_worst_of_three_does_not() -> None:
    one = _lucky_grid()
    assert recommendation_json(one)["probe_id"] == LUCKY
    top = [r.probe.id for r in finalists(one)]
    assert top[0] == LUCKY and len(top) == 3
    three = _seeded(one, {pid: [(Outcome.STABLE, f1), (Outcome.STABLE, f1 - 0.01)]
                          for pid, f1 in ((top[1], 0.60), (top[2], 0.61))}
                    | {LUCKY: [(Outcome.STABLE, 0.19), (Outcome.STABLE, 0.70)]})
    rec = recommendation_json(three)
    assert rec["probe_id"] != LUCKY
    assert rec["seeds"] == 3 and rec["seeds_requested"] == 3
    assert [s["seed"] for s in rec["seed_scores"]] == [0, 1, 2]
    assert rec["macro_f1"] == min(s["macro_f1"] for s in rec["seed_scores"])
    assert any(r.startswith("backed by 3 seeds (0, 1, 2)") for r in rec["reasons"])
    rejected = {r["probe_id"]: r["reason"] for r in rec["rejected"]}
    # its worst seed scores below always predicting the majority class: never recommended
    assert rejected[LUCKY] == ("never recommended: seed 1 has no skill: macro-F1 0.19, what "
                               "always predicting the majority class scores (0.47)")
    assert [f["probe_id"] for f in rec["finalists"]][-1] == LUCKY
    # re-probes are no grid probes: the stable tally is the grid's
    assert rec["stable_probes"] == 6


def test_a_finalist_that_fails_under_a_seed_ranks_after_every_steady_one() -> None:
    one = _lucky_grid()
    top = [r.probe.id for r in finalists(one)]
    three = _seeded(one, {top[0]: [(Outcome.DIVERGED, 0.0), (Outcome.STABLE, 0.80)],
                          top[1]: [(Outcome.STABLE, 0.50), (Outcome.STABLE, 0.50)],
                          top[2]: [(Outcome.MINORITY_COLLAPSE, 0.45), (Outcome.STABLE, 0.6)]})
    order = [c.result.probe.id for c in ranked(three)]
    assert order == [top[1], top[2], top[0]] or order == [top[1], top[0], top[2]]
    rec = recommendation_json(three)
    assert rec["probe_id"] == top[1]
    rejected = {r["probe_id"]: r["reason"] for r in rec["rejected"]}
    assert rejected[top[0]] == "stable under seed 0 but diverged under seed 1: never recommended"


def test_never_a_setting_whose_clip_twin_collapsed() -> None:
    # The case that asked for seeds: lr 0.1 with a clip scores best, its unclipped twin
    # predicts one class (lr 0.01 scores better than lr 1e-3, but lr 0.1 next to it
    # collapsed as well)
    report = make_report([
        _stable(0.001, 0.60),
        _stable(0.01, 0.65),
        _stable(0.1, 0.80, clip="global_norm=1"),
        _collapsed(0.1),
    ])
    rec = recommendation_json(report)
    assert rec["probe_id"] == STEADY
    rejected = {r["probe_id"]: r["reason"] for r in rec["rejected"]}
    assert rejected[LUCKY].startswith(
        "its twin cw=none,lr=0.1,clip=none,bs=32 collapsed (it predicted class 0 for all "
        "100 held-out samples)")
    assert not any("accepted although" in r for r in rec["reasons"])


def test_a_collapsed_twin_is_accepted_only_with_a_reason_when_every_setting_has_one() -> None:
    report = make_report([_stable(0.01, 0.7), _collapsed(0.1), _collapsed(0.001)])
    rec = recommendation_json(report)
    assert rec["probe_id"] == "cw=none,lr=0.01,clip=none,bs=32"
    assert any(r.startswith("accepted although its twin cw=none,lr=0.1,clip=none,bs=32 "
                            "collapsed") for r in rec["reasons"])


def test_a_numerical_failure_next_to_it_is_no_collapse() -> None:
    diverged = with_holdout(make_result(Outcome.DIVERGED, lr=0.1), f1=0.1, pred=(100, 0))
    assert collapse_reason(make_report([diverged]), diverged) is None
    assert collapse_reason(make_report([]), _collapsed(0.1)) is not None


def test_reprobe_seeds_follow_the_run_seed() -> None:
    assert reprobe_seeds(7, 3) == [8, 9]
    assert reprobe_seeds(0, 1) == []


def test_seeds_reach_every_renderer_and_the_json(tmp_path: Path) -> None:
    one = _lucky_grid()
    top = [r.probe.id for r in finalists(one)]
    three = _seeded(one, {pid: [(Outcome.STABLE, 0.6), (Outcome.STABLE, 0.58)] for pid in top})
    data = validate_result(three, tmp_path)
    assert len(data["seed_probes"]) == 6 and data["seeds"] == 3
    assert {p["seed"] for p in data["seed_probes"]} == {1, 2}
    assert data["recommended_configuration"]["seeds"] == 3
    back = report_from_json(json.loads(json.dumps(result_json(three, summarize(three)))))
    assert recommendation_json(back) == recommendation_json(three)
    policy = parse_fail_on(["numerical"])
    # wide enough that the panel's border does not cut the reason
    for text in (render(three, width=200), render_markdown(three, summarize(three), policy),
                 render_html(three, summarize(three), policy)):
        assert "backed by 3 seeds (0, 1, 2)" in " ".join(text.split())
    single = render(one)
    assert "backed by 1 seed (0; --seeds 1: not re-probed)" in " ".join(single.split())


# ------------------------------------------------------------------ a real run


@pytest.mark.slow
def test_a_lucky_leader_is_ranked_by_its_worst_seed_beside_the_finalist_it_fell_behind(
    probe_run, tmp_path: Path
) -> None:
    """The built-in MLP on long-tailed digits (the rarest digit keeps 5%), 60 steps: under
    seed 0, no weighting at lr 0.03 leads (macro-F1 0.89); under seeds 1 and 2 its worst
    is 0.77, behind the next finalist's one seed (balanced at lr 0.01: 0.86), so that one
    is re-probed too (and any other whose one seed is ahead of the best worst seed so far),
    and the recommendation is the best worst seed among them (the tolerance is 0.005 here,
    so that the worst seeds alone decide)."""
    grid = {"model": "builtin:mlp", "data": "builtin:digits", "imbalance": 0.05,
            "lr": ["3e-3", "1e-2", "3e-2"], "class_weight": ["none", "balanced"],
            "steps": 60, "thresholds": {"recommend_f1_tolerance": 0.005}}
    one, data_one, _ = probe_run(**grid, seeds=1, journal=str(tmp_path / "one.jsonl"))
    three, data_three, journal = probe_run(**grid, seeds=3,
                                           journal=str(tmp_path / "three.jsonl"))
    # the grid is the same run: only the re-probes differ
    assert [r.verdict.outcome for r in one.results] == [r.verdict.outcome
                                                         for r in three.results]
    assert data_one["seed_probes"] == [] and data_one["recommended_configuration"]["seeds"] == 1
    lucky = data_one["recommended_configuration"]["probe_id"]
    rec = data_three["recommended_configuration"]
    assert rec["seeds"] == 3
    finalists = {f["probe_id"]: f for f in rec["finalists"]}
    # the leader, then each finalist whose one seed was ahead of the best worst seed
    assert lucky in finalists and len(finalists) >= 2
    seeds = [(p["seed"], p["id"]) for p in data_three["seed_probes"]]
    assert sorted(seeds) == sorted((s, pid) for s in (1, 2) for pid in finalists)
    lucky_scores = [s["macro_f1"] for s in finalists[lucky]["seed_scores"]]
    assert min(lucky_scores) < lucky_scores[0]  # seed 0 was its best
    assert rec["macro_f1"] == max(f["worst_macro_f1"] for f in finalists.values())
    assert data_three["probes_planned"] == len(data_three["probes"]) == 6
    assert sum(line["type"] == "seed_probe" for line in journal) == 2 * len(finalists)
    # a resumed run takes the re-probes from the journal instead of running them again
    from stabcheck.config.settings import build_settings
    from stabcheck.run.engine import run_probe_grid

    path = tmp_path / "three.jsonl"
    before = len(path.read_text().splitlines())
    again = run_probe_grid(build_settings(None, {**grid, "seeds": 3, "workers": 1,
                                                 "journal": str(path)}), resume=path)
    assert [(p.seed, p.probe_id) for p in again.seed_probes] == [
        (p.seed, p.probe_id) for p in three.seed_probes]
    lines = [json.loads(x) for x in path.read_text().splitlines()[before:]]
    assert [x["type"] for x in lines] == ["resumed"]
    assert recommendation_json(again)["probe_id"] == rec["probe_id"]


def _bn_not_judged(result: ProbeResult) -> ProbeResult:
    """``result`` as classify leaves a BatchNormalization model evaluated too early."""
    evidence = {**result.verdict.evidence, "learning_verdict": "not_judged",
                "not_judged_because": "bn_warmup"}
    return dataclasses.replace(result, verdict=dataclasses.replace(result.verdict,
                                                                   evidence=evidence))


def test_held_out_scores_of_unwarmed_batchnorm_statistics_rank_nothing() -> None:
    """Before its moving statistics warm up, a BatchNormalization model's held-out
    predictions come from its initial statistics: a macro-F1 of 0.40 against 0.01 there
    says nothing of the training, so the grid's order decides and the reason says why."""
    report = make_report([_bn_not_judged(_stable(0.001, 0.01)),
                          _bn_not_judged(_stable(0.1, 0.40))])
    rec = recommendation_json(report)
    assert rec["probe_id"] == "cw=none,lr=0.001,clip=none,bs=32"
    assert any("BatchNormalization" in reason for reason in rec["reasons"])
    judged = make_report([_stable(0.001, 0.55), _stable(0.1, 0.80)])
    assert recommendation_json(judged)["probe_id"] == "cw=none,lr=0.1,clip=none,bs=32"


# ------------------------------------------------------------------ ties


WEIGHTS = {"none": None, "sqrt": {"0": 0.75, "1": 17.9}, "balanced": {"0": 0.5, "1": 285.5},
           "custom": {"0": 1.0, "1": 569.0}, "x100": {"0": 0.5, "1": 28550.0}}


def _ties(results: list[ProbeResult]) -> RunReport:
    return dataclasses.replace(make_report(results), class_weight_table=dict(WEIGHTS))


@pytest.mark.parametrize(("grid", "chosen", "reason", "rejected"), [
    # the fraud example: three finalists tie at 0.61, the strongest recalls best
    ([("x100", 1e-3, "none", 0.61, 0.9), ("balanced", 1e-3, "none", 0.61, 0.8),
      ("sqrt", 1e-3, "none", 0.61, 0.7)],
     "cw=sqrt,lr=0.001,clip=none,bs=32",
     "tied on macro-F1 with 2 others (within 0.02): broken toward the milder weighting (sqrt "
     "1:23.9 over balanced 1:571 and x100 1:57,100)",
     {"cw=x100,lr=0.001,clip=none,bs=32": "macro-F1 0.61, tied: broken toward the milder "
                                          "weighting (sqrt 1:23.9 over x100 1:57,100)"}),
    # 1:569 and 1:571 are the same weighting: the lower learning rate decides
    ([("balanced", 1e-2, "none", 0.62, 0.9), ("custom", 1e-3, "none", 0.61, 0.6)],
     "cw=custom,lr=0.001,clip=none,bs=32",
     "tied on macro-F1 with another setting (within 0.02): broken toward the lower lr (0.001 "
     "over 0.01)",
     {"cw=balanced,lr=0.01,clip=none,bs=32": "macro-F1 0.62, tied: broken toward the lower lr "
                                             "(0.001 over 0.01)"}),
    # the same weighting and learning rate: the clip decides
    ([("balanced", 1e-2, "none", 0.62, 0.9), ("balanced", 1e-2, "global_norm=1", 0.61, 0.6)],
     "cw=balanced,lr=0.01,clip=global_norm=1,bs=32",
     "tied on macro-F1 with another setting (within 0.02): broken toward clipping "
     "(global_norm=1 over none)",
     {}),
    # no tie: x100 scores better by more than the tolerance
    ([("x100", 1e-3, "none", 0.70, 0.9), ("sqrt", 1e-3, "none", 0.61, 0.7)],
     "cw=x100,lr=0.001,clip=none,bs=32", None, {}),
], ids=["milder-weighting", "equal-weighting-lower-lr", "clip", "no-tie"])
def test_a_tie_is_broken_toward_the_milder_setting_and_said(grid, chosen, reason, rejected):
    results = [_stable(lr, f1, clip=clip, cw=cw, recall=recall)
               for cw, lr, clip, f1, recall in grid]
    rec = recommendation_json(_ties(results))
    assert rec["probe_id"] == chosen
    ties = [r for r in rec["reasons"] if r.startswith("tied")]
    assert ties == ([reason] if reason else [])
    found = {r["probe_id"]: r["reason"] for r in rec["rejected"]}
    for pid, why in rejected.items():
        assert found[pid] == why


def test_risk_next_to_a_setting_comes_before_the_tie_break() -> None:
    """none at lr 0.01 ties with balanced, but lr 0.1 next to it diverged: balanced, whose
    neighbour trained, is recommended, and no tie is claimed (the risk decided)."""
    report = _ties([
        _stable(0.01, 0.61, cw="none"),
        make_result(Outcome.DIVERGED, cw="none", lr=0.1, evidence={"step": 3}),
        _stable(0.01, 0.61, cw="balanced"),
        _stable(0.1, 0.40, cw="balanced"),
    ])
    rec = recommendation_json(report)
    assert rec["probe_id"] == "cw=balanced,lr=0.01,clip=none,bs=32"
    assert not any(r.startswith("tied") for r in rec["reasons"])


def test_finalists_tied_on_their_worst_seed_go_to_the_milder_weighting() -> None:
    one = _ties([_stable(1e-3, 0.70, cw="x100"), _stable(1e-3, 0.69, cw="balanced"),
                 _stable(1e-3, 0.65, cw="sqrt")])
    top = [r.probe.id for r in finalists(one)]
    assert top[0] == "cw=balanced,lr=0.001,clip=none,bs=32"  # tied with x100: the milder
    three = _seeded(one, {pid: [(Outcome.STABLE, 0.61), (Outcome.STABLE, 0.62)]
                          for pid in top})
    rec = recommendation_json(three)
    assert rec["probe_id"] == "cw=sqrt,lr=0.001,clip=none,bs=32"
    assert any(r.startswith("tied on worst-seed macro-F1 with 2 others (within 0.02): broken "
                            "toward the milder weighting (sqrt 1:23.9 over")
               for r in rec["reasons"])


@pytest.mark.parametrize(("breaks", "words"), [
    ([TieBreak(1, "0.001", "0.01")], "the lower lr (0.001 over 0.01)"),
    ([TieBreak(2, "global_norm=1", "none"), TieBreak(0, "none", "x100 1:100"),
      TieBreak(0, "none", "balanced 1:2")],
     "the milder weighting (none over balanced 1:2 and x100 1:100) and clipping "
     "(global_norm=1 over none)"),
])
def test_tie_words(breaks: list[TieBreak], words: str) -> None:
    assert tie_words(breaks) == words
