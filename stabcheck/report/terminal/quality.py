"""The terminal's "Per-class quality" table and the key under it."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from stabcheck.judge.quality import (
    MAX_QUALITY_ROWS,
    REGRESSION_COLUMNS,
    REGRESSION_NOTE,
    class_name,
    finite_number,
    fmt_score,
    holdout_metrics,
    is_regression,
    macro_f1,
    minority_recall,
    quality_results,
    rarest_class,
    regression_rows,
)
from stabcheck.results import RunReport
from stabcheck.text import CELLS

__all__ = ["quality_note", "quality_table"]


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


def quality_table(report: RunReport, width: int) -> tuple[Table, int] | None:
    """The per-class quality of the probes that trained: (table, probes left out).

    The probe ids stay whole where the console is wide enough, else they break after a
    comma (``cw=balanced,lr=0.01,`` / ``clip=global_norm=1,bs=32``).
    """
    results = quality_results(report)
    if not results:
        return None
    if is_regression(report):
        return _regression_table(report), max(0, len(results) - MAX_QUALITY_ROWS)
    shown = results[:MAX_QUALITY_ROWS]
    rarest = rarest_class(report)
    binary = len(report.dataset.class_names) == 2
    name = class_name(report, rarest)
    rows = []
    for result in shown:
        holdout = result.run.holdout
        assert holdout is not None
        cells = [CELLS[result.verdict.outcome][0], _pct(holdout.accuracy),
                 fmt_score(macro_f1(result)), fmt_score(minority_recall(result, rarest))]
        if binary:
            cells.append(fmt_score(finite_number(holdout_metrics(result).get("pr_auc"))))
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
        style = CELLS[result.verdict.outcome][1]
        table.add_row(Text(_break_id(result.probe.id, id_width)), Text(cells[0], style=style),
                      *cells[1:])
    return table, len(results) - len(shown)


def _regression_table(report: RunReport) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("probe", no_wrap=True)
    for index, head in enumerate(REGRESSION_COLUMNS):
        table.add_column(head, justify="left" if index == 0 else "right", no_wrap=True)
    for result, cells in regression_rows(report)[:MAX_QUALITY_ROWS]:
        style = CELLS[result.verdict.outcome][1]
        table.add_row(Text(result.probe.id), Text(cells[0], style=style), *cells[1:])
    return table


def quality_note(report: RunReport) -> Text | None:
    """The key under the quality table: which class its columns name, what they mean."""
    if is_regression(report):
        return Text(REGRESSION_NOTE, style="dim")
    rarest = rarest_class(report)
    if rarest is None:
        return None
    name = class_name(report, rarest)
    text = (f"class {name}: the rarest class; pred/true: its share of the held-out predictions "
            "and of the held-out samples")
    if len(report.dataset.class_names) == 2:
        text += f"; PR-AUC: average precision of class {class_name(report, 1)}"
    return Text(text, style="dim")

