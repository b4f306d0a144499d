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
from rich.table import Table
from rich.text import Text

from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.units import human_bytes

__all__ = [
    "human_bytes",
    "load_schema",
    "recommendations",
    "render_report",
    "summary_counts",
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


def _cell(result: ProbeResult | None) -> Text:
    if result is None:
        return Text(_MISSING, style="dim")
    word, style = _CELLS[result.verdict.outcome]
    suffix = _step_suffix(result)
    return Text(f"{word} {suffix}" if suffix else word, style=style)


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


def _numerical_advice(results: Sequence[ProbeResult]) -> list[str]:
    failures = [r for r in results if r.verdict.category is Category.NUMERICAL]
    if not failures:
        return []
    cells = _by_key(results)
    clips = _unique(r.probe.settings.clip for r in results)
    lrs = sorted(set(r.probe.settings.learning_rate for r in results))
    fixed: set[str] = set()
    clip_fixes: Counter[tuple[str, str]] = Counter()
    lr_fixes: dict[str, dict[str, float]] = {}
    for failure in failures:
        cw, lr, clip, bs = _key(failure)
        for other in clips:
            if other not in (clip, "none") and _is_stable(cells.get((cw, lr, other, bs))):
                clip_fixes[(other, clip)] += 1
                fixed.add(failure.probe.id)
        lower = [x for x in lrs if x < lr and _is_stable(cells.get((cw, x, clip, bs)))]
        if lower:
            fixed.add(failure.probe.id)
            per_clip = lr_fixes.setdefault(cw, {})
            # Across batch sizes, the rate that was stable for all of them.
            per_clip[clip] = min(per_clip.get(clip, math.inf), max(lower))
    advice = []
    if clip_fixes:
        (good, bad), _ = clip_fixes.most_common(1)[0]
        advice.append(f"clip gradients ({good} was stable where {bad} failed)")
    for cw, per_clip in lr_fixes.items():
        if len(clips) == 1:
            rates = _fmt_lr(next(iter(per_clip.values())))
        else:
            rates = ", ".join(f"{_fmt_lr(lr)} with clip={clip}" for clip, lr in per_clip.items())
        advice.append(
            f"lower the learning rate: the largest stable learning rate for class_weight={cw} "
            f"is {rates}"
        )
    unfixed = [f for f in failures if f.probe.id not in fixed]
    strategies = _unique(r.probe.settings.class_weight for r in results)
    safer: dict[str, Counter[str]] = {}
    hopeless: list[ProbeResult] = []
    for failure in unfixed:
        cw, lr, clip, bs = _key(failure)
        others = [o for o in strategies if o != cw and _is_stable(cells.get((o, lr, clip, bs)))]
        if others:
            safer.setdefault(cw, Counter()).update(others)
        else:
            hopeless.append(failure)
    for cw, others in safer.items():
        other = others.most_common(1)[0][0]
        advice.append(
            f"class_weight={cw} failed numerically where class_weight={other} was stable with "
            "the same learning rate, clip and batch size"
            + (": use a milder class weight" if cw != "none" else "")
        )
    if hopeless:
        failing = _join(_unique(f.probe.settings.class_weight for f in hopeless))
        advice.append(
            f"{_plural(len(hopeless), 'numerical failure')} (class_weight={failing}) had no "
            "stable variant in this grid: probe lower learning rates (--lr) and a clip "
            "(--clip global_norm=1.0)"
        )
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
            f"class_weight={strategies(Outcome.OVERCORRECTED)} overcorrected (the predicted "
            "class distribution is inverted): use a milder strategy such as sqrt or effective"
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

    Numerical failures are compared with their twins (the same settings but one): a
    stable clipped twin suggests clipping, a stable lower-learning-rate twin a lower rate.

    Args:
        report: the run to advise on.

    Returns:
        Plain sentences (no markup); the last one is always the count line
        ``"N probes: a stable, b numerical, c memory, d crash, e learning, f error"``.
    """
    results = report.results
    advice = (
        _numerical_advice(results)
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
