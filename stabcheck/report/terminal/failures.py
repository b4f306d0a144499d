"""The terminal report's failure sections: one table per kind of failure, a row per probe.

Each row names the probe, its outcome and the evidence in one sentence, with its peak
memory; a memory section adds the peak GPU memory and the budget with its enforcement.
Display only.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from stabcheck.results import Category, Outcome, ProbeResult
from stabcheck.text import CELLS
from stabcheck.units import human_bytes

__all__ = ["failure_table"]




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


def failure_table(title: str, style: str, results: Sequence[ProbeResult], width: int) -> Table:
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
        outcome_style = CELLS[result.verdict.outcome][1]
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

