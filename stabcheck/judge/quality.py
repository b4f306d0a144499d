"""The per-class quality of the settings that trained: held-out metrics, and their table.

A stable probe is evaluated on the held-out split after training; this module reads those
metrics (macro-F1, per-class recall, PR-AUC, predicted and true class shares), orders the
probes by them, and lays out the terminal's "Per-class quality" table. The metric readers
are shared with ``stabcheck.judge.recommend``. Display only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from stabcheck.results import Category, ProbeResult, RunReport, Termination
from stabcheck.text import CELLS

__all__ = [
    "MAX_QUALITY_ROWS",
    "class_name",
    "finite_number",
    "fmt_score",
    "holdout_metrics",
    "is_regression",
    "quality_score",
    "r2_score",
    "regression_rows",
    "macro_f1",
    "minority_recall",
    "quality_note",
    "quality_results",
    "quality_table",
    "quality_title",
    "rarest_class",
]

# The quality table shows at most this many probes, best first.
MAX_QUALITY_ROWS = 12


def holdout_metrics(result: ProbeResult) -> dict[str, Any]:
    """The held-out metrics of a probe (``{}`` if it was not evaluated)."""
    holdout = result.run.holdout
    return dict(holdout.metrics) if holdout is not None else {}


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_regression(report: RunReport) -> bool:
    """Whether the run probed a regression target (no classes: MAE, RMSE and R²)."""
    return report.dataset.task == "regression"


def r2_score(result: ProbeResult) -> float | None:
    """The held-out R² of a regression probe, or None."""
    return finite_number(holdout_metrics(result).get("r2"))


def quality_score(result: ProbeResult) -> float | None:
    """What ranks the probes that trained: held-out R² for a regression probe, else
    macro-F1."""
    metrics = holdout_metrics(result)
    key = "r2" if metrics.get("task") == "regression" else "macro_f1"
    return finite_number(metrics.get(key))


def regression_rows(report: RunReport) -> list[tuple[ProbeResult, list[str]]]:
    """The probes of a regression run that trained, best R² first, with their cells:
    verdict, R², MAE, RMSE (``—`` where undefined). The terminal, Markdown and HTML
    views lay out the same cells."""
    rows = []
    for result in quality_results(report):
        metrics = holdout_metrics(result)
        rows.append((result, [CELLS[result.verdict.outcome][0],
                              fmt_score(finite_number(metrics.get("r2"))),
                              _fmt_error(finite_number(metrics.get("mae"))),
                              _fmt_error(finite_number(metrics.get("rmse")))]))
    return rows


REGRESSION_COLUMNS = ("verdict", "R²", "MAE", "RMSE")


def _fmt_error(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def macro_f1(result: ProbeResult) -> float | None:
    """The held-out macro-F1 of a probe, or None."""
    return finite_number(holdout_metrics(result).get("macro_f1"))


def minority_recall(result: ProbeResult, minority: int | None = None) -> float | None:
    """The recall of class ``minority`` (by default the metrics' own minority class)."""
    metrics = holdout_metrics(result)
    recall = metrics.get("recall")
    if minority is not None and isinstance(recall, (list, tuple)) and minority < len(recall):
        return finite_number(recall[minority])
    return finite_number(metrics.get("minority_recall"))


def class_name(report: RunReport, index: Any) -> str:
    """The name of class ``index`` (the index itself where the data set has no such class)."""
    names = report.dataset.class_names
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(names):
        return str(names[index])
    return str(index)


def rarest_class(report: RunReport) -> int | None:
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
    def key(r: ProbeResult) -> float:
        score = quality_score(r)
        return -(score if score is not None else -math.inf)

    return sorted(found, key=key)


def quality_title(report: RunReport) -> str:
    """The quality section's title, true to the probes it lists: "of the stable settings"
    only where every one of them is stable, else "of the settings that trained" (saying
    how many of those are stable)."""
    if is_regression(report):
        return "Held-out errors of the settings that trained"
    results = quality_results(report)
    stable = sum(r.verdict.category is Category.OK for r in results)
    if results and stable == len(results):
        return "Per-class quality of the stable settings"
    if stable == 0:
        return "Per-class quality of the settings that trained (none of them stable)"
    return (f"Per-class quality of the settings that trained ({stable} of {len(results)} "
            "stable)")


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


def fmt_score(value: float | None) -> str:
    """A score in [0, 1] with two decimals; ``—`` for None."""
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


REGRESSION_NOTE = ("R²: 1 - squared error / variance of the held-out targets (0: no better "
                   "than predicting their mean); MAE, RMSE: in the target's units")


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

