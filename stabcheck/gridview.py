"""The verdict grid as plain data, for the renderers that are not the terminal's.

The Markdown summary and the HTML report show the same grid as ``report.render_report``:
one table per batch size, a row per class-weight strategy, a column per (learning rate,
clip) pair, in the order the probes ran, and the same words in the cells (``NaN @37``,
``OOM host``). This module lays that grid out once; the words come from ``report``.
"""

from __future__ import annotations

from dataclasses import dataclass

from stabcheck.report import _CELLS, _fmt_lr, _short_clip, _step_suffix
from stabcheck.results import Category, ProbeResult, RunReport

__all__ = ["CATEGORY_ICONS", "GridTable", "cell_text", "column_label", "grid_tables"]

# One symbol per category, for renderers that have no colours (Markdown) and as a key.
CATEGORY_ICONS: dict[Category, str] = {
    Category.OK: "✅",
    Category.NUMERICAL: "❌",
    Category.MEMORY: "💥",
    Category.CRASH: "💀",
    Category.LEARNING: "⚠️",
    Category.ERROR: "⛔",
}


@dataclass(frozen=True)
class GridTable:
    """The grid of one batch size: ``rows`` pairs a strategy with one cell per column."""

    batch_size: int
    columns: tuple[tuple[float, str], ...]  # (learning rate, clip) per column
    rows: tuple[tuple[str, tuple[ProbeResult | None, ...]], ...]


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def grid_tables(report: RunReport) -> list[GridTable]:
    """One ``GridTable`` per batch size, in the order the probes ran; ``None`` = not run."""
    results = report.results
    cells: dict[tuple[str, float, str, int], ProbeResult] = {}
    for r in results:
        s = r.probe.settings
        cells.setdefault((s.class_weight, s.learning_rate, s.clip, s.batch_size), r)
    strategies = _unique([r.probe.settings.class_weight for r in results])
    columns = tuple(
        _unique([(r.probe.settings.learning_rate, r.probe.settings.clip) for r in results])
    )
    tables = []
    for batch_size in _unique([r.probe.settings.batch_size for r in results]):
        rows = tuple(
            (cw, tuple(cells.get((cw, lr, clip, batch_size)) for lr, clip in columns))
            for cw in strategies
        )
        tables.append(GridTable(batch_size, columns, rows))
    return tables


def column_label(column: tuple[float, str]) -> tuple[str, str]:
    """A column's two header lines: ``("lr 0.01", "no clip")``."""
    lr, clip = column
    return f"lr {_fmt_lr(lr)}", _short_clip(clip)


def cell_text(result: ProbeResult) -> str:
    """The grid word of a result, with the step of a failure: ``ok``, ``NaN @37``."""
    word = _CELLS[result.verdict.outcome][0]
    suffix = _step_suffix(result)
    return f"{word} {suffix}" if suffix else word
