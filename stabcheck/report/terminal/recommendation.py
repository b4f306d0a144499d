"""The terminal's per-strategy table and the recommended-configuration panel."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stabcheck.judge.summary import RunSummary
from stabcheck.report.terminal.widgets import bullet

__all__ = ["recommendation_panel", "strategy_table"]


def strategy_table(summary: RunSummary) -> Table | None:
    """The per-strategy summary as a terminal table; None where no strategy has a probe."""
    if not summary.strategy_rows:
        return None
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("class weight", no_wrap=True)
    table.add_column("largest\nstable lr", justify="right", no_wrap=True)
    table.add_column("clipping\nrescued", justify="right", no_wrap=True)
    table.add_column("best stable setting", overflow="fold")
    table.add_column("macro\nF1", justify="right", no_wrap=True)
    table.add_column("minority\nrecall", justify="right", no_wrap=True)
    for strategy, lr, rescue, setting, f1, recall in summary.strategy_rows:
        table.add_row(strategy, lr, rescue,
                      Text("none stable", style="red") if setting is None else Text(setting),
                      f1, recall)
    return table


def recommendation_panel(summary: RunSummary, *, rejected: bool = True) -> Panel:
    """The recommendation as a terminal panel: the settings, the probe and scores behind
    them, why, and (with ``rejected``) the candidates it passed over."""
    rec = summary.recommendation
    if rec is None:
        return Panel(Text(summary.no_recommendation or "", style="red"),
                     title="Recommended configuration",
                     title_align="left", border_style="red", box=box.ROUNDED)
    lines: list[RenderableType] = []
    head = Text()
    for index, word in enumerate(rec.words()):
        head.append(("  " if index else "") + word, style="bold")
    lines.append(head)
    lines.append(Text(rec.evidence(), style="dim"))
    lines.append(bullet(rec.why()))
    for item in rec.rejected if rejected else ():
        lines.append(bullet(f"not {item.probe_id}: {item.reason}", style="dim"))
    return Panel(Group(*lines), title="Recommended configuration", title_align="left",
                 border_style="bold green", box=box.ROUNDED)
