"""Tests of the terminal report, the JSON file and its schema, and the size units."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

from stabcheck.errors import ConfigError
from stabcheck.judge.advice import summary_counts
from stabcheck.judge.recommend import strategy_summary
from stabcheck.judge.summary import summarize
from stabcheck.report.json import load_schema, result_json, write_json
from stabcheck.report.sparkline import SPARK_WIDTH, sparkline
from stabcheck.report.terminal.report import render_report
from stabcheck.results import (
    Category,
    DatasetSummary,
    HoldoutEval,
    MemoryEvidence,
    Outcome,
    Probe,
    ProbeResult,
    ProbeRun,
    ProbeSettings,
    RunReport,
    StepRecord,
    Termination,
    Verdict,
)
from stabcheck.system.forecast import MemoryPoint, MemoryReport
from stabcheck.units import human_bytes, parse_size

GiB = 1024**3
MiB = 1024**2

# --------------------------------------------------------------------------- factory

_TERMINATION = {
    Outcome.NON_FINITE: Termination.NON_FINITE,
    Outcome.OOM_HOST: Termination.DIED,
    Outcome.OOM_GPU: Termination.EXCEPTION,
    Outcome.CRASHED: Termination.DIED,
    Outcome.TIMEOUT: Termination.TIMEOUT,
    Outcome.ERROR: Termination.EXCEPTION,
}

_SUMMARY = {
    Outcome.STABLE: "trained 50 steps; loss 0.69 -> 0.21",
    Outcome.NON_FINITE: "NaN at step 37 in dense_1/kernel gradient",
    Outcome.DIVERGED: "loss rose to 41x its best at step 12",
    Outcome.EXPLODING_GRADIENTS: "gradient norm reached 3.1e+05, 2,400x its early median",
    Outcome.STALLED: "loss moved 0.2% in 50 steps; accuracy at chance",
    Outcome.MINORITY_COLLAPSE: "class 1 never predicted on the holdout",
    Outcome.OVERCORRECTED: "class 1 predicted 9x more often than class 0",
    Outcome.OOM_HOST: "killed by the kernel OOM killer at 2.1 GiB of a 2.0 GiB budget (cgroup-v1)",
    Outcome.OOM_GPU: "the GPU allocator ran out of memory allocating 1.5 GiB",
    Outcome.CRASHED: "the worker died of SIGSEGV(-11) at step 3",
    Outcome.TIMEOUT: "ended after the 60 s timeout at step 8",
    Outcome.ERROR: "the loss expects 3 classes but the labels hold 2",
}


def make_result(
    outcome: Outcome,
    *,
    cw: str = "balanced",
    lr: float = 0.01,
    clip: str = "none",
    bs: int = 32,
    evidence: dict[str, Any] | None = None,
    summary: str | None = None,
    losses: tuple[float, ...] = (0.7, 0.5, 0.3),
    peak_host: int | None = 300 * MiB,
    peak_gpu: int | None = None,
    memory: MemoryEvidence | None = None,
    returncode: int | None = None,
) -> ProbeResult:
    """One probe result, built by hand the way runner and classify would."""
    settings = ProbeSettings(
        class_weight=cw,
        class_weights=None if cw == "none" else {"0": 0.55, "1": 5.0},
        learning_rate=lr,
        clip=clip,
        batch_size=bs,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
    )
    probe = Probe(f"cw={cw},lr={lr:g},clip={clip},bs={bs}", settings, steps=50)
    steps = tuple(StepRecord(i, loss, 1.0 + i) for i, loss in enumerate(losses))
    run = ProbeRun(
        probe=probe,
        termination=_TERMINATION.get(outcome, Termination.COMPLETED),
        steps=steps,
        memory=memory or MemoryEvidence(peak_host, None, None),
        peak_gpu_bytes=peak_gpu,
        returncode=returncode,
        duration_s=1.23456,
    )
    default_evidence = {"step": 37} if outcome.category is Category.NUMERICAL else {}
    verdict = Verdict(
        outcome,
        default_evidence if evidence is None else evidence,
        summary or _SUMMARY[outcome],
    )
    return ProbeResult(run, verdict)


def make_report(
    results: list[ProbeResult],
    *,
    warnings: tuple[str, ...] = (),
    interrupted: bool = False,
    probes_planned: int | None = None,
    n_classes: int = 2,
) -> RunReport:
    names = tuple(str(i) for i in range(n_classes))
    counts = tuple(1000 // (i + 1) for i in range(n_classes))
    return RunReport(
        stabcheck_version="0.1.0",
        environment={
            "backend": "tensorflow",
            "devices": ["CPU:0"],
            "host_memory_bytes": 16 * GiB,
            "memory_enforcement": "cgroup-v2",
        },
        dataset=DatasetSummary(
            source="builtin:digits",
            n_samples=sum(counts),
            n_total=sum(counts) + 300,
            n_holdout=300,
            class_names=names,
            class_counts=counts,
            input_shape=(8, 8, 1),
            label_format="sparse",
        ),
        class_weight_table={
            "none": None,
            "balanced": {
                n: sum(counts) / (n_classes * c) for n, c in zip(names, counts, strict=True)
            },
            "x100": {n: 100.0 * (i > 0) + (i == 0) for i, n in enumerate(names)},
        },
        results=tuple(results),
        warnings=warnings,
        config={"steps": 50, "memory_budget": "2GiB"},
        interrupted=interrupted,
        probes_planned=len(results) if probes_planned is None else probes_planned,
    )


def every_outcome() -> list[ProbeResult]:
    """One probe per outcome, spread over two batch sizes and a 2x2 lr/clip grid."""
    return [
        make_result(Outcome.STABLE, cw="none", lr=0.001, clip="none"),
        make_result(Outcome.NON_FINITE, cw="x100", lr=0.01, clip="none"),
        make_result(Outcome.DIVERGED, cw="x100", lr=0.001, clip="none", evidence={"step": 12}),
        make_result(Outcome.EXPLODING_GRADIENTS, cw="balanced", lr=0.01, clip="none"),
        make_result(Outcome.STALLED, cw="none", lr=0.01, clip="none"),
        make_result(Outcome.MINORITY_COLLAPSE, cw="none", lr=0.01, clip="global_norm=1.0"),
        make_result(Outcome.OVERCORRECTED, cw="x100", lr=0.01, clip="global_norm=1.0"),
        make_result(
            Outcome.OOM_HOST,
            bs=4096,
            memory=MemoryEvidence(int(2.1 * GiB), 2 * GiB, "cgroup-v1", oom_kills=1),
            evidence={"budget_bytes": 2 * GiB, "enforcement": "cgroup-v1", "oom_kills": 1},
        ),
        make_result(Outcome.OOM_GPU, cw="none", bs=4096, peak_gpu=int(7.9 * GiB)),
        make_result(
            Outcome.CRASHED,
            cw="x100",
            bs=4096,
            evidence={"signal": "SIGSEGV", "returncode": -11, "stderr_tail": "Fatal"},
            returncode=-11,
        ),
        make_result(Outcome.TIMEOUT, cw="x100", lr=0.001, bs=4096, evidence={"timeout_s": 60}),
        make_result(Outcome.ERROR, cw="custom", evidence={"phase": "build"}),
    ]


def render(report: RunReport, width: int = 120, *, verbose: bool = False) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    render_report(report, summarize(report), console, verbose=verbose)
    return console.export_text()


def strict_loads(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --------------------------------------------------------------------------- render


def test_render_shows_grid_sections_and_evidence() -> None:
    text = render(make_report(every_outcome()), verbose=True)
    for word in (
        "ok",
        "NaN @37",
        "diverged @12",
        "explodes @37",
        "stalled",
        "collapse",
        "overcorr",
        "OOM host",
        "OOM GPU",
        "crashed",
        "timeout",
        "error",
    ):
        assert word in text, word
    assert "batch size 32" in text and "batch size 4096" in text
    assert "lr 0.01" in text and "no clip" in text and "gnorm 1.0" in text
    assert "·" in text  # the grid is not full: missing cells are dots
    for title in (
        "Numerical failures",
        "Memory exhaustion",
        "Crashes and timeouts",
        "Learning problems",
        "Errors",
        "Failures by cause",
    ):
        assert title in text, title
    wide = render(make_report(every_outcome()), width=250, verbose=True)  # nothing wraps
    for outcome in Outcome:
        if outcome is not Outcome.STABLE:
            assert _SUMMARY[outcome] in wide, outcome
    assert "cgroup-v1" in text and "2.0 GiB" in text and "7.9 GiB" in text
    assert "builtin:digits" in text and "(8, 8, 1)" in text
    # The verdict comes second, after the title line.
    assert wide.splitlines()[1].startswith("12 probes: 1 stable, 1 NaN/Inf, 1 diverged")
    assert "\x1b[" not in text


def test_sections_absent_when_empty() -> None:
    results = [
        make_result(Outcome.STABLE, lr=0.01),
        make_result(Outcome.NON_FINITE, lr=0.1),
    ]
    text = render(make_report(results), verbose=True)
    assert "Numerical failures" in text
    for title in ("Memory exhaustion", "Crashes and timeouts", "Learning problems", "Errors"):
        assert title not in text, title
    assert "Warnings" not in text and "interrupted" not in text


def test_all_stable_report_has_no_failure_sections() -> None:
    text = render(make_report([make_result(Outcome.STABLE, lr=lr) for lr in (0.1, 0.01)]),
                  verbose=True)
    assert "failures" not in text and "Errors" not in text
    assert "every setting in this grid trained without trouble" in text


def test_grid_orders_rows_and_columns_by_first_appearance() -> None:
    results = [
        make_result(Outcome.STABLE, cw="x100", lr=0.1),
        make_result(Outcome.STABLE, cw="none", lr=0.001),
        make_result(Outcome.STABLE, cw="x100", lr=0.001),
    ]
    text = render(make_report(results))
    text = text[text.index("Verdicts"):]  # the verdict line names the recommendation's lr
    assert text.index("lr 0.1") < text.index("lr 0.001")
    grid = text[text.index("batch size 32") : text.index("Recommended")].splitlines()
    rows = [line.split()[0] for line in grid if line.split()[:1] in (["x100"], ["none"])]
    assert rows == ["x100", "none"]


def test_warnings_and_interruption_are_shown() -> None:
    report = make_report(
        [make_result(Outcome.STABLE)],
        warnings=("the data set has 3 samples of class 1",),
        interrupted=True,
        probes_planned=8,
    )
    text = render(report)
    assert "Warnings" in text and "the data set has 3 samples of class 1" in text
    assert "interrupted: 1 of 8 probes ran" in text


def test_many_classes_show_head_tail_and_range() -> None:
    text = render(make_report([make_result(Outcome.STABLE)], n_classes=20), verbose=True)
    assert "…" in text
    lines = {line.split()[0] for line in text.splitlines() if line.split()}
    assert {"0", "4", "15", "19", "min", "max", "max/min"} <= lines
    assert "10" not in lines  # the middle classes are left out


def test_render_with_no_results() -> None:
    text = render(make_report([], interrupted=True, probes_planned=4))
    assert "no probe ran" in text
    assert "interrupted: 0 of 4 probes ran" in text
    assert "no probe ran (interrupted: 0 of 4 ran)" in text


# --------------------------------------------------------------------------- advice


def test_recommends_clipping_where_a_clipped_twin_was_stable() -> None:
    results = [
        make_result(Outcome.NON_FINITE, cw="x100", clip="none"),
        make_result(Outcome.STABLE, cw="x100", clip="global_norm=1.0"),
    ]
    advice = said(make_report(results))
    assert "Fix: clipping: clip=global_norm=1.0 was stable at lr 0.01." in advice[0]
    assert "lower learning rate" not in advice[0]


def test_recommends_the_largest_stable_lower_learning_rate() -> None:
    results = [
        make_result(Outcome.DIVERGED, cw="x100", lr=0.1),
        make_result(Outcome.NON_FINITE, cw="x100", lr=0.01),
        make_result(Outcome.STABLE, cw="x100", lr=0.001),
        make_result(Outcome.STABLE, cw="x100", lr=0.0001),
        make_result(Outcome.STABLE, cw="none", lr=0.1),
    ]
    weights, unclear, _ = said(make_report(results))
    # lr 0.1: class_weight=none was stable there, so the weights are to blame
    assert weights.startswith("class_weight=x100 diverged at lr 0.1, where milder weights "
                              "trained (1 probe) Where: cw=x100,lr=0.1,clip=none,bs=32: the "
                              "loss diverged")
    assert "Why: the class weights: class_weight=none trained" in weights
    # lr 0.01: no twin to compare with
    assert unclear.startswith("class_weight=x100 turned NaN/Inf at lr 0.01 (1 probe) Where: "
                              "cw=x100,lr=0.01,clip=none,bs=32: a non-finite value at step 37")
    assert "Why: unclear from this grid" in unclear
    for line in (weights, unclear):
        assert "a lower learning rate: x100 was stable at lr 0.001" in line
        assert "clipping" not in line


def test_recommends_smaller_batches_after_memory_exhaustion() -> None:
    results = [
        make_result(Outcome.STABLE, bs=32),
        make_result(Outcome.STABLE, bs=64),
        make_result(Outcome.OOM_HOST, bs=4096),
    ]
    advice = said(make_report(results))
    assert advice[0].startswith("batch size 4096 exhausted host memory (1 probe)")
    assert advice[0].endswith("Fix: the largest batch size that ran was 64.")


def remedy(result: ProbeResult, **changes: Any) -> ProbeResult:
    """``result`` as a memory ladder's remedy measurement (``dtype_policy``, accumulation)."""
    settings = dataclasses.replace(result.probe.settings, **changes)
    probe = dataclasses.replace(result.probe, id="mixed:" + result.probe.id, settings=settings)
    return dataclasses.replace(result, run=dataclasses.replace(result.run, probe=probe))


def ladder(verified_fits: bool) -> MemoryReport:
    """A ladder that forecast batch 2048 and verified it by a real run at 1.8 GiB."""
    points = (MemoryPoint(32, 300 * MiB, True, "stable", "cw=balanced,lr=0.01,clip=none,bs=32"),
              MemoryPoint(4096, None, False, "oom_host", "cw=balanced,lr=0.01,clip=none,bs=4096"))
    verified = MemoryPoint(2048, 1843 * MiB, verified_fits,
                           "stable" if verified_fits else "oom_host", "verify:x")
    return MemoryReport(2 * GiB, 0.05, "cgroup-v2", points, intercept=280 * MiB,
                        slope=0.8 * MiB, forecast_batch=2048, forecast_peak=1900 * MiB,
                        verified=verified)


MEMORY_GRID = [make_result(Outcome.STABLE, bs=32), make_result(Outcome.OOM_HOST, bs=4096)]


@pytest.mark.parametrize(("results", "memory", "expected"), [
    # a mixed-precision remedy that ran at 4096 is not a batch size that fits in float32
    ([*MEMORY_GRID, remedy(make_result(Outcome.STABLE, bs=4096), dtype_policy="mixed_bfloat16")],
     None, "the largest batch size that ran was 32"),
    # nor is an accumulation step's micro batch, nor does a failed remedy count as exhausted
    ([*MEMORY_GRID, remedy(make_result(Outcome.STABLE, bs=8192), accumulation_steps=2),
      remedy(make_result(Outcome.OOM_HOST, bs=1024), dtype_policy="mixed_bfloat16")],
     None, "the largest batch size that ran was 32"),
    # a verified forecast is the batch size to name
    ([*MEMORY_GRID, remedy(make_result(Outcome.STABLE, bs=4096), dtype_policy="mixed_bfloat16")],
     ladder(verified_fits=True),
     "the largest batch size that fits the budget is 2048 (forecast, verified by a real run "
     "at 1.8 GiB)"),
    # a forecast its verification run refuted is not
    (MEMORY_GRID, ladder(verified_fits=False), "the largest batch size that ran was 32"),
], ids=["mixed-precision", "accumulation", "verified-forecast", "refuted-forecast"])
def test_memory_advice_names_a_batch_size_that_fits(
    results: list[ProbeResult], memory: MemoryReport | None, expected: str
) -> None:
    report = dataclasses.replace(make_report(results), memory=memory)
    advice = said(report)
    assert advice[0].startswith("batch size 4096 exhausted host memory (1 probe)")
    assert advice[0].endswith(f"Fix: {expected}.")


def test_says_so_when_everything_is_stable() -> None:
    results = [make_result(Outcome.STABLE, lr=lr) for lr in (0.1, 0.01, 0.001)]
    advice = said(make_report(results))
    assert advice == [
        "every setting in this grid trained without trouble",
        "3 probes: 3 stable - recommended: balanced, lr 0.001, no clip, batch 32",
    ]


def test_crash_advice_names_the_signal_and_count_line_comes_last() -> None:
    advice = said(make_report(every_outcome()))
    assert (
        "the worker died of SIGSEGV (1 probe) Where: cw=x100,lr=0.01,clip=none,bs=4096: the "
        "worker died of SIGSEGV(-11) at step 3. Its stderr tail is in the JSON result "
        "(probes[].evidence.stderr_tail)." in advice
    )
    assert any("timed out" in line for line in advice)
    assert any("could not start" in line for line in advice)
    assert advice[-1].startswith(
        "12 probes: 1 stable, 1 NaN/Inf, 1 diverged, 1 exploding gradients, 1 out of host "
        "memory, 1 out of GPU memory, 1 crashed, 1 timed out, 1 overcorrected, 1 minority "
        "collapse, 1 stalled, 1 could not start")


def test_numerical_failure_without_a_stable_twin_suggests_a_milder_class_weight() -> None:
    results = [
        make_result(Outcome.NON_FINITE, cw="x100"),
        make_result(Outcome.STABLE, cw="balanced"),
    ]
    advice = said(make_report(results))
    assert "Why: the class weights: class_weight=balanced trained without numerical trouble" \
        in advice[0]
    assert "Fix: milder weights: balanced was stable at the same learning rate, clip and " \
        "batch size." in advice[0]


def test_numerical_failure_with_nothing_stable_says_so() -> None:
    advice = said(make_report([make_result(Outcome.DIVERGED, cw="x100")]))
    assert advice[0].startswith("class_weight=x100 diverged at lr 0.01")
    assert "Fix: nothing in this grid rescued it: probe lower learning rates (--lr)" in advice[0]


def test_narrow_console_puts_evidence_under_the_probe_id() -> None:
    text = render(make_report(every_outcome()), width=100, verbose=True)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "probe / evidence" in text
    memory = text[text.index("Memory exhaustion") : text.index("Crashes and timeouts")]
    for word in ("budget", "cgroup-v1", "2.0 GiB", "7.9 GiB", "peak GPU", "oom_host"):
        assert word in memory, word
    assert "loss rose to 41x its best at step 12" in text


def test_summary_counts_has_every_category() -> None:
    counts = summary_counts(every_outcome())
    assert set(counts) == set(Category)
    assert counts == {
        Category.OK: 1,
        Category.NUMERICAL: 3,
        Category.LEARNING: 3,
        Category.MEMORY: 2,
        Category.CRASH: 2,
        Category.ERROR: 1,
    }


# --------------------------------------------------------------------------- JSON


def test_write_json_is_strict_and_matches_the_schema(
    tmp_path: Path, validator: Draft202012Validator
) -> None:
    nan_probe = make_result(
        Outcome.NON_FINITE,
        losses=(0.7, float("nan")),
        evidence={"step": 1, "value": float("nan"), "grad_norm": float("inf"), "where": "loss"},
    )
    report = make_report([*every_outcome(), nan_probe])
    path = tmp_path / "out" / "result.json"
    write_json(report, summarize(report), path)
    data = strict_loads(path.read_text(encoding="utf-8"))
    errors = sorted(validator.iter_errors(data), key=str)
    assert not errors, errors[0].message
    assert data["probes"][-1]["loss_history"] == [0.7, None]
    assert data["probes"][-1]["evidence"]["value"] == "nan"
    assert data["probes"][-1]["evidence"]["grad_norm"] == "inf"
    assert [p["outcome"] for p in data["probes"][:-1]] == [r.value for r in _ORDER]
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left


_ORDER = [r.verdict.outcome for r in every_outcome()]


def test_write_json_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("old", encoding="utf-8")
    stable = make_report([make_result(Outcome.STABLE)])
    write_json(stable, summarize(stable), path)
    assert strict_loads(path.read_text(encoding="utf-8"))["schema_version"] == 1


def test_write_json_refuses_nan_and_leaves_no_file(tmp_path: Path) -> None:
    bad = make_report([make_result(Outcome.STABLE, lr=math.nan)])
    with pytest.raises(ValueError):
        write_json(bad, summarize(bad), tmp_path / "result.json")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def valid_json() -> dict[str, Any]:
    return make_report(every_outcome()).to_json()


@pytest.mark.parametrize(
    ("outcome", "category"),
    [
        ("non_finite", "ok"),
        ("stable", "numerical"),
        ("oom_host", "crash"),
        ("timeout", "memory"),
        ("overcorrected", "numerical"),
        ("error", "crash"),
    ],
)
def test_schema_rejects_a_category_that_does_not_match_the_outcome(
    valid_json: dict[str, Any], validator: Draft202012Validator, outcome: str, category: str
) -> None:
    assert validator.is_valid(valid_json)
    bad = copy.deepcopy(valid_json)
    bad["probes"][0].update(outcome=outcome, category=category)
    assert not validator.is_valid(bad)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("probes"),
        lambda d: d["probes"][0].pop("evidence"),
        lambda d: d["probes"][0]["settings"].pop("batch_size"),
        lambda d: d["probes"][0].update(outcome="exploded"),
        lambda d: d["probes"][0].update(peak_host_bytes=1.5),
        lambda d: d["probes"][0].update(loss_history=["nan"]),
        lambda d: d.update(schema_version=2),
    ],
    ids=[
        "no-probes",
        "no-evidence",
        "no-batch-size",
        "unknown-outcome",
        "float-bytes",
        "string-in-history",
        "schema-version",
    ],
)
def test_schema_rejects_broken_results(
    valid_json: dict[str, Any], validator: Draft202012Validator, mutate: Any
) -> None:
    bad = copy.deepcopy(valid_json)
    mutate(bad)
    assert not validator.is_valid(bad)


def test_schema_allows_extra_top_level_fields(
    valid_json: dict[str, Any], validator: Draft202012Validator
) -> None:
    valid_json["junit_path"] = "report.xml"
    assert validator.is_valid(valid_json)


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GiB", 2 * GiB),
        ("512MiB", 512 * MiB),
        ("1.5G", int(1.5 * GiB)),
        ("1.5g", int(1.5 * GiB)),
        ("2GB", 2_000_000_000),
        ("500MB", 500_000_000),
        ("64K", 64 * 1024),
        ("64KiB", 64 * 1024),
        ("1T", 1024**4),
        ("1TB", 10**12),
        ("1024", 1024),
        ("0", 0),
        ("1024B", 1024),
        (" 2 GiB ", 2 * GiB),
        (4096, 4096),
    ],
)
def test_parse_size_accepts(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GiB",
        "2 GiBs",
        "two GiB",
        "-1GiB",
        "1.5",
        "1.5B",
        "2XB",
        "2Gi B",
        "nan",
        "1e9",
        "2 G B",
        True,
        -5,
        1.5,
    ],
)
def test_parse_size_rejects(text: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size(text)
    assert str(info.value) == (
        f"invalid size '{text}': expected a number with a unit such as 512MiB or 2GiB"
    )
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (None, "—"),
        (0, "0 B"),
        (512, "512 B"),
        (1024, "1.0 KiB"),
        (512 * MiB, "512.0 MiB"),
        (int(2.1 * GiB), "2.1 GiB"),
        (GiB - 1, "1.0 GiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_human_bytes(n: int | None, expected: str) -> None:
    assert human_bytes(n) == expected


# --------------------------------------------------------------------------- sparklines


@pytest.mark.parametrize(
    ("losses", "kwargs", "expected"),
    [
        ([1.0 / (1 + 0.1 * i) for i in range(60)], {}, "█▆▅▄▃▂▂▁"),  # falling
        ([0.69] * 50, {}, "▅▅▅▅▅▅▅▅"),  # flat: the middle, not the floor
        ([0.6 + 0.01 * (-1) ** i for i in range(40)], {}, "▅▄▅▄▅▄▅▄"),  # noise: a level at most
        ([2.0**i for i in range(40)], {}, "▁▂▃▄▅▆▇█"),  # rising by orders of magnitude
        ([1, 2, 5, 30, 400, math.nan], {}, "▁▂▃▅█×"),  # NaN: the finite part, then ×
        ([1.0, 3.0, None], {}, "▁█×"),  # None (a non-finite value in the JSON)
        ([1.0, math.inf, 2.0], {}, "▅×"),  # what follows the first non-finite is not shown
        ([0.5] * 10, {"broken": True}, "▄▄▄▄▄▄▄×"),  # finite loss, NaN gradient
        ([1.0, 0.0, 0.0, 0.0], {}, "█▁▁▁"),  # a zero loss sits below the rest
        ([0.7, 0.5], {}, "▆▃"),  # fewer steps than characters; less than 2x apart
        ([math.nan], {}, "×"),
        ([], {}, ""),
    ],
)
def test_sparkline(losses: list[float | None], kwargs: dict[str, Any], expected: str) -> None:
    line = sparkline(losses, **kwargs)
    assert line == expected
    assert len(line) <= SPARK_WIDTH


def test_sparkline_is_log_scaled() -> None:
    # 1000 -> 1 -> 0.001: linear would flatten the second half to the floor
    losses = [1000.0] * 10 + [1.0] * 10 + [0.001] * 10 + [1e-6] * 10
    assert sparkline(losses) == "██▆▆▃▃▁▁"


@pytest.mark.parametrize("width", [80, 120])
def test_grid_cells_carry_sparklines_and_fit_the_console(width: int) -> None:
    text = render(make_report(every_outcome()), width=width, verbose=True)
    assert max(len(line) for line in text.splitlines()) <= width
    grid = text[text.index("batch size 32"): text.index("Numerical failures")]
    lines = grid.splitlines()
    nan_row = next(i for i, line in enumerate(lines) if "NaN" in line and "@37" in line)
    under = "\n".join(lines[nan_row + 1: nan_row + 3])
    assert "█▅▁×" in under  # the NaN probe's curve ends in ×
    assert "\x1b[" not in text


# --------------------------------------------------------------------------- quality


def said(report: RunReport) -> list[str]:
    """What the run's one judgement says, as every view shows it: one line per cause (its
    title, then its where / why / fix), then the notes, then the verdict line."""
    judged = summarize(report)
    return ([" ".join((c.title, *c.details)) for c in judged.causes] + list(judged.notes)
            + [judged.verdict])


def recommendation_json(report: RunReport) -> dict | None:
    """The run's recommendation as the JSON result carries it (None: none)."""
    rec = summarize(report).recommendation
    return None if rec is None else rec.to_json()


def with_holdout(
    result: ProbeResult,
    *,
    f1: float,
    recall: tuple[float, ...] = (0.9, 0.5),
    true: tuple[int, ...] = (90, 10),
    pred: tuple[int, ...] = (88, 12),
    accuracy: float = 0.9,
    pr_auc: float | None = 0.7,
) -> ProbeResult:
    """``result`` with held-out metrics (class 1 is the rare class of ``make_report``)."""
    metrics = {
        "n": sum(true), "accuracy": accuracy, "true_counts": list(true),
        "pred_counts": list(pred), "recall": list(recall), "macro_f1": f1,
        "pr_auc": pr_auc, "minority_class": len(true) - 1, "minority_recall": recall[-1],
    }
    holdout = HoldoutEval(sum(true), accuracy, true, pred, recall, metrics)
    return dataclasses.replace(result, run=dataclasses.replace(result.run, holdout=holdout))


NAN_AT_37 = {"step": 37, "where": "gradient", "variable": "dense_1/kernel", "value": "nan",
             "class_gradients": {"step": 1, "rarest": "1", "most_common": "0", "ratio": 870.0}}


def quality_grid() -> list[ProbeResult]:
    """none and balanced diverge at lr 0.1 unless clipped; x100 overcorrects, then NaNs."""
    return [
        with_holdout(make_result(Outcome.STABLE, cw="none", lr=0.01), f1=0.62,
                     recall=(0.99, 0.2), pred=(97, 3)),
        make_result(Outcome.DIVERGED, cw="none", lr=0.1, evidence={"step": 4}),
        with_holdout(make_result(Outcome.STABLE, cw="balanced", lr=0.01), f1=0.80,
                     recall=(0.9, 0.8), pred=(84, 16)),
        with_holdout(make_result(Outcome.STABLE, cw="balanced", lr=0.01, clip="global_norm=1"),
                     f1=0.79, recall=(0.9, 0.8), pred=(85, 15)),
        make_result(Outcome.DIVERGED, cw="balanced", lr=0.1,
                    evidence={"step": 5, "peak_loss": 57.0}),
        with_holdout(make_result(Outcome.STABLE, cw="balanced", lr=0.1, clip="global_norm=1"),
                     f1=0.70, recall=(0.85, 0.7), pred=(80, 20)),
        with_holdout(make_result(Outcome.OVERCORRECTED, cw="x100", lr=0.01), f1=0.30,
                     recall=(0.2, 1.0), pred=(18, 82)),
        make_result(Outcome.NON_FINITE, cw="x100", lr=0.1, evidence=NAN_AT_37),
    ]


def test_quality_section_lists_the_settings_that_trained_best_first() -> None:
    text = render(make_report(quality_grid()), width=120, verbose=True)
    # x100 overcorrected: the title does not call every row stable
    section = text[text.index("Per-class quality of the settings that trained (4 of 5 stable)"):
                   text.index("Per class-weight strategy")]
    rows = [line.split() for line in section.splitlines() if line.strip().startswith("cw=")]
    assert [r[0] for r in rows] == [
        "cw=balanced,lr=0.01,clip=none,bs=32",
        "cw=balanced,lr=0.01,clip=global_norm=1,bs=32",
        "cw=balanced,lr=0.1,clip=global_norm=1,bs=32",
        "cw=none,lr=0.01,clip=none,bs=32",
        "cw=x100,lr=0.01,clip=none,bs=32",  # overcorrected: it trained, so it is shown
    ]
    assert rows[0][1:] == ["ok", "90.0%", "0.80", "0.80", "0.70", "16%/10%"]
    assert rows[4][1] == "overcorr"
    for header in ("accuracy", "macro-F1", "class 1", "recall", "PR-AUC", "pred/true"):
        assert header in section, header
    assert "NaN" not in section and "diverged" not in section


def test_quality_section_has_no_pr_auc_beyond_two_classes_and_caps_its_rows() -> None:
    results = [
        with_holdout(make_result(Outcome.STABLE, lr=0.001 * (i + 1)), f1=0.5 + 0.01 * i,
                     recall=(0.9, 0.8, 0.4), true=(60, 30, 10), pred=(60, 30, 10), pr_auc=None)
        for i in range(15)
    ]
    text = render(make_report(results, n_classes=3), width=120, verbose=True)
    section = text[text.index("Per-class quality"): text.index("Per class-weight strategy")]
    assert "PR-AUC" not in section
    assert sum(line.strip().startswith("cw=") for line in section.splitlines()) == 12
    assert "+ 3 more probes" in section
    assert "0.64" in section and "0.50" not in section  # the best 12 of 15, best first


def test_quality_ids_break_at_commas_on_a_narrow_console() -> None:
    text = render(make_report(quality_grid()), width=80, verbose=True)
    assert max(len(line) for line in text.splitlines()) <= 80
    section = text[text.index("Per-class quality"): text.index("Per class-weight strategy")]
    lines = [line.split() for line in section.splitlines()]
    assert ["cw=balanced,lr=0.01,", "ok", "90.0%", "0.80", "0.80", "0.70", "16%/10%"] in lines
    assert ["clip=none,bs=32"] in lines  # the rest of the id, on the next line
    assert "…" not in section  # nothing cut short


# --------------------------------------------------------------------------- recommendation


def test_recommended_configuration_passes_over_a_better_score_next_to_a_failure() -> None:
    rec = recommendation_json(make_report(quality_grid()))
    assert rec is not None
    # balanced at lr 0.01 without a clip scored 0.80, but lr 0.1 next to it diverged; the
    # clipped twin (0.79, within the 0.02 tolerance) has a stable neighbour at lr 0.1
    assert (rec["class_weight"], rec["learning_rate"], rec["clip"], rec["batch_size"]) == (
        "balanced", 0.01, "global_norm=1", 32)
    assert rec["probe_id"] == "cw=balanced,lr=0.01,clip=global_norm=1,bs=32"
    assert rec["macro_f1"] == pytest.approx(0.79)
    assert rec["minority_recall"] == pytest.approx(0.8)
    assert rec["minority_class"] == "1"
    assert rec["stable_probes"] == 4
    assert any("within 0.02 of the best (0.80)" in r for r in rec["reasons"])
    assert any("lr 0.1 with the same settings trained" in r for r in rec["reasons"])
    rejected = {r["probe_id"]: r["reason"] for r in rec["rejected"]}
    assert rejected["cw=balanced,lr=0.01,clip=none,bs=32"] == (
        "macro-F1 0.80, but lr 0.1 next to it failed (diverged @5) and it does not clip")
    json.dumps(rec, allow_nan=False)  # JSON-safe, for the result file


def test_recommended_configuration_prefers_the_milder_weighting_then_minority_recall() -> None:
    """Within the tolerance a tie goes to the milder weighting (not to x100 for its recall);
    between settings that tie on that too (batch sizes), to the higher minority recall."""
    results = [
        with_holdout(make_result(Outcome.STABLE, cw="none", lr=0.01), f1=0.81,
                     recall=(0.99, 0.3)),
        with_holdout(make_result(Outcome.STABLE, cw="x100", lr=0.01), f1=0.80,
                     recall=(0.95, 0.7)),
        with_holdout(make_result(Outcome.STABLE, cw="balanced", lr=0.01), f1=0.70,
                     recall=(0.8, 0.9)),
    ]
    rec = recommendation_json(make_report(results))
    assert rec is not None and rec["class_weight"] == "none"
    assert {"probe_id": "cw=x100,lr=0.01,clip=none,bs=32",
            "reason": "macro-F1 0.80, tied: broken toward the milder weighting (none over x100 "
                      "1:100)"} in rec["rejected"]
    batches = [
        with_holdout(make_result(Outcome.STABLE, cw="x100", lr=0.01, bs=32), f1=0.81,
                     recall=(0.99, 0.3)),
        with_holdout(make_result(Outcome.STABLE, cw="x100", lr=0.01, bs=64), f1=0.80,
                     recall=(0.95, 0.7)),
    ]
    rec = recommendation_json(make_report(batches))
    assert rec is not None and rec["batch_size"] == 64
    assert {"probe_id": "cw=x100,lr=0.01,clip=none,bs=32",
            "reason": "macro-F1 0.81, but minority recall only 0.30"} in rec["rejected"]
    assert not any(r.startswith("tied") for r in rec["reasons"])


def test_recommended_configuration_is_none_without_a_stable_setting() -> None:
    report = make_report([make_result(Outcome.NON_FINITE), make_result(Outcome.STALLED)])
    assert recommendation_json(report) is None
    text = render(report)
    assert "No setting in this grid was stable" in text


def test_the_recommended_configuration_panel_follows_the_grid() -> None:
    text = render(make_report(quality_grid()), width=120)
    panel = text[text.index("Recommended configuration"):text.index("╯")]
    assert text.index("Verdicts") < text.index("Recommended configuration")
    assert "class_weight=balanced  lr=0.01  clip=global_norm=1  batch_size=32" in panel
    assert "macro-F1 0.79, minority recall 0.80 (class 1), PR-AUC 0.70" in panel
    assert "not cw=balanced,lr=0.01,clip=none,bs=32" not in panel  # passed over: --verbose
    verbose = render(make_report(quality_grid()), width=120, verbose=True)
    assert "not cw=balanced,lr=0.01,clip=none,bs=32" in verbose
    assert max(len(line) for line in text.splitlines()) <= 120


def test_strategy_summary() -> None:
    rows = {r["class_weight"]: r for r in strategy_summary(make_report(quality_grid()))}
    assert rows["balanced"]["largest_stable_lr"] == 0.1
    assert (rows["balanced"]["clip_rescued"], rows["balanced"]["clip_tried"]) == (1, 1)
    assert rows["balanced"]["rescuing_clips"] == ["global_norm=1"]
    assert rows["balanced"]["best"] == {"probe_id": "cw=balanced,lr=0.01,clip=none,bs=32",
                                        "macro_f1": 0.80, "minority_recall": 0.8}
    assert rows["none"]["largest_stable_lr"] == 0.01
    assert (rows["none"]["clip_rescued"], rows["none"]["clip_tried"]) == (0, 0)
    assert rows["x100"]["largest_stable_lr"] is None and rows["x100"]["best"] is None
    text = render(make_report(quality_grid()), width=100, verbose=True)
    assert "Per class-weight strategy" in text


def test_write_json_carries_the_recommendation_and_the_strategy_summary(
    tmp_path: Path, validator: Draft202012Validator
) -> None:
    report = make_report(quality_grid())
    path = tmp_path / "result.json"
    write_json(report, summarize(report), path)
    data = strict_loads(path.read_text(encoding="utf-8"))
    assert not list(validator.iter_errors(data))
    assert data == result_json(report, summarize(report))
    assert data["recommended_configuration"] == recommendation_json(report)
    assert data["recommended_configuration"]["probe_id"] == (
        "cw=balanced,lr=0.01,clip=global_norm=1,bs=32")
    assert data["strategy_summary"] == strategy_summary(report)
    assert [row["class_weight"] for row in data["strategy_summary"]] == [
        "none", "balanced", "x100"]


def test_write_json_says_null_without_a_stable_setting(
    tmp_path: Path, validator: Draft202012Validator
) -> None:
    report = make_report([make_result(Outcome.NON_FINITE), make_result(Outcome.STALLED)])
    path = tmp_path / "result.json"
    write_json(report, summarize(report), path)
    data = strict_loads(path.read_text(encoding="utf-8"))
    assert not list(validator.iter_errors(data))
    assert data["recommended_configuration"] is None
    assert data["strategy_summary"][0]["best"] is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["recommended_configuration"].pop("probe_id"),
        lambda d: d["recommended_configuration"].update(batch_size="32"),
        lambda d: d["recommended_configuration"].update(macro_f1=1.5),
        lambda d: d["recommended_configuration"]["rejected"].append({"reason": "x"}),
        lambda d: d.update(recommended_configuration="balanced"),
        lambda d: d["strategy_summary"][0].pop("largest_stable_lr"),
        lambda d: d["strategy_summary"][0].update(best={"probe_id": "x"}),
        lambda d: d.update(strategy_summary={}),
    ],
    ids=["no-probe-id", "string-batch-size", "f1-above-1", "rejected-without-id",
         "not-an-object", "no-largest-lr", "best-without-scores", "summary-not-a-list"],
)
def test_schema_rejects_a_broken_recommendation(
    validator: Draft202012Validator, mutate: Any
) -> None:
    good = result_json(make_report(quality_grid()), summarize(make_report(quality_grid())))
    good = json.loads(json.dumps(good, allow_nan=False))
    assert validator.is_valid(good)
    mutate(good)
    assert not validator.is_valid(good)


# --------------------------------------------------------------------------- explanations


def test_explains_a_failure_the_class_weights_cause() -> None:
    results = [
        make_result(Outcome.NON_FINITE, cw="x100", lr=1.0, evidence={
            **NAN_AT_37, "check_numerics": {"op_type": "Mul", "operation": "sgd/Mul",
                                            "output": 0, "detected": "NaN"}}),
        make_result(Outcome.MINORITY_COLLAPSE, cw="none", lr=1.0),
        make_result(Outcome.STABLE, cw="normalized-x100", lr=1.0),
        make_result(Outcome.STABLE, cw="focal", lr=1.0),
        make_result(Outcome.STABLE, cw="x100", lr=1.0, clip="global_norm=1"),
        make_result(Outcome.STABLE, cw="x100", lr=0.1),
    ]
    report = make_report(results)
    report = dataclasses.replace(report, class_weight_table={
        **report.class_weight_table, "normalized-x100": report.class_weight_table["x100"],
        "focal": None})
    line = said(report)[0]  # the numerical cause comes first
    assert line.startswith("class_weight=x100 turned NaN/Inf at lr 1, where milder weights "
                           "trained (1 probe) Where: cw=x100,lr=1,clip=none,bs=32: NaN at step "
                           "37 in the dense_1/kernel gradient, first produced by the Mul op "
                           "sgd/Mul.")
    # why: none trained at the same lr (it collapsed, but without numerical trouble)
    assert ("Why: the class weights: class_weight=none trained without numerical trouble at "
            "the same learning rate, clip and batch size, and class 1 pulls 870x as hard as "
            "class 0 (gradient norm at step 1).") in line
    assert ("Fix: clipping: clip=global_norm=1 was stable at lr 1; or normalized-x100 and focal "
            "were stable at lr 1, where x100 failed; or a lower learning rate: x100 was stable "
            "at lr 0.1.") in line


def test_explains_failures_the_learning_rate_causes_in_one_sentence() -> None:
    results = [
        make_result(Outcome.STABLE, cw="none", lr=0.01),
        make_result(Outcome.DIVERGED, cw="none", lr=0.1, evidence={"step": 2, "peak_loss": 56.8}),
        make_result(Outcome.STABLE, cw="x100", lr=0.01),
        make_result(Outcome.DIVERGED, cw="x100", lr=0.1, evidence={"step": 2}),
        make_result(Outcome.DIVERGED, cw="x100", lr=0.1, clip="global_norm=1",
                    evidence={"step": 2}),
        make_result(Outcome.DIVERGED, cw="none", lr=0.1, clip="global_norm=1",
                    evidence={"step": 3}),
    ]
    line = said(make_report(results))[0]
    assert line == (
        "lr 0.1 diverged for every weighting, with and without clipping (4 probes) "
        "Where: cw=none,lr=0.1,clip=none,bs=32: the loss diverged from step 2 "
        "(it reached 56.8). Fix: a lower learning rate: none and x100 were stable at lr 0.01. "
        "Not a fix: clip=global_norm=1 did not rescue lr 0.1.")


def test_memory_section_shows_a_revised_forecast_beside_the_one_that_was_verified() -> None:
    rejected = MemoryPoint(2560, 1950 * MiB, False, "oom_host", "verify:cw=none,bs=2560")
    memory = dataclasses.replace(ladder(verified_fits=True), rejected=(rejected,),
                                 fit_method="top_segment")
    text = " ".join(render(dataclasses.replace(make_report(MEMORY_GRID), memory=memory),
                           width=200).split())
    assert "budget 2.0 GiB, cgroup-v2" in text  # once, in the title: not in every row
    assert "2560 1.9 GiB forecast revised: oom_host forecast check" in text
    assert "2048 1.8 GiB fits: forecast verified forecast check" in text
    assert ("an earlier forecast, batch 2560, was checked and did not fit (oom_host at "
            "1.9 GiB): it was revised downward") in text
    assert "grows faster than linearly: 819.2 KiB per sample between the two largest" in text
    # the rejected forecast survives the JSON round trip
    assert MemoryReport.from_json(memory.to_json()) == memory


def test_a_memory_search_probe_that_ran_out_is_not_named_as_exhausted() -> None:
    rung = make_result(Outcome.OOM_HOST, bs=8192)
    rung = dataclasses.replace(rung, run=dataclasses.replace(
        rung.run, probe=dataclasses.replace(rung.probe, id="verify:" + rung.probe.id)))
    advice = said(make_report([*MEMORY_GRID, rung]))
    assert advice[0].startswith("batch size 4096 exhausted host memory (1 probe)")
    assert advice[0].endswith("Fix: the largest batch size that ran was 32.")


def test_a_batch_larger_than_the_training_sample_is_said_once(tmp_path):
    from stabcheck.judge.gate import parse_fail_on
    from stabcheck.report.markdown import render_markdown

    def capped(result: ProbeResult) -> ProbeResult:
        settings = dataclasses.replace(result.probe.settings, effective_batch_size=489)
        probe = dataclasses.replace(result.probe, settings=settings)
        return dataclasses.replace(result, run=dataclasses.replace(result.run, probe=probe))

    report = make_report([
        make_result(Outcome.STABLE, bs=32),
        capped(make_result(Outcome.STABLE, bs=16384)),
        capped(make_result(Outcome.NON_FINITE, bs=16384, lr=1.0)),
    ])
    note = "batch 16384 is larger than the 489 training samples: probed as 489, as fit would"
    text = render(report)
    assert text.count(note) == 1 and "batch 32 is larger" not in text
    assert render_markdown(report, summarize(report), parse_fail_on(["numerical"])).count(note) == 1
    from tests.conftest import validate_result

    data = validate_result(report, tmp_path)
    settings = [p["settings"] for p in data["probes"]]
    assert [s.get("effective_batch_size") for s in settings] == [None, 489, 489]
    assert "effective_batch_size" not in settings[0]
    from stabcheck.run.resultio import load_report

    write_json(report, summarize(report), tmp_path / "r.json")
    assert text.count(note) == render(load_report(tmp_path / "r.json")).count(note) == 1
