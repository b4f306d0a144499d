"""The terminal report's memory section: peak host memory per batch size, and the forecast.

``stabcheck memory`` (and ``probe`` with a budget) measure the peak per batch size in a
fresh process each, fit a line, forecast the largest batch size that fits the budget with
a margin and verify it by a real run; then measure the remedies (gradient accumulation,
mixed precision) for the smallest batch size that did not fit. This module shows that as
a table and in sentences. No batch trains on more rows than the training sample holds, so
no batch size beyond it is forecast: where it fits, the sentences say so. Display only.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from stabcheck.probe_ids import REQUESTED_TAG, tag_of
from stabcheck.units import human_bytes

__all__ = ["memory_forecast_lines", "memory_table"]

def memory_table(memory: Any, *, budget_column: bool = True) -> Table:
    """Peak, budget and verdict per measured batch size (fresh process each); without
    ``budget_column`` the budget is left to the section's title (it is the same in every
    row) and the table has no blank edge lines."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=budget_column)
    table.add_column("batch size", justify="right")
    table.add_column("peak host", justify="right")
    if budget_column:
        table.add_column("budget", justify="right")
    table.add_column("verdict")
    table.add_column("measured in", style="dim")
    budget = human_bytes(memory.budget_bytes) if memory.budget_bytes else "none"
    for point in memory.measured():
        if point == memory.verified:
            verdict = Text("fits: forecast verified", style="green") if point.fits else Text(
                f"forecast wrong: {point.outcome}", style="red")
        elif point in memory.rejected:
            verdict = Text(f"forecast revised: {point.outcome}", style="yellow")
        elif point.fits and memory.budget_bytes and point.peak_bytes and \
                point.peak_bytes > memory.budget_bytes * (1 - memory.margin):
            verdict = Text(f"fits, under {memory.margin:.0%} to spare", style="yellow")
        elif point.fits:
            verdict = Text("fits", style="green")
        else:
            verdict = Text(point.outcome.replace("_", " "), style="magenta")
        source = tag_of(point.probe_id) or "grid"
        where = {REQUESTED_TAG: "requested", "verify": "forecast check"}.get(source, source)
        table.add_row(str(point.batch_size), human_bytes(point.peak_bytes),
                      *([budget] if budget_column else []), verdict, where)
    return table


def memory_forecast_lines(memory: Any) -> list[str]:
    """The forecast in sentences: what fits, what does not, what would make it fit."""
    lines: list[str] = []
    cap_note = (f"a batch size above the {memory.max_batch} training samples trains on "
                f"{memory.max_batch} rows a step, as fit would, so no larger size is forecast")
    if memory.slope is None:
        verified = memory.verified
        if memory.forecast_capped and verified is not None and verified.fits:
            lines.append(
                f"every batch size up to the {memory.max_batch} training samples fits the "
                f"budget: batch {verified.batch_size} ran at {human_bytes(verified.peak_bytes)} "
                f"(measured); {cap_note}")
        elif memory.budget_bytes:
            lines.append("too few batch sizes completed to fit a memory forecast")
        return lines
    ran = sorted(p.batch_size for p in memory.points if p.fits and p.peak_bytes)
    if memory.fit_method in (None, "least_squares"):
        lines.append(
            f"peak host memory ≈ {human_bytes(int(memory.intercept))} + "
            f"{human_bytes(int(memory.slope))} per sample (least squares over {len(ran)} "
            "batch sizes that ran)")
    else:
        lines.append(
            f"peak host memory grows faster than linearly: "
            f"{human_bytes(int(memory.slope))} per sample between the two largest batch sizes "
            f"that ran ({' and '.join(map(str, ran[-2:]))}); the forecast follows that line")
    budget = memory.budget_bytes
    if not budget:
        return lines
    for point in memory.points:
        if point.fits:
            continue
        lines.append(_failure_line(memory, point, budget))
    if memory.forecast_batch is not None:
        verified = memory.verified
        what = (f"every batch size up to the {memory.max_batch} training samples fits with a "
                f"{memory.margin:.0%} margin: {memory.forecast_batch}" if memory.forecast_capped
                else f"largest batch size that fits with a {memory.margin:.0%} margin: "
                f"{memory.forecast_batch}")
        text = f"{what} (forecast {human_bytes(int(memory.forecast_peak))})"
        if verified is not None and verified.fits and memory.forecast_error is not None:
            text += (f"; verified by a real run at {human_bytes(verified.peak_bytes)}, "
                     f"forecast error {memory.forecast_error:+.1%}")
        elif verified is not None:
            text += f"; the verification run did not fit: {verified.outcome}"
        if memory.forecast_capped:
            text += f"; {cap_note}"
        lines.append(text)
        for point in memory.rejected:
            lines.append(
                f"an earlier forecast, batch {point.batch_size}, was checked and did not fit "
                f"({point.outcome} at {human_bytes(point.peak_bytes)}): it was revised "
                f"downward")
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
                + _saving(saved)
            )
    return lines


def _saving(saved: float | None) -> str:
    """What mixed precision saved against the float32 forecast, never a negative saving:
    ``" (saves 38%)"``, ``" (no saving)"``, ``" (uses 5% more: no saving)"``."""
    if saved is None:
        return ""
    if saved >= 0.005:
        return f" (saves {saved:.0%})"
    if saved > -0.005:
        return " (no saving)"
    return f" (uses {-saved:.0%} more: no saving)"


def _failure_line(memory: Any, point: Any, budget: int) -> str:
    """``batch 216 needs about 1.1 GiB, budget 1.2 GiB: was OOM-killed ...``: what a batch
    size that did not fit needed, how it ended and, where its forecast is below the budget,
    why it was ended all the same."""
    need = memory.forecast_at(point.batch_size)
    cgroup = str(memory.enforcement or "").startswith("cgroup")
    if point.outcome == "oom_host":
        fate = ("was OOM-killed in its memory cgroup" if cgroup
                else "was ended over the budget" if memory.enforcement == "watchdog"
                else "ran out of host memory")
    else:
        fate = point.outcome.replace("_", " ")
    head = (f"batch {point.batch_size}" if need is None
            else f"batch {point.batch_size} needs about {human_bytes(int(need))}")
    text = f"{head}, budget {human_bytes(budget)}: {fate}"
    if need is None or need >= budget or point.outcome != "oom_host":
        return text
    if cgroup:
        return (text + ", though its forecast is below the budget: the forecast counts the "
                "worker's private memory, while the cgroup budget also charges its page cache "
                "and kernel memory (and the peaks between samples)")
    return (text + ", though its forecast is below the budget: its own peak rose above the "
            "line through the batch sizes that ran")
