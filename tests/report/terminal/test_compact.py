"""The compact terminal report: the answer first, one entry per cause, about 60 lines for a
36-probe grid (a snapshot), and the details behind ``verbose``."""

from __future__ import annotations

import dataclasses
import os
import re

from stabcheck.judge.summary import summarize
from stabcheck.results import Outcome, ProbeResult, RunReport
from stabcheck.system.forecast import MemoryPoint, MemoryReport
from tests.conftest import TESTS
from tests.report.terminal.test_report import (
    NAN_AT_37,
    GiB,
    MiB,
    make_report,
    make_result,
    render,
    with_holdout,
)

SNAPSHOT = TESTS / "snapshots" / "terminal_36.txt"
WIDTH = 100
STRATEGIES = ("none", "balanced", "x100")
LRS = (0.001, 0.01, 0.1)
CLIPS = ("none", "global_norm=1.0")


def _grid_probe(cw: str, lr: float, clip: str, index: int) -> ProbeResult:
    """bs 32: lr 0.1 unclipped diverges whatever the weighting; x100 NaNs at lr 0.01 without
    a clip and at lr 0.1 even with one, and overcorrects at lr 0.001; the rest is stable."""
    if lr == 0.1 and clip == "none":
        return make_result(Outcome.DIVERGED, cw=cw, lr=lr, clip=clip,
                           evidence={"step": 3 + index % 3, "peak_loss": 40.0 + index})
    if cw == "x100" and lr >= 0.01:
        return make_result(Outcome.NON_FINITE, cw=cw, lr=lr, clip=clip, evidence=NAN_AT_37)
    if cw == "x100":
        return with_holdout(make_result(Outcome.OVERCORRECTED, cw=cw, lr=lr, clip=clip),
                            f1=0.31, recall=(0.2, 1.0), pred=(18, 82))
    f1 = {"none": 0.62, "balanced": 0.78}[cw] + (0.01 if clip != "none" else 0.0) - lr
    return with_holdout(make_result(Outcome.STABLE, cw=cw, lr=lr, clip=clip), f1=round(f1, 3),
                        recall=(0.95, 0.35 if cw == "none" else 0.8), pred=(88, 12))


def grid_36() -> RunReport:
    """3 class weights x 3 learning rates x 2 clips x 2 batch sizes; batch 4096 is
    OOM-killed once and its 17 siblings are not run; a memory ladder forecasts 2048."""
    results = []
    for cw in STRATEGIES:
        for lr in LRS:
            for clip in CLIPS:
                results.append(_grid_probe(cw, lr, clip, len(results)))
    killed = make_result(
        Outcome.OOM_HOST, cw="none", lr=0.001, bs=4096, losses=(),
        summary="killed by the kernel OOM killer at 2.0 GiB of a 2.0 GiB budget (cgroup-v2), "
                "during the first step",
        evidence={"step": 0, "budget_bytes": 2 * GiB, "enforcement": "cgroup-v2",
                  "oom_kills": 1})
    results.append(killed)
    for cw in STRATEGIES:
        for lr in LRS:
            for clip in CLIPS:
                if (cw, lr, clip) == ("none", 0.001, "none"):
                    continue
                skipped = make_result(
                    Outcome.OOM_HOST, cw=cw, lr=lr, clip=clip, bs=4096, losses=(),
                    summary=f"not run: batch size 4096 already exhausted memory in "
                            f"{killed.probe.id}",
                    evidence={**killed.verdict.evidence, "inferred_from": killed.probe.id,
                              "ran": False})
                results.append(skipped)
    points = (
        MemoryPoint(32, 300 * MiB, True, "stable", "cw=none,lr=0.001,clip=none,bs=32"),
        MemoryPoint(256, 480 * MiB, True, "stable", "ladder:bs=256"),
        MemoryPoint(1024, 1100 * MiB, True, "stable", "ladder:bs=1024"),
        MemoryPoint(4096, 2 * GiB, False, "oom_host", killed.probe.id),
    )
    memory = MemoryReport(2 * GiB, 0.05, "cgroup-v2", points, intercept=275 * MiB,
                          slope=0.8 * MiB, forecast_batch=2048, forecast_peak=1913 * MiB,
                          verified=MemoryPoint(2048, 1890 * MiB, True, "stable", "verify:x"))
    report = make_report(results)
    return dataclasses.replace(report, memory=memory,
                               config={**report.config, "model": "builtin:cnn"})


def test_the_36_probe_report_matches_its_snapshot_and_fits_in_60_lines() -> None:
    """Set STABCHECK_UPDATE_SNAPSHOTS=1 to rewrite the snapshot after a deliberate change."""
    text = render(grid_36(), width=WIDTH)
    if os.environ.get("STABCHECK_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8")
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 60, len(lines)
    assert max(len(line) for line in lines) <= WIDTH


def test_the_report_leads_with_the_answer() -> None:
    report = grid_36()
    text = render(report, width=WIDTH)
    lines = text.splitlines()
    verdict = summarize(report).verdict
    assert verdict == ("36 probes: 10 stable, 3 NaN/Inf, 3 diverged, 18 out of host memory "
                       "(17 not run), 2 overcorrected - recommended: balanced, lr 0.001, "
                       "global_norm=1.0, batch 32")
    flat = " ".join(" ".join(lines[1:4]).split())
    assert flat.startswith(verdict)  # the second line, wrapped at the console's width
    order = [text.index(title) for title in (
        "Verdicts", "Recommended configuration", "Failures by cause", "Memory per batch size")]
    assert order == sorted(order)


def test_failures_are_grouped_by_cause_not_listed_per_probe() -> None:
    report = grid_36()
    causes = summarize(report).causes
    titles = [c.title for c in causes]
    assert titles == [
        "lr 0.1 diverged for every weighting without clipping (3 probes)",
        "class_weight=x100 turned NaN/Inf at lr 0.01, 0.1, where milder weights trained "
        "(3 probes)",
        "batch size 4096 exhausted host memory (18 probes, 17 not run)",
        "class_weight=x100 overcorrected (2 probes)",
    ]
    assert sum(len(c.probe_ids) for c in causes) == 36 - 10
    text = " ".join(render(report, width=WIDTH).split())
    for title in titles:
        assert text.count(title) == 1, title
    # no probe-by-probe table by default: a failing probe's id appears at most in a "Where"
    assert "cw=x100,lr=0.1,clip=global_norm=1.0,bs=32" not in text


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in re.split(r"(?<=[.:;])\s+|\s*•\s*", flat) if len(s.strip()) > 25]


def test_no_sentence_is_repeated() -> None:
    for report in (grid_36(), make_report([make_result(Outcome.STABLE, lr=lr)
                                           for lr in (0.1, 0.01)])):
        sentences = _sentences(render(report, width=WIDTH))
        repeated = {s for s in sentences if sentences.count(s) > 1}
        assert not repeated, repeated


def test_verbose_adds_the_details() -> None:
    report = grid_36()
    compact, verbose = render(report, width=WIDTH), render_verbose(report)
    for detail in ("Classes and the weight", "Numerical failures (6)", "Per-class quality",
                   "Per class-weight strategy", "▁", "environment"):
        assert detail not in compact and detail in verbose, detail
    assert len(verbose.splitlines()) > 2 * len(compact.splitlines())
    assert "--verbose" in compact and "--verbose" not in verbose


def render_verbose(report: RunReport, width: int = WIDTH) -> str:
    from rich.console import Console

    from stabcheck.report.terminal.report import render_report

    console = Console(record=True, width=width, force_terminal=False)
    render_report(report, summarize(report), console, verbose=True)
    return console.export_text()
