"""The terminal report and the JSON result file: display only.

The core computes and never prints; this module (and the CLI) turn a ``RunReport`` into
what people and machines read:

- ``render_report``: the rich terminal report (data set, the grid of verdicts per batch
  size, one section per kind of failure, what to do). It reads as well in a CI log
  (no colours, no terminal) as in a terminal.
- ``write_json``: the strict-JSON result of the contract, written atomically.
- ``load_schema``: the JSON Schema of that result, kept in the package.
- ``recommendations`` and ``summary_counts``: pure functions behind "What to do".
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stabcheck.results import Category, Outcome, ProbeResult, RunReport, Termination
from stabcheck.thresholds import DEFAULT_THRESHOLDS
from stabcheck.units import human_bytes

__all__ = [
    "human_bytes",
    "load_schema",
    "numerical_explanations",
    "quality_results",
    "recommendations",
    "recommended_configuration",
    "render_report",
    "sparkline",
    "strategy_summary",
    "summary_counts",
    "where_it_failed",
    "write_json",
]

SCHEMA_RESOURCE = "result_schema.json"

# The short word each outcome shows in the grid, and its colour.
_CELLS: dict[Outcome, tuple[str, str]] = {
    Outcome.STABLE: ("ok", "green"),
    Outcome.NON_FINITE: ("NaN", "red"),
    Outcome.DIVERGED: ("diverged", "red"),
    Outcome.EXPLODING_GRADIENTS: ("explodes", "red"),
    Outcome.STALLED: ("stalled", "yellow"),
    Outcome.MINORITY_COLLAPSE: ("collapse", "yellow"),
    Outcome.OVERCORRECTED: ("overcorr", "yellow"),
    Outcome.OOM_HOST: ("OOM host", "magenta"),
    Outcome.OOM_GPU: ("OOM GPU", "magenta"),
    Outcome.CRASHED: ("crashed", "bold yellow"),
    Outcome.TIMEOUT: ("timeout", "bold yellow"),
    Outcome.ERROR: ("error", "dim"),
}

# Grid words that need a key below the grid.
_LEGEND: dict[Outcome, str] = {
    Outcome.NON_FINITE: "NaN = a non-finite loss, gradient or weight",
    Outcome.EXPLODING_GRADIENTS: "explodes = exploding gradients",
    Outcome.MINORITY_COLLAPSE: "collapse = minority class ignored",
    Outcome.OVERCORRECTED: "overcorr = overcorrected by the class weights",
}

_MISSING = "·"

# Failure sections, in the order the report shows them.
_SECTIONS: tuple[tuple[Category, str, str], ...] = (
    (Category.NUMERICAL, "Numerical failures", "bold red"),
    (Category.MEMORY, "Memory exhaustion", "bold magenta"),
    (Category.CRASH, "Crashes and timeouts", "bold yellow"),
    (Category.LEARNING, "Learning problems", "bold yellow"),
    (Category.ERROR, "Errors", "bold"),
)

# The words of the count line, in its order.
_COUNT_WORDS: tuple[tuple[Category, str], ...] = (
    (Category.OK, "stable"),
    (Category.NUMERICAL, "numerical"),
    (Category.MEMORY, "memory"),
    (Category.CRASH, "crash"),
    (Category.LEARNING, "learning"),
    (Category.ERROR, "error"),
)

# Categories whose probes trained at least one step within memory.
_RAN = (Category.OK, Category.NUMERICAL, Category.LEARNING)

# More classes than this and the class table shows only its head, its tail and min/max.
_MAX_CLASS_ROWS = 12
_CLASS_HEAD = 5

_Key = tuple[str, float, str, int]  # class_weight, learning_rate, clip, batch_size


# --------------------------------------------------------------------------- helpers


def summary_counts(results: Iterable[ProbeResult]) -> dict[Category, int]:
    """How many results fall in each category; every category is present, zero or not."""
    counts = {category: 0 for category in Category}
    for result in results:
        counts[result.verdict.category] += 1
    return counts


def _key(result: ProbeResult) -> _Key:
    s = result.probe.settings
    return (s.class_weight, s.learning_rate, s.clip, s.batch_size)


def _unique(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats, in the order they first appear."""
    return list(dict.fromkeys(values))


def _by_key(results: Iterable[ProbeResult]) -> dict[_Key, ProbeResult]:
    table: dict[_Key, ProbeResult] = {}
    for result in results:
        table.setdefault(_key(result), result)
    return table


def _is_stable(result: ProbeResult | None) -> bool:
    return result is not None and result.verdict.outcome is Outcome.STABLE


def _fmt_lr(lr: float) -> str:
    return f"{lr:g}"


def _fmt_number(value: float | None) -> str:
    """A weight or ratio in at most a few characters: 0.55, 5, 12.5, 1000, 12,345."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _join(names: Sequence[str]) -> str:
    return ", ".join(names)


def _step_suffix(result: ProbeResult) -> str:
    """``"@37"`` for a failure whose evidence names the step it happened at."""
    if result.verdict.category in (Category.OK, Category.LEARNING, Category.ERROR):
        return ""
    step = result.verdict.evidence.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        return f"@{step}"
    return ""


_BARS = "▁▂▃▄▅▆▇█"
_BROKEN = "×"
SPARK_WIDTH = 8
# A sparkline spans at least a factor 2 of loss: a flat or barely moving curve stays a
# flat line in the middle instead of its noise being stretched over all eight levels.
_MIN_SPAN = math.log10(2.0)


def sparkline(losses: Sequence[float | None], width: int = SPARK_WIDTH,
              broken: bool = False) -> str:
    """A loss history as ``width`` block characters on a log scale, oldest first.

    The history is cut into ``width`` equal runs of steps, each shown by its geometric
    mean, scaled from the lowest to the highest of them (at least a factor 2 apart).
    A history that reaches NaN, Inf or ``None`` (a non-finite value in the JSON) ends
    in ``×`` after its finite part, as does any history with ``broken`` set (a probe whose
    gradient or weight turned non-finite while its loss was still finite).

    Args:
        losses: the loss per step.
        width: characters, ``×`` included; fewer when there are fewer steps.
        broken: end in ``×`` even when every loss is finite.

    Returns:
        The sparkline, e.g. ``"█▆▄▃▂▂▁▁"`` or ``"▁▁▂▃▅▇×"``; ``""`` without any step.
    """
    finite: list[float] = []
    for value in losses:
        if value is None or not math.isfinite(value):
            broken = True
            break
        finite.append(float(value))
    bars = width - 1 if broken else width
    if not finite or bars < 1:
        return _BROKEN if broken else ""
    positive = [v for v in finite if v > 0]
    floor = min(positive) / 10 if positive else 1.0  # a zero loss shows below the rest
    logs = [math.log10(max(v, floor)) for v in finite]
    n = min(bars, len(logs))
    means = []
    for i in range(n):
        chunk = logs[i * len(logs) // n: (i + 1) * len(logs) // n]
        means.append(sum(chunk) / len(chunk))
    low, high = min(means), max(means)
    span = max(high - low, _MIN_SPAN)
    base = (low + high) / 2 - span / 2
    top = len(_BARS) - 1
    line = "".join(_BARS[min(top, max(0, round((m - base) / span * top)))] for m in means)
    return line + (_BROKEN if broken else "")


def _spark(result: ProbeResult) -> str:
    losses = [s.loss for s in result.run.steps]
    return sparkline(losses, broken=result.verdict.outcome is Outcome.NON_FINITE and bool(losses))


def _cell(result: ProbeResult | None) -> Text:
    """The verdict word (and the step of a failure) over the probe's loss sparkline."""
    if result is None:
        return Text(_MISSING, style="dim")
    word, style = _CELLS[result.verdict.outcome]
    suffix = _step_suffix(result)
    text = Text(f"{word} {suffix}" if suffix else word, style=style)
    spark = _spark(result)
    if spark:
        text.append("\n" + spark, style=style.replace("bold ", ""))
    return text


# --------------------------------------------------------------------------- header


def _describe_devices(devices: Any) -> str:
    if not isinstance(devices, (list, tuple)) or not devices:
        return ""
    names = []
    for device in devices:
        if isinstance(device, dict):
            name = device.get("name") or device.get("device_type") or device.get("kind")
            names.append(str(name) if name else json.dumps(device, default=str))
        else:
            names.append(str(device))
    return _join(names)


def _header(report: RunReport) -> Table:
    data = report.dataset
    env = report.environment
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("data set", Text(data.source))
    grid.add_row(
        "samples",
        Text(f"{data.n_samples:,} of {data.n_total:,} for probing, {data.n_holdout:,} held out"),
    )
    shape = "(" + ", ".join("None" if d is None else str(d) for d in data.input_shape)
    shape += ",)" if len(data.input_shape) == 1 else ")"
    grid.add_row("input", Text(f"shape {shape}, {data.label_format} labels"))
    env_parts = [str(env["backend"])] if env.get("backend") else []
    devices = _describe_devices(env.get("devices"))
    if devices:
        env_parts.append(devices)
    if env.get("host_memory_bytes") is not None:
        env_parts.append(f"host memory {human_bytes(env['host_memory_bytes'])}")
    if env.get("memory_enforcement"):
        env_parts.append(f"memory budget enforced by {env['memory_enforcement']}")
    if env_parts:
        grid.add_row("environment", Text(", ".join(env_parts)))
    return grid


def _class_table(report: RunReport) -> Table | None:
    data = report.dataset
    if not data.class_names:
        return None
    strategies = list(report.class_weight_table)
    total = sum(data.class_counts) or 1

    def weight(strategy: str, name: str) -> float | None:
        weights = report.class_weight_table[strategy]
        return 1.0 if weights is None else weights.get(name)

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("class", overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for strategy in strategies:
        table.add_column(strategy, justify="right")

    def add_class(index: int) -> None:
        name = data.class_names[index]
        count = data.class_counts[index]
        table.add_row(
            Text(name),
            f"{count:,}",
            f"{100 * count / total:.1f}%",
            *(_fmt_number(weight(s, name)) for s in strategies),
        )

    n = len(data.class_names)
    if n <= _MAX_CLASS_ROWS:
        for index in range(n):
            add_class(index)
        return table
    for index in range(_CLASS_HEAD):
        add_class(index)
    table.add_row("…", "…", "…", *("…" for _ in strategies))
    for index in range(n - _CLASS_HEAD, n):
        add_class(index)
    table.add_section()
    columns: list[list[float | None]] = [[float(c) for c in data.class_counts]]
    columns += [[weight(s, name) for name in data.class_names] for s in strategies]
    lows, highs, ratios = [], [], []
    for values in columns:
        present = [v for v in values if v is not None]
        low = min(present) if present else None
        high = max(present) if present else None
        lows.append(_fmt_number(low))
        highs.append(_fmt_number(high))
        ratio = high / low if low and high is not None and low > 0 else None
        ratios.append("—" if ratio is None else f"{_fmt_number(ratio)}×")
    style = "dim"
    table.add_row(Text("min", style), lows[0], "", *lows[1:])
    table.add_row(Text("max", style), highs[0], "", *highs[1:])
    table.add_row(Text("max/min", style), ratios[0], "", *ratios[1:])
    return table


# --------------------------------------------------------------------------- grid


def _grid_tables(report: RunReport) -> list[Table]:
    results = report.results
    cells = _by_key(results)
    strategies = _unique(r.probe.settings.class_weight for r in results)
    columns = _unique((r.probe.settings.learning_rate, r.probe.settings.clip) for r in results)
    batch_sizes = _unique(r.probe.settings.batch_size for r in results)
    tables = []
    for batch_size in batch_sizes:
        table = Table(
            title=f"batch size {batch_size}",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("class weight", overflow="fold")
        for lr, clip in columns:
            table.add_column(f"lr {_fmt_lr(lr)}\n{_short_clip(clip)}", justify="center",
                             overflow="fold")
        for strategy in strategies:
            row = [cells.get((strategy, lr, clip, batch_size)) for lr, clip in columns]
            table.add_row(Text(strategy), *(_cell(result) for result in row))
        tables.append(table)
    return tables


_CLIP_WORDS = {"global_norm": "gnorm", "norm": "norm", "value": "value"}


def _short_clip(clip: str) -> str:
    """A grid header's clip label: ``no clip``, ``gnorm 1``, ``norm 0.5``, ``value 1``."""
    kind, _, value = clip.partition("=")
    return "no clip" if clip == "none" else f"{_CLIP_WORDS.get(kind, kind)} {value}"


def _legend(report: RunReport) -> Text | None:
    outcomes = {r.verdict.outcome for r in report.results}
    parts = [text for outcome, text in _LEGEND.items() if outcome in outcomes]
    if any(r.probe.settings.clip.startswith("global_norm=") for r in report.results):
        parts.append("gnorm = global_clipnorm")
    if any(_step_suffix(r) for r in report.results):
        parts.append("@N = at step N")
    cells = _by_key(report.results)
    full = (
        len({k[0] for k in cells}) * len({(k[1], k[2]) for k in cells}) * len({k[3] for k in cells})
    )
    if len(cells) < full:
        parts.append(f"{_MISSING} = not run")
    return Text("; ".join(parts), style="dim") if parts else None


# --------------------------------------------------------------------------- sections


def _memory_budget(result: ProbeResult) -> tuple[str, str]:
    """Budget and enforcement of a memory failure: from its evidence, else from the run."""
    evidence = result.verdict.evidence
    memory = result.run.memory
    gpu = result.verdict.outcome is Outcome.OOM_GPU
    budget = evidence.get("gpu_budget_bytes" if gpu else "budget_bytes")
    if budget is None and not gpu:
        budget = memory.budget_bytes
    enforcement = evidence.get("enforcement")
    if enforcement is None and not gpu:
        enforcement = memory.enforcement
    budget_text = human_bytes(budget) if isinstance(budget, int) else str(budget or "")
    return budget_text, str(enforcement or "")


_EVIDENCE_MIN_WIDTH = 30  # narrower than this and the sentence goes under the probe id


def _section(title: str, style: str, results: Sequence[ProbeResult], width: int) -> Table:
    """One row per failing probe; a memory section adds its peak GPU and budget columns.

    The probe id stays on one line (it is what to look up in the JSON). Where ``width``
    leaves the evidence column too narrow, the sentence goes under the id instead.
    """
    memory = results[0].verdict.category is Category.MEMORY
    budgets = [_memory_budget(r) for r in results] if memory else []
    show_gpu = memory and any(r.run.peak_gpu_bytes is not None for r in results)
    show_budget = any(b or e for b, e in budgets)
    peak_widths = [
        len("peak host"),
        *(len(human_bytes(r.run.memory.peak_host_bytes)) for r in results),
    ]
    fixed = [
        max(len(r.probe.id) for r in results),
        max(len(r.verdict.outcome.value) for r in results),
        max(peak_widths),
    ]
    if show_gpu:
        fixed.append(len("peak GPU"))
    if show_budget:
        fixed.append(max(len("budget"), *(max(len(b), len(e)) for b, e in budgets)))
    # As rich lays out a SIMPLE_HEAD table: a space of padding either side of each cell,
    # a divider between columns and an edge either side.
    n_columns = len(fixed) + 1
    columns_width = sum(fixed) + _EVIDENCE_MIN_WIDTH + 3 * n_columns + 1
    stacked = columns_width > width

    table = Table(
        title=f"{title} ({len(results)})",
        title_justify="left",
        title_style=style,
        box=box.SIMPLE_HEAD,
    )
    table.add_column(
        "probe / evidence" if stacked else "probe", overflow="fold", no_wrap=not stacked
    )
    table.add_column("outcome", no_wrap=True, overflow="fold")
    if not stacked:
        table.add_column("evidence", overflow="fold", min_width=_EVIDENCE_MIN_WIDTH)
    table.add_column("peak host", justify="right", no_wrap=True)
    if show_gpu:
        table.add_column("peak GPU", justify="right", no_wrap=True)
    if show_budget:
        table.add_column("budget", justify="right", no_wrap=True)
    for index, result in enumerate(results):
        outcome_style = _CELLS[result.verdict.outcome][1]
        probe = Text(result.probe.id)
        row: list[RenderableType] = []
        if stacked:
            evidence = Padding(Text(result.verdict.summary, style="italic"), (0, 0, 0, 2))
            row += [Group(probe, evidence), Text(result.verdict.outcome.value, style=outcome_style)]
        else:
            row += [
                probe,
                Text(result.verdict.outcome.value, style=outcome_style),
                Text(result.verdict.summary),
            ]
        row.append(human_bytes(result.run.memory.peak_host_bytes))
        if show_gpu:
            row.append(human_bytes(result.run.peak_gpu_bytes))
        if show_budget:
            budget, enforcement = budgets[index]
            cell = Text(budget or "—")
            if enforcement:
                cell.append(f"\n{enforcement}", style="dim")
            row.append(cell)
        table.add_row(*row)
    return table


# --------------------------------------------------------------------------- advice


def _is_remedy(strategy: str) -> bool:
    """``normalized``, ``normalized-<strategy>`` and ``focal``: remedies, not weightings."""
    return strategy == "focal" or strategy.startswith("normalized")


def _weight_spread(report: RunReport, strategy: str) -> float | None:
    """Largest over smallest class weight of a strategy (1 without weights; None unknown)."""
    if strategy not in report.class_weight_table:
        return None
    weights = report.class_weight_table[strategy]
    if weights is None:
        return 1.0
    values = [w for w in weights.values() if w > 0]
    return max(values) / min(values) if values else None


def _trained(result: ProbeResult | None) -> bool:
    """Trained to the end without numerical trouble (stable, or a learning problem)."""
    return result is not None and result.verdict.category in (Category.OK, Category.LEARNING)


def _numerical(result: ProbeResult | None) -> bool:
    return result is not None and result.verdict.category is Category.NUMERICAL


def _lrs(values: Iterable[float]) -> str:
    return ", ".join(_fmt_lr(v) for v in sorted(set(values)))


def _names_and(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _was(names: Sequence[str]) -> str:
    return "was" if len(names) == 1 else "were"


def where_it_failed(result: ProbeResult) -> str:
    """Where a numerical failure happened: the step, and the variable or operation.

    ``"NaN at step 8 in the loss, first produced by the Log op sgd/Log"``,
    ``"the loss diverged from step 2 (it reached 159)"``,
    ``"the gradient norm reached 2,221x its early median at step 18"``.
    """
    evidence = result.verdict.evidence
    step = evidence.get("step")
    at = f" at step {step}" if isinstance(step, int) and step > 0 else ""
    outcome = result.verdict.outcome
    if outcome is Outcome.NON_FINITE:
        value = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(
            str(evidence.get("value")), "a non-finite value")
        where, variable = evidence.get("where"), evidence.get("variable")
        place = (f" in the {variable} {where}" if variable and where
                 else f" in the {where}" if where else "")
        text = f"{value}{at}{place}"
        found = evidence.get("check_numerics")
        if isinstance(found, dict) and found.get("operation"):
            text += f", first produced by the {found.get('op_type', '')} op {found['operation']}"
        return text
    if outcome is Outcome.DIVERGED:
        peak = evidence.get("peak_loss")
        reached = f" (it reached {peak:.3g})" if isinstance(peak, (int, float)) else ""
        return f"the loss diverged{at.replace(' at ', ' from ')}{reached}"
    if outcome is Outcome.EXPLODING_GRADIENTS:
        ratio = evidence.get("ratio")
        times = (f"{_times(ratio)}x its early median" if isinstance(ratio, (int, float))
                 else "orders of magnitude above its early median")
        return f"the gradient norm reached {times}{at}"
    return result.verdict.summary


def _times(ratio: float) -> str:
    """A ratio for a sentence: ``12``, ``2,221``, ``1e+09``."""
    return f"{ratio:.0e}" if ratio >= 1e5 else _fmt_number(ratio)


def _pull(failures: Sequence[ProbeResult], under: bool = False) -> str:
    """The largest per-class gradient share among ``failures``, as a clause ("" if none)."""
    best: tuple[float, ProbeResult, dict[str, Any]] | None = None
    for result in failures:
        shares = result.verdict.evidence.get("class_gradients")
        if isinstance(shares, dict) and isinstance(shares.get("ratio"), (int, float)):
            if best is None or shares["ratio"] > best[0]:
                best = (shares["ratio"], result, shares)
    if best is None:
        return ""
    ratio, result, shares = best
    prefix = f"under {result.probe.settings.class_weight} " if under else ""
    return (f"{prefix}class {shares['rarest']} pulls {_times(ratio)}x as hard as class "
            f"{shares['most_common']} (gradient norm at step {shares['step']})")


def _large_pull(failures: Sequence[ProbeResult], ratio: float = 10.0) -> bool:
    return any(
        isinstance(s := r.verdict.evidence.get("class_gradients"), dict)
        and isinstance(s.get("ratio"), (int, float)) and s["ratio"] >= ratio
        for r in failures
    )


class _Grid:
    """The probes of a run indexed by their settings, for comparisons between twins."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.results = [r for r in report.results if r.verdict.evidence.get("ran") is not False]
        self.cells = _by_key(self.results)
        self.strategies = _unique(r.probe.settings.class_weight for r in self.results)
        self.clips = _unique(r.probe.settings.clip for r in self.results)
        self.lrs = sorted(set(r.probe.settings.learning_rate for r in self.results))

    def get(self, cw: str, lr: float, clip: str, bs: int) -> ProbeResult | None:
        return self.cells.get((cw, lr, clip, bs))

    def milder(self, strategy: str) -> list[str]:
        """The probed weightings to compare a failure of ``strategy`` with: those (remedies
        excluded) with a smaller weight spread; for a remedy (``normalized``, ``focal``),
        the unweighted ones."""
        spread = _weight_spread(self.report, strategy)
        if spread is None:
            return []
        out = []
        for other in self.strategies:
            other_spread = _weight_spread(self.report, other)
            if other == strategy or _is_remedy(other) or other_spread is None:
                continue
            if (other_spread <= 1.0 + 1e-9) if _is_remedy(strategy) else other_spread < spread:
                out.append(other)
        return out

    def unweighted(self, strategy: str) -> bool:
        """No class weighting at all (``none``, or weights that are all equal)."""
        spread = _weight_spread(self.report, strategy)
        return spread is not None and spread <= 1.0 + 1e-9 and not _is_remedy(strategy)

    def next_lr(self, result: ProbeResult) -> ProbeResult | None:
        """The same settings at the next larger learning rate of the grid."""
        cw, lr, clip, bs = _key(result)
        larger = [x for x in self.lrs if x > lr]
        return self.get(cw, larger[0], clip, bs) if larger else None


def _cause(grid: _Grid, failure: ProbeResult) -> tuple[str, list[str]]:
    """Why a probe failed numerically, judged by its twins (the same learning rate, clip
    and batch size) with milder class weights.

    Returns ``("weights", [milder strategies that trained there])``; ``("lr", [unweighted
    strategies that failed there too])`` (``[]`` when the failing strategy itself has no
    class weighting, e.g. ``none``); or ``("unknown", [milder strategies that failed there
    too])`` when no twin tells the two apart.
    """
    cw, lr, clip, bs = _key(failure)
    if grid.unweighted(cw):
        return "lr", []
    milder = grid.milder(cw)
    trained = [o for o in milder if _trained(grid.get(o, lr, clip, bs))]
    if trained:
        return "weights", trained
    failed = [o for o in milder if _numerical(grid.get(o, lr, clip, bs))]
    unweighted = [o for o in failed if grid.unweighted(o)]
    if unweighted:
        return "lr", unweighted
    return "unknown", failed


def _clip_fixes(grid: _Grid, failures: Sequence[ProbeResult]) -> tuple[list[str], list[str]]:
    """(fixes, notes): the clips that were stable where ``failures`` failed; else what the
    clipped twins did instead (failed too, or trained with a learning problem)."""
    rescued: dict[str, list[float]] = {}
    other_fate: dict[tuple[str, str], list[float]] = {}
    for failure in failures:
        cw, lr, clip, bs = _key(failure)
        for other in grid.clips:
            twin = grid.get(cw, lr, other, bs)
            if other in (clip, "none") or twin is None:
                continue
            if _is_stable(twin):
                rescued.setdefault(other, []).append(lr)
            else:
                fate = ("did not rescue lr {}" if _numerical(twin) else
                        f"trained at lr {{}} but {twin.verdict.outcome.value.replace('_', ' ')}")
                other_fate.setdefault((other, fate), []).append(lr)
    fixes = [f"clipping: clip={clip} was stable at lr {_lrs(at)}" for clip, at in rescued.items()]
    notes = [] if rescued else [
        f"clip={clip} " + fate.format(_lrs(at)) for (clip, fate), at in other_fate.items()
    ]
    return fixes, notes


def _lower_lr(grid: _Grid, failures: Sequence[ProbeResult]) -> ProbeResult | None:
    """The stable probe of the same strategy at the largest learning rate below the
    failures (unclipped preferred at the same rate)."""
    cw = _key(failures[0])[0]
    lowest = min(_key(f)[1] for f in failures)
    lower = [r for r in grid.results if _key(r)[0] == cw and _key(r)[1] < lowest
             and _is_stable(r)]
    if not lower:
        return None
    return max(lower, key=lambda r: (r.probe.settings.learning_rate,
                                     r.probe.settings.clip == "none"))


def _lr_and_clip(result: ProbeResult) -> str:
    clip = result.probe.settings.clip
    return f"lr {_fmt_lr(result.probe.settings.learning_rate)}" + (
        f" with clip={clip}" if clip != "none" else "")


def _lower_lr_fix(grid: _Grid, failures: Sequence[ProbeResult]) -> str | None:
    """The largest learning rate below the failures at which the strategy was stable."""
    lower = _lower_lr(grid, failures)
    if lower is None:
        return None
    return f"a lower learning rate: {lower.probe.settings.class_weight} was stable at " \
           f"{_lr_and_clip(lower)}"


def _remedy_fix(grid: _Grid, failures: Sequence[ProbeResult]) -> str | None:
    """``normalized``/``focal`` probes that were stable where ``failures`` failed."""
    cw = _key(failures[0])[0]
    found: dict[str, list[float]] = {}
    for failure in failures:
        _, lr, clip, bs = _key(failure)
        for other in grid.strategies:
            if _is_remedy(other) and other != cw and _is_stable(grid.get(other, lr, clip, bs)):
                found.setdefault(other, []).append(lr)
    if not found:
        return None
    names = list(found)
    at = _lrs(lr for lrs in found.values() for lr in lrs)
    return f"{_names_and(names)} {_was(names)} stable at lr {at}, where {cw} failed"


def _milder_fix(grid: _Grid, failures: Sequence[ProbeResult]) -> str | None:
    cw = _key(failures[0])[0]
    stable = [o for o in grid.milder(cw)
              if any(_is_stable(grid.get(o, *_key(f)[1:])) for f in failures)]
    if not stable:
        return None
    return (f"milder weights: {_names_and(stable)} {_was(stable)} stable at the same learning "
            "rate, clip and batch size")


def _first_failure(failures: Sequence[ProbeResult]) -> ProbeResult:
    """The failure at the smallest learning rate (the edge of the stable region)."""
    return min(failures, key=lambda r: r.probe.settings.learning_rate)


def _fix_sentence(fixes: Sequence[str], notes: Sequence[str], remedies_probed: bool) -> str:
    """``Fix: A; or B. Not a fix: C.``, or what to probe when the grid holds no fix."""
    not_a_fix = f" Not a fix: {'; '.join(notes)}." if notes else ""
    if fixes:
        return "Fix: " + "; or ".join(fixes) + "." + not_a_fix
    text = "Fix: nothing in this grid rescued it: probe lower learning rates (--lr) and a clip " \
           "(--clip global_norm=1.0)"
    if not remedies_probed:
        text += ", or the normalized and focal strategies (--class-weight normalized,focal)"
    return text + "." + not_a_fix


def _lr_bullet(grid: _Grid, failures: Sequence[ProbeResult]) -> str:
    """One sentence for the failures that happened whatever the class weighting."""
    lrs = sorted(set(r.probe.settings.learning_rate for r in failures))
    strategies = _unique(r.probe.settings.class_weight for r in failures)
    clipped = {r.probe.settings.clip for r in failures}
    with_clip = ", with and without clipping" if len(clipped) > 1 and "none" in clipped else ""
    first = _first_failure(failures)
    count = f" ({_plural(len(failures), 'probe')})" if len(failures) > 1 else ""
    text = (f"lr {_lrs(lrs)} {'is' if len(lrs) == 1 else 'are'} too high for this model and "
            f"optimizer, whatever the class weighting: class_weight={_names_and(strategies)} "
            f"failed numerically there{with_clip}{count}. Where: {first.probe.id}: "
            f"{where_it_failed(first)}.")
    pull = _pull(failures, under=True)
    if pull and _large_pull(failures, 2.0):
        text += f" The class weights add to it: {pull}."
    fixes: list[str] = []
    notes: list[str] = []
    stable_at: dict[str, list[str]] = {}
    for cw in strategies:
        mine = [r for r in failures if r.probe.settings.class_weight == cw]
        lower = _lower_lr(grid, mine)
        if lower is not None:
            stable_at.setdefault(_lr_and_clip(lower), []).append(cw)
        clip_fixes, clip_notes = _clip_fixes(grid, mine)
        fixes += [f"{f} ({cw})" for f in clip_fixes]
        notes += clip_notes
    if stable_at:
        fixes.insert(0, "a lower learning rate: " + "; ".join(
            f"{_names_and(names)} {_was(names)} stable at {where}"
            for where, names in stable_at.items()))
    return f"{text} {_fix_sentence(fixes, _unique(notes), True)}"


def _weights_bullet(grid: _Grid, failures: Sequence[ProbeResult], cause: str,
                    twins: Sequence[str]) -> str:
    """One sentence for a strategy's failures that its milder twins did not have
    (``cause`` "weights", ``twins``: those that trained) or that no twin can judge
    ("unknown", ``twins``: the milder ones that failed too)."""
    cw = failures[0].probe.settings.class_weight
    lrs = sorted(set(r.probe.settings.learning_rate for r in failures))
    first = _first_failure(failures)
    count = f" ({_plural(len(failures), 'probe')})" if len(failures) > 1 else ""
    text = (f"class_weight={cw} failed numerically at lr {_lrs(lrs)}{count}: "
            f"{where_it_failed(first)}.")
    pull = _pull(failures)
    if cause == "weights":
        text += (f" Why: the class weights: class_weight={_names_and(list(twins))} trained "
                 "without numerical trouble at the same learning rate, clip and batch size")
        text += f", and {pull}." if pull else "."
    elif pull and _large_pull(failures):
        text += (f" Why: most likely the class weights: {pull}; probe class_weight=none at "
                 "the same learning rate to confirm.")
    else:
        also = (f" (the milder class_weight={_names_and(list(twins))} failed there too)"
                if twins else "")
        text += (f" Why: unclear from this grid{also}: probe class_weight=none at the same "
                 "learning rate to tell the learning rate and the class weights apart.")
    fixes, notes = _clip_fixes(grid, failures)
    for fix in (_remedy_fix(grid, failures), _lower_lr_fix(grid, failures),
                _milder_fix(grid, failures)):
        if fix is not None:
            fixes.append(fix)
    remedies_probed = any(_is_remedy(s) for s in grid.strategies)
    return f"{text} {_fix_sentence(fixes, notes, remedies_probed)}"


def numerical_explanations(report: RunReport) -> list[str]:
    """Where, why and what fixes it, for the run's numerical failures.

    Each failure is judged against its twins (the same learning rate, clip and batch size)
    with milder class weights: if one of them trained, the class weights are the cause;
    if the unweighted twin (``none``) failed too, or the failing strategy has no weights
    itself, the learning rate is; otherwise the grid cannot tell. The fixes are what the
    grid itself shows to work: a clipped twin, a ``normalized`` or ``focal`` twin, a lower
    learning rate, milder weights; and what was tried and did not work is said too.

    Returns:
        One sentence for the failures the learning rate explains (all strategies
        together), then one per strategy whose failures its weights explain.
    """
    grid = _Grid(report)
    failures = [r for r in grid.results if r.verdict.category is Category.NUMERICAL]
    by_lr: list[ProbeResult] = []
    by_strategy: dict[str, list[tuple[ProbeResult, str, list[str]]]] = {}
    for failure in failures:
        cause, others = _cause(grid, failure)
        if cause == "lr":
            by_lr.append(failure)
        else:
            by_strategy.setdefault(failure.probe.settings.class_weight, []).append(
                (failure, cause, others))
    advice = [_lr_bullet(grid, by_lr)] if by_lr else []
    for entries in by_strategy.values():
        weights = [e for e in entries if e[1] == "weights"]
        unknown = [e for e in entries if e[1] != "weights"]
        if weights:
            trained = _unique(o for _, _, others in weights for o in others)
            advice.append(_weights_bullet(grid, [e[0] for e in weights], "weights", trained))
        if unknown:
            failed = _unique(o for _, _, others in unknown for o in others)
            advice.append(_weights_bullet(grid, [e[0] for e in unknown], "unknown", failed))
    return advice


def _memory_advice(results: Sequence[ProbeResult]) -> list[str]:
    failures = [r for r in results if r.verdict.category is Category.MEMORY]
    if not failures:
        return []
    exhausted = sorted(set(r.probe.settings.batch_size for r in failures))
    kinds = {r.verdict.outcome for r in failures}
    where = (
        "host memory"
        if kinds == {Outcome.OOM_HOST}
        else "GPU memory"
        if kinds == {Outcome.OOM_GPU}
        else "memory (host and GPU)"
    )
    sizes = _join([str(b) for b in exhausted])
    text = f"batch size{'s' if len(exhausted) > 1 else ''} {sizes} exhausted {where}"
    ran = [r.probe.settings.batch_size for r in results if r.verdict.category in _RAN]
    if ran:
        text += f"; the largest batch size that ran was {max(ran)}"
    else:
        budget = "--gpu-memory-budget" if kinds == {Outcome.OOM_GPU} else "--memory-budget"
        text += f"; no batch size ran: try smaller batch sizes or a larger {budget}"
    return [text]


def _why_crashed(result: ProbeResult) -> str:
    evidence = result.verdict.evidence
    for key in ("signal", "signal_name"):
        if isinstance(evidence.get(key), str) and evidence[key]:
            return evidence[key]
    code = evidence.get("returncode", result.run.returncode)
    return f"exit code {code}" if code is not None else "no exit status"


def _crash_advice(results: Sequence[ProbeResult]) -> list[str]:
    crashed = [r for r in results if r.verdict.outcome is Outcome.CRASHED]
    timeouts = [r for r in results if r.verdict.outcome is Outcome.TIMEOUT]
    advice = [
        f"probe {r.probe.id} crashed ({_why_crashed(r)}): look at its stderr tail in the JSON"
        for r in crashed[:3]
    ]
    if len(crashed) > 3:
        advice.append(f"{_plural(len(crashed) - 3, 'more probe')} crashed: see the JSON")
    if len(timeouts) == 1:
        advice.append(f"probe {timeouts[0].probe.id} timed out: raise --timeout or lower --steps")
    elif timeouts:
        advice.append(f"{len(timeouts)} probes timed out: raise --timeout or lower --steps")
    return advice


def _learning_advice(results: Sequence[ProbeResult]) -> list[str]:
    def strategies(outcome: Outcome) -> str:
        return _join(
            _unique(r.probe.settings.class_weight for r in results if r.verdict.outcome is outcome)
        )

    outcomes = Counter(r.verdict.outcome for r in results)
    advice = []
    if outcomes[Outcome.OVERCORRECTED]:
        advice.append(
            f"class_weight={strategies(Outcome.OVERCORRECTED)} overcorrected (the rare classes "
            "are predicted far more often than they occur, at the common classes' expense): "
            "use a milder strategy such as sqrt or effective"
        )
    if outcomes[Outcome.MINORITY_COLLAPSE]:
        advice.append(
            f"with class_weight={strategies(Outcome.MINORITY_COLLAPSE)} the model ignores a "
            "minority class: weight the classes (balanced or sqrt)"
        )
    if outcomes[Outcome.STALLED]:
        n = outcomes[Outcome.STALLED]
        advice.append(
            f"{_plural(n, 'probe')} stalled (the loss did not move): the learning rate may be "
            "too low, or --steps too few"
        )
    return advice


def _error_advice(results: Sequence[ProbeResult]) -> list[str]:
    errors = [r for r in results if r.verdict.category is Category.ERROR]
    if not errors:
        return []
    first = errors[0]
    more = f" (and {_plural(len(errors) - 1, 'more probe')})" if len(errors) > 1 else ""
    return [f"probe {first.probe.id}{more} could not start: {first.verdict.summary}"]


def _count_line(results: Sequence[ProbeResult]) -> str:
    counts = summary_counts(results)
    parts = ", ".join(f"{counts[category]} {word}" for category, word in _COUNT_WORDS)
    return f"{_plural(len(results), 'probe')}: {parts}"


def recommendations(report: RunReport) -> list[str]:
    """What to do about the results, most urgent first; the last line counts the outcomes.

    Numerical failures come first, each explained by ``numerical_explanations``: where
    (step, variable or operation), why (the class weights or the learning rate, judged by
    the twins with milder weights) and what fixes it (what the grid shows to work).

    Args:
        report: the run to advise on.

    Returns:
        Plain sentences (no markup); the last one is always the count line
        ``"N probes: a stable, b numerical, c memory, d crash, e learning, f error"``.
    """
    results = report.results
    advice = (
        numerical_explanations(report)
        + _memory_advice(results)
        + _crash_advice(results)
        + _learning_advice(results)
        + _error_advice(results)
    )
    if not results:
        advice.append("no probe ran")
    elif all(r.verdict.outcome is Outcome.STABLE for r in results):
        advice.append(
            f"all {_plural(len(results), 'probe')} were stable: "
            "every setting in this grid trained without trouble"
            if len(results) > 1
            else "the probe was stable: this setting trained without trouble"
        )
    advice.append(_count_line(results))
    return advice


# --------------------------------------------------------------------------- quality


# The quality table shows at most this many probes, best first.
MAX_QUALITY_ROWS = 12


def _metrics(result: ProbeResult) -> dict[str, Any]:
    holdout = result.run.holdout
    return dict(holdout.metrics) if holdout is not None else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _macro_f1(result: ProbeResult) -> float | None:
    return _number(_metrics(result).get("macro_f1"))


def _minority_recall(result: ProbeResult, minority: int | None = None) -> float | None:
    """The recall of class ``minority`` (by default the metrics' own minority class)."""
    metrics = _metrics(result)
    recall = metrics.get("recall")
    if minority is not None and isinstance(recall, (list, tuple)) and minority < len(recall):
        return _number(recall[minority])
    return _number(metrics.get("minority_recall"))


def _class_name(report: RunReport, index: Any) -> str:
    names = report.dataset.class_names
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(names):
        return str(names[index])
    return str(index)


def _rarest_class(report: RunReport) -> int | None:
    """The class with the fewest training samples (ties: the lowest index)."""
    counts = report.dataset.class_counts
    present = [c for c in range(len(counts)) if counts[c] > 0]
    return min(present, key=lambda c: (counts[c], c)) if present else None


def quality_results(report: RunReport) -> list[ProbeResult]:
    """Probes that trained every step without numerical, memory or crash trouble and were
    evaluated on the held-out split, best macro-F1 first (then grid order)."""
    found = [
        r for r in report.results
        if r.verdict.category in (Category.OK, Category.LEARNING)
        and r.run.termination is Termination.COMPLETED
        and r.run.holdout is not None and r.run.holdout.n
    ]
    return sorted(found, key=lambda r: -(_macro_f1(r) if _macro_f1(r) is not None else -1.0))


def _share(counts: Sequence[int], index: int) -> float | None:
    total = sum(counts)
    return counts[index] / total if total and index < len(counts) else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _short_pct(value: float | None) -> str:
    """A share in at most four characters and a sign: ``0.8%``, ``12%``, ``100%``."""
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if value < 0.1 else f"{100 * value:.0f}%"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _break_id(probe_id: str, width: int) -> str:
    """A probe id on lines of at most ``width`` characters, broken after commas: on two
    lines as even as possible where two suffice, else filling each line in turn."""
    if len(probe_id) <= width:
        return probe_id
    cuts = [i + 1 for i, char in enumerate(probe_id) if char == ","]
    fits = [c for c in cuts if max(c, len(probe_id) - c) <= width]
    if fits:
        cut = min(fits, key=lambda c: max(c, len(probe_id) - c))
        return probe_id[:cut] + "\n" + probe_id[cut:]
    lines, line = [], ""
    for part in probe_id.split(","):
        piece = part if not line else "," + part
        if line and len(line) + len(piece) + 1 > width:  # +1: the comma ends the line
            lines.append(line + ",")
            line = part
        else:
            line += piece
    lines.append(line)
    return "\n".join(lines)


def _quality_table(report: RunReport, width: int) -> tuple[Table, int] | None:
    """The per-class quality of the probes that trained: (table, probes left out).

    The probe ids stay whole where the console is wide enough, else they break after a
    comma (``cw=balanced,lr=0.01,`` / ``clip=global_norm=1,bs=32``).
    """
    results = quality_results(report)
    if not results:
        return None
    shown = results[:MAX_QUALITY_ROWS]
    rarest = _rarest_class(report)
    binary = len(report.dataset.class_names) == 2
    name = _class_name(report, rarest)
    rows = []
    for result in shown:
        holdout = result.run.holdout
        assert holdout is not None
        cells = [_CELLS[result.verdict.outcome][0], _pct(holdout.accuracy),
                 _score(_macro_f1(result)), _score(_minority_recall(result, rarest))]
        if binary:
            cells.append(_score(_number(_metrics(result).get("pr_auc"))))
        share = "—"
        if rarest is not None:
            share = (f"{_short_pct(_share(holdout.pred_counts, rarest))}/"
                     f"{_short_pct(_share(holdout.true_counts, rarest))}")
        cells.append(share)
        rows.append((result, cells))

    def room(columns: list[str]) -> int:
        """What is left for the probe ids beside ``columns`` (as rich lays out SIMPLE_HEAD:
        a space of padding either side of each cell, a divider between columns, edges)."""
        widths = [max(len(line) for cell in [head, *(r[1][i] for r in rows)]
                      for line in cell.split("\n"))
                  for i, head in enumerate(columns)]
        return width - sum(widths) - 3 * (len(columns) + 1) - 1

    recall_head, share_head = f"class {name}\nrecall", f"class {name}\npred/true"
    columns = ["verdict", "accuracy", "macro-F1", recall_head,
               *(["PR-AUC"] if binary else []), share_head]
    if room(columns) < max(len(r.probe.id) for r in shown):  # short headers, then
        columns = ["verdict", "acc.", "macro\nF1", recall_head,
                   *(["PR\nAUC"] if binary else []), share_head]
    longest_part = max(len(part) + 1 for r in shown for part in r.probe.id.split(","))
    id_width = max(room(columns), longest_part, len("probe"))

    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("probe", no_wrap=True)
    for index, head in enumerate(columns):
        table.add_column(head, justify="left" if index == 0 else "right", no_wrap=True)
    for result, cells in rows:
        style = _CELLS[result.verdict.outcome][1]
        table.add_row(Text(_break_id(result.probe.id, id_width)), Text(cells[0], style=style),
                      *cells[1:])
    return table, len(results) - len(shown)


def _quality_note(report: RunReport) -> Text | None:
    rarest = _rarest_class(report)
    if rarest is None:
        return None
    name = _class_name(report, rarest)
    text = (f"class {name}: the rarest class; pred/true: its share of the held-out predictions "
            "and of the held-out samples")
    if len(report.dataset.class_names) == 2:
        text += f"; PR-AUC: average precision of class {_class_name(report, 1)}"
    return Text(text, style="dim")


# --------------------------------------------------------------------------- recommendation


def _settings_text(result: ProbeResult, batch: bool = True) -> str:
    s = result.probe.settings
    text = f"lr {_fmt_lr(s.learning_rate)}, {_short_clip(s.clip)}"
    return text + (f", bs {s.batch_size}" if batch else "")


def strategy_summary(report: RunReport) -> list[dict[str, Any]]:
    """Per class-weight strategy: the largest stable learning rate, whether clipping rescued
    its unclipped numerical failures, and its best stable probe by macro-F1.

    Returns:
        One JSON-safe dict per strategy, in grid order, with keys ``class_weight``,
        ``probes``, ``stable``, ``numerical``, ``largest_stable_lr`` (None if never
        stable), ``clip_rescued`` / ``clip_tried`` (unclipped numerical failures whose
        clipped twin was stable / was probed at all), ``rescuing_clips`` and ``best``
        (``{"probe_id", "macro_f1", "minority_recall"}`` or None).
    """
    grid = _Grid(report)
    rarest = _rarest_class(report)
    out = []
    for strategy in grid.strategies:
        mine = [r for r in grid.results if r.probe.settings.class_weight == strategy]
        stable = [r for r in mine if _is_stable(r)]
        numerical = [r for r in mine if _numerical(r)]
        tried, rescued, clips = 0, 0, []
        for failure in numerical:
            cw, lr, clip, bs = _key(failure)
            if clip != "none":
                continue
            twins = [(c, grid.get(cw, lr, c, bs)) for c in grid.clips if c != "none"]
            twins = [(c, t) for c, t in twins if t is not None]
            if twins:
                tried += 1
                good = [c for c, t in twins if _is_stable(t)]
                rescued += bool(good)
                clips += good
        best = _best_stable(stable, rarest)
        out.append({
            "class_weight": strategy,
            "probes": len(mine),
            "stable": len(stable),
            "numerical": len(numerical),
            "largest_stable_lr": max((r.probe.settings.learning_rate for r in stable),
                                     default=None),
            "clip_rescued": rescued,
            "clip_tried": tried,
            "rescuing_clips": _unique(clips),
            "best": None if best is None else {
                "probe_id": best.probe.id, "macro_f1": _macro_f1(best),
                "minority_recall": _minority_recall(best, rarest)},
        })
    return out


def _best_stable(stable: Sequence[ProbeResult], minority: int | None) -> ProbeResult | None:
    """The best by macro-F1, then minority recall (grid order breaks ties)."""
    if not stable:
        return None

    def key(r: ProbeResult) -> tuple[float, float]:
        f1, recall = _macro_f1(r), _minority_recall(r, minority)
        return (f1 if f1 is not None else -1.0, recall if recall is not None else -1.0)

    return max(stable, key=key)


def _tolerance(report: RunReport) -> float:
    """``recommend_f1_tolerance`` as the run was configured (``[thresholds]``)."""
    value = (report.config.get("thresholds") or {}).get("recommend_f1_tolerance")
    number = _number(value)
    return number if number is not None else DEFAULT_THRESHOLDS.recommend_f1_tolerance


def _risk(grid: _Grid, result: ProbeResult) -> tuple[int, ProbeResult | None]:
    """0: its next larger learning rate trained (or there is none); 1: that one failed
    numerically but this setting clips; 2: it failed and this setting does not clip."""
    neighbour = grid.next_lr(result)
    if not _numerical(neighbour):
        return 0, neighbour
    return (1 if result.probe.settings.clip != "none" else 2), neighbour


def _word(result: ProbeResult) -> str:
    """``diverged @2``, ``NaN @8``, ``overcorrected``: an outcome in a few characters."""
    suffix = _step_suffix(result)
    word = result.verdict.outcome.value.replace("_", " ")
    return f"{word} {suffix}" if suffix else word


def recommended_configuration(report: RunReport) -> dict[str, Any] | None:
    """The one configuration to train with, and the evidence for it; None if nothing was
    stable.

    Among the stable probes, those within ``recommend_f1_tolerance`` of the best held-out
    macro-F1 are equally good; of those, the one with the least risk next to it in the grid
    (its next larger learning rate failed numerically: worse without a clip) and then the
    highest minority recall is chosen; grid order breaks ties.

    Returns:
        A JSON-safe dict: ``probe_id``, ``class_weight``, ``learning_rate``, ``clip``,
        ``batch_size``, ``macro_f1``, ``minority_recall``, ``minority_class``,
        ``accuracy``, ``pr_auc``, ``stable_probes`` (how many were stable), ``reasons``
        (sentences) and ``rejected`` (``[{"probe_id", "reason"}]``: the better-scoring or
        riskier neighbours passed over, and why).
    """
    grid = _Grid(report)
    stable = [r for r in grid.results if _is_stable(r)]
    if not stable:
        return None
    tolerance = _tolerance(report)
    scored = [r for r in stable if _macro_f1(r) is not None]
    best_f1 = max((_macro_f1(r) or 0.0) for r in scored) if scored else None
    pool = stable if best_f1 is None else [
        r for r in scored if (_macro_f1(r) or 0.0) >= best_f1 - tolerance - 1e-12]
    order = {id(r): i for i, r in enumerate(grid.results)}
    minority = _rarest_class(report)

    def rank(r: ProbeResult) -> tuple[int, float, float, int]:
        recall, f1 = _minority_recall(r, minority), _macro_f1(r)
        return (_risk(grid, r)[0], -(recall if recall is not None else -1.0),
                -(f1 if f1 is not None else -1.0), order[id(r)])

    chosen = min(pool, key=rank)
    s = chosen.probe.settings
    metrics = _metrics(chosen)
    f1, recall = _macro_f1(chosen), _minority_recall(chosen, minority)
    reasons: list[str] = []
    if f1 is not None and best_f1 is not None:
        if f1 >= best_f1 - 1e-12:
            reasons.append("the only stable setting" if len(stable) == 1 else
                           f"the best held-out macro-F1 ({f1:.2f}) of the {len(stable)} "
                           "stable settings")
        else:
            reasons.append(f"macro-F1 {f1:.2f}, within {tolerance:g} of the best ({best_f1:.2f}) "
                           f"of the {len(stable)} stable settings")
    else:
        reasons.append("the only stable setting" if len(stable) == 1 else
                       f"the first of the {len(stable)} stable settings (no held-out metrics "
                       "to rank them by)")
    if recall is not None:
        reasons.append(f"minority recall {recall:.2f} (class {_class_name(report, minority)})")
    risk, neighbour = _risk(grid, chosen)
    if neighbour is None:
        reasons.append("no larger learning rate was probed: its margin is unknown")
    elif risk == 0:
        reasons.append(f"lr {_fmt_lr(neighbour.probe.settings.learning_rate)} with the same "
                       f"settings trained without numerical trouble too ({_word(neighbour)}): "
                       "a margin of safety")
    else:
        reasons.append(f"lr {_fmt_lr(neighbour.probe.settings.learning_rate)} with the same "
                       f"settings failed ({_word(neighbour)}): do not raise the learning rate"
                       + ("; keep the clip" if risk == 1 else ""))

    rejected: list[dict[str, str]] = []
    seen = {chosen.probe.id}

    def reject(result: ProbeResult | None, reason: str) -> None:
        if result is not None and result.probe.id not in seen and len(rejected) < 5:
            seen.add(result.probe.id)
            rejected.append({"probe_id": result.probe.id, "reason": reason})

    for other in sorted(stable, key=lambda r: -(_macro_f1(r) or 0.0)):
        other_f1, other_recall = _macro_f1(other), _minority_recall(other, minority)
        if other_f1 is None or f1 is None or other_f1 < f1 - 1e-12:
            break
        other_risk, other_next = _risk(grid, other)
        if other_risk > risk and other_next is not None:
            reject(other, f"macro-F1 {other_f1:.2f}, but lr "
                          f"{_fmt_lr(other_next.probe.settings.learning_rate)} next to it "
                          f"failed ({_word(other_next)})"
                          + ("" if other.probe.settings.clip != "none"
                             else " and it does not clip"))
        elif other_recall is not None and recall is not None and other_recall < recall:
            reject(other, f"macro-F1 {other_f1:.2f}, but minority recall only {other_recall:.2f}")
    if neighbour is not None and _numerical(neighbour):
        reject(neighbour, where_it_failed(neighbour))
    for strategy in grid.strategies:
        twin = grid.get(strategy, s.learning_rate, s.clip, s.batch_size)
        if twin is not None and not _is_stable(twin) and twin.verdict.category in _RAN:
            reject(twin, where_it_failed(twin) if _numerical(twin) else twin.verdict.summary)
    return {
        "probe_id": chosen.probe.id,
        "class_weight": s.class_weight,
        "learning_rate": s.learning_rate,
        "clip": s.clip,
        "batch_size": s.batch_size,
        "macro_f1": f1,
        "minority_recall": recall,
        "minority_class": None if minority is None else _class_name(report, minority),
        "accuracy": None if chosen.run.holdout is None else chosen.run.holdout.accuracy,
        "pr_auc": _number(metrics.get("pr_auc")),
        "stable_probes": len(stable),
        "reasons": reasons,
        "rejected": rejected,
    }


def _strategy_table(report: RunReport) -> Table | None:
    rows = strategy_summary(report)
    if not rows or not any(r["probes"] for r in rows):
        return None
    stable_batches = {r.probe.settings.batch_size for r in report.results if _is_stable(r)}
    batches = len(stable_batches) > 1
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("class weight", no_wrap=True)
    table.add_column("largest\nstable lr", justify="right", no_wrap=True)
    table.add_column("clipping\nrescued", justify="right", no_wrap=True)
    table.add_column("best stable setting", overflow="fold")
    table.add_column("macro\nF1", justify="right", no_wrap=True)
    table.add_column("minority\nrecall", justify="right", no_wrap=True)
    by_id = {r.probe.id: r for r in report.results}
    for row in rows:
        lr = row["largest_stable_lr"]
        rescue = (f"{row['clip_rescued']} of {row['clip_tried']}" if row["clip_tried"] else "—")
        best = row["best"]
        setting = Text("none stable", style="red") if best is None else Text(
            _settings_text(by_id[best["probe_id"]], batch=batches))
        table.add_row(row["class_weight"], "—" if lr is None else _fmt_lr(lr), rescue, setting,
                      _score(best and best["macro_f1"]), _score(best and best["minority_recall"]))
    return table


def _recommendation_panel(report: RunReport) -> Panel:
    rec = recommended_configuration(report)
    if rec is None:
        body = Text("No setting in this grid was stable: probe lower learning rates (--lr), "
                    "a clip (--clip global_norm=1.0) and milder class weights.", style="red")
        return Panel(body, title="Recommended configuration", title_align="left",
                     border_style="red", box=box.ROUNDED)
    lines: list[RenderableType] = []
    head = Text()
    head.append(f"class_weight={rec['class_weight']}", style="bold")
    head.append(f"  lr={_fmt_lr(rec['learning_rate'])}", style="bold")
    head.append(f"  clip={rec['clip']}", style="bold")
    head.append(f"  batch_size={rec['batch_size']}", style="bold")
    lines.append(head)
    quality = []
    if rec["macro_f1"] is not None:
        quality.append(f"macro-F1 {rec['macro_f1']:.2f}")
    if rec["minority_recall"] is not None:
        quality.append(f"minority recall {rec['minority_recall']:.2f} "
                       f"(class {rec['minority_class']})")
    if rec["pr_auc"] is not None:
        quality.append(f"PR-AUC {rec['pr_auc']:.2f}")
    if rec["accuracy"] is not None:
        quality.append(f"accuracy {100 * rec['accuracy']:.1f}%")
    lines.append(Text(f"probe {rec['probe_id']}" + (": " + ", ".join(quality) if quality
                                                    else ""), style="dim"))
    reasons = [r for r in rec["reasons"] if not r.startswith("minority recall")]
    lines.append(_bullet("why: " + "; ".join(reasons)))
    for item in rec["rejected"]:
        lines.append(_bullet(f"not {item['probe_id']}: {item['reason']}", style="dim"))
    return Panel(Group(*lines), title="Recommended configuration", title_align="left",
                 border_style="bold green", box=box.ROUNDED)


# --------------------------------------------------------------------------- memory


def _memory_table(memory: Any) -> Table:
    """Peak, budget and verdict per measured batch size (fresh process each)."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("batch size", justify="right")
    table.add_column("peak host", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("verdict")
    table.add_column("measured in", style="dim")
    budget = human_bytes(memory.budget_bytes) if memory.budget_bytes else "none"
    points = list(memory.points)
    if memory.verified is not None and memory.verified not in points:
        points.append(memory.verified)
    for point in sorted(points, key=lambda p: p.batch_size):
        if point is memory.verified:
            verdict = Text("fits: forecast verified", style="green") if point.fits else Text(
                f"forecast wrong: {point.outcome}", style="red")
        elif point.fits:
            verdict = Text("fits", style="green")
        else:
            verdict = Text(point.outcome.replace("_", " "), style="magenta")
        source = point.probe_id.partition(":")[0] if ":" in point.probe_id else "grid"
        where = {"memory": "ladder", "verify": "forecast check"}.get(source, source)
        table.add_row(str(point.batch_size), human_bytes(point.peak_bytes), budget, verdict,
                      where)
    return table


def memory_forecast_lines(memory: Any) -> list[str]:
    """The forecast in sentences: what fits, what does not, what would make it fit."""
    lines: list[str] = []
    if memory.slope is None:
        if memory.budget_bytes:
            lines.append("too few batch sizes completed to fit a memory forecast")
        return lines
    lines.append(
        f"peak host memory ≈ {human_bytes(int(memory.intercept))} + "
        f"{human_bytes(int(memory.slope))} per sample (least squares over "
        f"{sum(1 for p in memory.points if p.fits)} batch sizes that ran)"
    )
    budget = memory.budget_bytes
    if not budget:
        return lines
    for point in memory.points:
        if point.fits:
            continue
        need = memory.forecast_at(point.batch_size)
        fate = "was OOM-killed" if point.outcome == "oom_host" else point.outcome
        lines.append(f"batch {point.batch_size} needs about {human_bytes(int(need))}, budget "
                     f"{human_bytes(budget)}: {fate}")
    if memory.forecast_batch is not None:
        verified = memory.verified
        text = (f"largest batch size that fits with a {memory.margin:.0%} margin: "
                f"{memory.forecast_batch} (forecast {human_bytes(int(memory.forecast_peak))})")
        if verified is not None and verified.fits and memory.forecast_error is not None:
            text += (f"; verified by a real run at {human_bytes(verified.peak_bytes)}, "
                     f"forecast error {memory.forecast_error:+.1%}")
        elif verified is not None:
            text += f"; the verification run did not fit: {verified.outcome}"
        lines.append(text)
    for item in memory.accumulation:
        state = "fits" if item["fits"] else f"does not fit ({item['outcome']})"
        lines.append(
            f"batch {item['batch_size']} as {item['micro_batch_size']} x "
            f"{item['accumulation_steps']} gradient accumulation steps {state} at "
            f"{human_bytes(item['peak_bytes'])} (measured; optimizer "
            f"gradient_accumulation_steps={item['accumulation_steps']})"
        )
    mixed = memory.mixed_precision
    if mixed:
        if mixed.get("error"):
            lines.append(f"{mixed['policy']} could not be measured: {mixed['error']}")
        else:
            saved = 1 - mixed["peak_bytes"] / mixed["float32_forecast_bytes"] \
                if mixed.get("peak_bytes") else None
            state = "fits" if mixed["fits"] else f"still does not fit ({mixed['outcome']})"
            lines.append(
                f"{mixed['policy']} at batch {mixed['batch_size']} {state}: "
                f"{human_bytes(mixed['peak_bytes'])} measured vs "
                f"{human_bytes(int(mixed['float32_forecast_bytes']))} forecast in float32"
                + (f" (saves {saved:.0%})" if saved is not None else "")
            )
    return lines


# --------------------------------------------------------------------------- render


def render_report(report: RunReport, console: Console) -> None:
    """Print the whole report: data set, grid, failure sections, what to do, warnings.

    Args:
        report: the run to show.
        console: where to print; colours and width are the console's business.
    """
    title = Text(f"stabcheck {report.stabcheck_version}", style="bold")
    title.append(" · probe report", style="default")
    console.print(title)
    console.print(_header(report))
    classes = _class_table(report)
    if classes is not None:
        console.print()
        console.print(
            Text(
                "Classes and the weight each class-weight strategy gives them",
                style="bold underline",
            )
        )
        console.print(classes)

    console.print()
    console.print(Text("Verdicts", style="bold underline"))
    if report.results:
        for table in _grid_tables(report):
            console.print(table)
        legend = _legend(report)
        if legend is not None:
            console.print(legend)
    else:
        console.print(Text("no probe ran", style="yellow"))

    for category, title_text, style in _SECTIONS:
        failing = [r for r in report.results if r.verdict.category is category]
        ran = [r for r in failing if r.verdict.evidence.get("ran") is not False]
        if ran:
            console.print()
            console.print(_section(title_text, style, ran, console.width))
        for source, count in Counter(
            r.verdict.evidence.get("inferred_from") for r in failing if r not in ran
        ).items():
            console.print(Text(
                f"  + {_plural(count, 'more probe')} of the same batch size and optimizer not "
                f"run: they would exhaust memory like {source}", style="dim"))

    quality = _quality_table(report, console.width)
    if quality is not None:
        table, left_out = quality
        console.print()
        console.print(Text("Per-class quality of the stable settings", style="bold underline"))
        console.print(table)
        if left_out:
            console.print(Text(f"  + {_plural(left_out, 'more probe')} (see the JSON: "
                               "probes[].holdout)", style="dim"))
        note = _quality_note(report)
        if note is not None:
            console.print(note)

    if report.memory is not None:
        console.print()
        console.print(Text("Memory per batch size", style="bold underline"))
        console.print(_memory_table(report.memory))
        for line in memory_forecast_lines(report.memory):
            console.print(_bullet(line))

    advice = recommendations(report)
    console.print()
    console.print(Text("What to do", style="bold underline"))
    bullets = [_bullet(line) for line in advice[:-1]]
    console.print(Group(*bullets, Text(advice[-1], style="bold")))

    if report.warnings or report.interrupted:
        console.print()
    if report.warnings:
        console.print(Text("Warnings", style="bold yellow"))
        for warning in report.warnings:
            console.print(_bullet(warning, style="yellow"))
    if report.interrupted:
        planned = report.probes_planned
        ran = len(report.results)
        of = f" of {planned}" if planned else ""
        console.print(Text(f"interrupted: {ran}{of} probes ran", style="bold yellow"))

    if report.results:
        strategies = _strategy_table(report)
        if strategies is not None:
            console.print()
            console.print(Text("Per class-weight strategy", style="bold underline"))
            console.print(strategies)
        console.print(_recommendation_panel(report))


def _bullet(line: str, style: str = "") -> Table:
    """A bullet whose wrapped lines hang under the text, not under the bullet."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text("•", style=style), Text(line, style=style))
    return grid


# --------------------------------------------------------------------------- JSON


def _json_default(value: Any) -> Any:
    """Numpy scalars and arrays, should one slip into the report, as plain JSON values."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_json(report: RunReport, path: Path) -> None:
    """Write the contract's strict-JSON result to ``path``, atomically.

    The text is produced in full before the file is touched (``allow_nan=False``: a NaN
    that slipped past ``RunReport.to_json`` is a bug, not a file), then written to a
    temporary file next to ``path`` and moved over it, so a reader never sees half a file.

    Args:
        report: the run to write.
        path: the destination; its folder is created if missing.
    """
    text = json.dumps(
        report.to_json(), indent=2, allow_nan=False, ensure_ascii=False, default=_json_default
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would outlive the rename; open() honours the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the result ``write_json`` writes."""
    text = resources.files("stabcheck").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)
