"""Every sentence of the report agrees with every other: stable counts, section titles,
memory wording and percentages, in the terminal, Markdown and HTML alike; and the user's
``[thresholds]`` reach the memory ladder."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from stabcheck.config.settings import build_settings
from stabcheck.judge.gate import parse_fail_on
from stabcheck.judge.quality import quality_title
from stabcheck.judge.summary import summarize
from stabcheck.report.html import render_html
from stabcheck.report.markdown import render_markdown
from stabcheck.report.terminal.memory import memory_forecast_lines
from stabcheck.results import Outcome, ProbeResult, RunReport
from stabcheck.system.forecast import MemoryPoint, MemoryReport
from tests.report.terminal.test_report import make_report, make_result, render, with_holdout
from tests.run.test_ladder import SimulatedRunner, template
from tests.sample_report import make_report as sample_report

GiB = 1 << 30
MiB = 1 << 20
POLICY = parse_fail_on(["numerical", "memory", "crash", "error"])


def flat(text: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def _stable_count(text: str) -> int:
    """The stable count of the count line (``N probes: a stable, ...``)."""
    match = re.search(r"probes?: (\d+) stable", text)
    assert match, text[-2000:]
    return int(match.group(1))


def assert_agrees(report: RunReport) -> None:
    """What must hold in every rendering of any report."""
    stable = sum(r.verdict.outcome is Outcome.STABLE for r in report.results)
    for text in (render(report, width=140), render_markdown(report, summarize(report), POLICY),
                 render_html(report, summarize(report), POLICY)):
        text = flat(text)
        if report.results:
            assert _stable_count(text) == stable
        if stable:
            assert "No setting in this grid was stable" not in text
        assert not re.search(r"saves -\d", text)
        assert not re.search(r"-\d+(\.\d+)?% (margin|to spare)", text)
    terminal = flat(render(report, width=140, verbose=True))
    if "Per-class quality of the stable settings" in terminal:
        start = terminal.index("Per-class quality")
        ends = [terminal.find(t, start) for t in ("Memory per batch size", "Warnings",
                                                  "Per class-weight strategy")]
        section = terminal[start:min([e for e in ends if e > 0], default=len(terminal))]
        rows = re.findall(r"cw=\S+", section)
        outcomes = {r.probe.id: r.verdict.outcome for r in report.results}
        assert rows and all(outcomes.get(pid) in (Outcome.STABLE, None) for pid in rows)


def _learning(outcome: Outcome, lr: float, cw: str = "x100") -> ProbeResult:
    return with_holdout(make_result(outcome, cw=cw, lr=lr), f1=0.3, recall=(0.2, 1.0),
                        pred=(18, 82))


def test_the_sample_report_agrees_with_itself() -> None:
    assert_agrees(sample_report())


def test_quality_title_never_calls_failed_probes_stable() -> None:
    only_failed = make_report([_learning(Outcome.OVERCORRECTED, 0.01),
                               _learning(Outcome.MINORITY_COLLAPSE, 0.1),
                               make_result(Outcome.DIVERGED, lr=1.0)])
    assert quality_title(only_failed) == (
        "Per-class quality of the settings that trained (none of them stable)")
    assert "Per-class quality of the settings that trained (none of them stable)" in flat(
        render(only_failed, width=140, verbose=True))
    assert_agrees(only_failed)
    mixed = make_report([with_holdout(make_result(Outcome.STABLE, lr=0.001), f1=0.7),
                         _learning(Outcome.OVERCORRECTED, 0.01)])
    assert quality_title(mixed) == "Per-class quality of the settings that trained (1 of 2 stable)"
    assert_agrees(mixed)
    stable = make_report([with_holdout(make_result(Outcome.STABLE, lr=0.001), f1=0.7)])
    assert quality_title(stable) == "Per-class quality of the stable settings"
    assert_agrees(stable)


def _measurement(bs: int) -> ProbeResult:
    """A ``stabcheck memory`` measurement: stable, a few steps, learning not judged."""
    result = make_result(Outcome.STABLE, bs=bs, evidence={"memory_measurement": True,
                                                          "steps": 3})
    probe = dataclasses.replace(result.probe, id="memory:" + result.probe.id)
    return dataclasses.replace(result, run=dataclasses.replace(result.run, probe=probe))


def test_stable_memory_measurements_are_not_called_unstable() -> None:
    report = make_report([_measurement(bs) for bs in (32, 64, 128, 256, 512, 1024)])
    for text in (render(report, width=140), render_markdown(report, summarize(report), POLICY),
                 render_html(report, summarize(report), POLICY)):
        assert ("No training setting to recommend: the 6 stable probes measured memory only"
                in flat(text))
    assert_agrees(report)
    nothing = make_report([make_result(Outcome.DIVERGED)])
    assert "No setting in this grid was stable" in flat(render(nothing))


def _ladder(enforcement: str, mixed_peak: int) -> MemoryReport:
    """A line of 100 MiB + 4 MiB per sample; batch 256 (forecast 1.1 GiB) killed under a
    1.2 GiB budget; mixed precision at 256 measured at ``mixed_peak``."""
    points = (MemoryPoint(32, 228 * MiB, True, "stable", "cw=none,lr=0.01,clip=none,bs=32"),
              MemoryPoint(128, 612 * MiB, True, "stable", "ladder:bs=128"),
              MemoryPoint(256, 1100 * MiB, False, "oom_host", "cw=none,lr=0.01,clip=none,bs=256"))
    return MemoryReport(int(1.2 * GiB), 0.05, enforcement, points, intercept=100 * MiB,
                        slope=4 * MiB, forecast_batch=240, forecast_peak=1060 * MiB,
                        verified=MemoryPoint(240, 1050 * MiB, True, "stable", "verify:x"),
                        mixed_precision={"policy": "mixed_bfloat16", "batch_size": 256,
                                         "peak_bytes": mixed_peak, "fits": False,
                                         "outcome": "oom_host",
                                         "float32_forecast_bytes": 1124 * MiB})


def test_a_kill_below_the_forecast_says_why() -> None:
    text = " ".join(memory_forecast_lines(_ladder("cgroup-v2", 700 * MiB)))
    assert ("batch 256 needs about 1.1 GiB, budget 1.2 GiB: was OOM-killed in its memory "
            "cgroup, though its forecast is below the budget: the forecast counts the worker's "
            "private memory, while the cgroup budget also charges its page cache and kernel "
            "memory") in text
    watched = " ".join(memory_forecast_lines(_ladder("watchdog", 700 * MiB)))
    assert ("budget 1.2 GiB: was ended over the budget, though its forecast is below the "
            "budget: its own peak rose above the line") in watched


@pytest.mark.parametrize(("peak", "words"), [
    (700 * MiB, "(saves 38%)"),
    (1124 * MiB, "(no saving)"),
    (1180 * MiB, "(uses 5% more: no saving)"),
])
def test_a_saving_is_never_negative(peak: int, words: str) -> None:
    text = " ".join(memory_forecast_lines(_ladder("cgroup-v2", peak)))
    assert words in text and "saves -" not in text


def test_a_memory_report_agrees_with_the_rest_of_the_report() -> None:
    report = dataclasses.replace(
        make_report([make_result(Outcome.STABLE, cw="none", bs=32),
                     make_result(Outcome.OOM_HOST, cw="none", bs=256)]),
        memory=_ladder("cgroup-v2", 1180 * MiB))
    assert_agrees(report)


# ------------------------------------------------------------------ [thresholds] reach


def _margin_report(margin: float | None):
    from stabcheck.run.ladder import build_memory_report

    kwargs = {} if margin is None else {"margin": margin}
    return build_memory_report(SimulatedRunner(), template(), [], budget=GiB,
                               enforcement="watchdog", class_weights=None,
                               extra_sizes=(32, 200_000), max_batch=None, **kwargs)


def test_the_ladder_plans_with_the_configured_memory_margin() -> None:
    default, wide = _margin_report(None), _margin_report(0.3)
    assert default.margin == 0.05 and wide.margin == 0.3
    assert wide.forecast_batch < default.forecast_batch
    assert wide.forecast_peak <= GiB * 0.7 < default.forecast_peak
    assert "fits with a 30% margin" in " ".join(memory_forecast_lines(wide))


def test_the_engine_hands_the_config_memory_margin_to_the_ladder(tmp_path: Path) -> None:
    """``[thresholds] memory_margin`` in a config file reaches the forecast."""
    from stabcheck.run.engine import RunContext, _memory
    from stabcheck.run.journal import Journal

    config = tmp_path / "stabcheck.toml"
    config.write_text('model = "builtin:mlp"\ndata = "builtin:digits"\n'
                      'memory_budget = "1GiB"\nbatch_size = [32, 200000]\n'
                      "[thresholds]\nmemory_margin = 0.3\n")
    settings = build_settings(config, {})
    assert settings.thresholds.memory_margin == 0.3
    runner = SimulatedRunner()
    runner.environment = {"devices": []}
    journal = Journal(tmp_path / "journal.jsonl")
    context = RunContext(settings, {"none": None}, journal, lambda _event: None, True,
                         "watchdog", 10_000_000)
    memory = _memory(context, runner, template(), [], [])
    journal.close()
    assert memory.margin == 0.3
    assert memory.forecast_peak <= GiB * 0.7
