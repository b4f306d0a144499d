"""The verdict grid as plain data: its layout, and its probes indexed by their settings.

Every renderer shows the same grid as ``report.render_report``: one table per batch size,
a row per class-weight strategy, a column per (learning rate, clip) pair, in the order the
probes ran, and the same words in the cells (``NaN @37``, ``OOM host``, from
``stabcheck.text``). This module lays that grid out once (``grid_tables``), and indexes
its probes for the advice and the recommendation, which compare a probe with its twins:
the same settings but for one (``ProbeGrid``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS
from stabcheck.protocol.vocabulary import is_focal, is_remedy
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import cell, fmt_lr, short_clip, step_suffix

__all__ = [
    "CATEGORY_ICONS",
    "RAN",
    "GridTable",
    "ProbeGrid",
    "SettingsKey",
    "by_key",
    "cell_text",
    "column_label",
    "grid_tables",
    "is_numerical",
    "is_stable",
    "measurably_milder",
    "mildness_ranks",
    "ratio_tolerance",
    "settings_key",
    "finished_training",
    "unique",
    "weight_spread",
    "weighting_ratio",
]

# One symbol per category, for renderers that have no colours (Markdown) and as a key.
CATEGORY_ICONS: dict[Category, str] = {
    Category.OK: "✅",
    Category.NUMERICAL: "❌",
    Category.MEMORY: "💥",
    Category.CRASH: "💀",
    Category.LEARNING: "⚠️",
    Category.ERROR: "⛔",
}

# Categories whose probes trained at least one step within memory.
RAN = (Category.OK, Category.NUMERICAL, Category.LEARNING)

SettingsKey = tuple[str, float, str, int]  # class_weight, learning_rate, clip, batch_size


def settings_key(result: ProbeResult) -> SettingsKey:
    """Where a probe sits in the grid: (class weight, learning rate, clip, batch size)."""
    s = result.probe.settings
    return (s.class_weight, s.learning_rate, s.clip, s.batch_size)


def unique(values: Iterable[Any]) -> list[Any]:
    """``values`` without repeats, in the order they first appear."""
    return list(dict.fromkeys(values))


def by_key(results: Iterable[ProbeResult]) -> dict[SettingsKey, ProbeResult]:
    """The first probe at each place in the grid."""
    table: dict[SettingsKey, ProbeResult] = {}
    for result in results:
        table.setdefault(settings_key(result), result)
    return table


def is_stable(result: ProbeResult | None) -> bool:
    return result is not None and result.verdict.outcome is Outcome.STABLE


def is_numerical(result: ProbeResult | None) -> bool:
    return result is not None and result.verdict.category is Category.NUMERICAL


def finished_training(result: ProbeResult | None) -> bool:
    """Trained to the end without numerical trouble (stable, or a learning problem)."""
    return result is not None and result.verdict.category in (Category.OK, Category.LEARNING)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class GridTable:
    """The grid of one batch size: ``rows`` pairs a strategy with one cell per column."""

    batch_size: int
    columns: tuple[tuple[float, str], ...]  # (learning rate, clip) per column
    rows: tuple[tuple[str, tuple[ProbeResult | None, ...]], ...]


def grid_tables(report: RunReport) -> list[GridTable]:
    """One ``GridTable`` per batch size, in the order the probes ran; ``None`` = not run."""
    results = report.results
    cells = by_key(results)
    strategies = unique(r.probe.settings.class_weight for r in results)
    columns = tuple(
        unique((r.probe.settings.learning_rate, r.probe.settings.clip) for r in results)
    )
    tables = []
    for batch_size in unique(r.probe.settings.batch_size for r in results):
        rows = tuple(
            (cw, tuple(cells.get((cw, lr, clip, batch_size)) for lr, clip in columns))
            for cw in strategies
        )
        tables.append(GridTable(batch_size, columns, rows))
    return tables


def column_label(column: tuple[float, str]) -> tuple[str, str]:
    """A column's two header lines: ``("lr 0.01", "no clip")``."""
    lr, clip = column
    return f"lr {fmt_lr(lr)}", short_clip(clip)


def cell_text(result: ProbeResult) -> str:
    """The grid word of a result, with the step of a failure: ``ok``, ``NaN @37``."""
    word = cell(result)[0]
    suffix = step_suffix(result)
    return f"{word} {suffix}" if suffix else word


# --------------------------------------------------------------------------- twins


def weight_spread(report: RunReport, strategy: str) -> float | None:
    """Largest over smallest class weight of a strategy (1 without weights; None unknown)."""
    if strategy not in report.class_weight_table:
        return None
    weights = report.class_weight_table[strategy]
    if weights is None:
        return 1.0
    values = [w for w in weights.values() if w > 0]
    return max(values) / min(values) if values else None


def ratio_tolerance(report: RunReport) -> float:
    """``weight_ratio_tolerance`` as the run was configured (``[thresholds]``): two
    weightings whose ratios are this close are the same weighting."""
    value = (report.config.get("thresholds") or {}).get("weight_ratio_tolerance")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return DEFAULT_THRESHOLDS.weight_ratio_tolerance


def measurably_milder(ratio: float, than: float, tolerance: float) -> bool:
    """A weight ratio below another by more than ``tolerance`` (a fraction of the larger):
    1:569 is not milder than 1:571, 1:24 is milder than 1:571."""
    return ratio * (1.0 + tolerance) < than


def weighting_ratio(report: RunReport, strategy: str) -> float | None:
    """How strongly a strategy weighs the rare classes against the common ones: its largest
    over smallest class weight (``weight_spread``); ``focal``, which passes no class weights,
    weighs through its alpha as ``balanced`` does: the class counts' ratio."""
    if is_focal(strategy):
        counts = [c for c in report.dataset.class_counts if c > 0]
        return max(counts) / min(counts) if counts else None
    return weight_spread(report, strategy)


def mildness_ranks(report: RunReport, strategies: Iterable[str]) -> dict[str, int]:
    """Each strategy's place from the mildest weighting (0) up, by ``weighting_ratio``;
    strategies whose ratios are within ``ratio_tolerance`` of the first of their group
    share its place (an unknown ratio comes last)."""
    tolerance = ratio_tolerance(report)
    known: list[tuple[float, str]] = []
    unknown: list[str] = []
    for strategy in unique(strategies):
        ratio = weighting_ratio(report, strategy)
        if ratio is None:
            unknown.append(strategy)
        else:
            known.append((ratio, strategy))
    ranks: dict[str, int] = {}
    rank, anchor = -1, None
    for ratio, strategy in sorted(known):
        if anchor is None or measurably_milder(anchor, ratio, tolerance):
            rank, anchor = rank + 1, ratio
        ranks[strategy] = rank
    for strategy in unknown:
        ranks[strategy] = rank + 1
    return ranks


class ProbeGrid:
    """The probes of a run that ran, indexed by their settings, for comparisons between
    twins."""

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.results = [r for r in report.results if r.ran]
        self.cells = by_key(self.results)
        self.strategies = unique(r.probe.settings.class_weight for r in self.results)
        self.clips = unique(r.probe.settings.clip for r in self.results)
        self.lrs = sorted(set(r.probe.settings.learning_rate for r in self.results))

    def get(self, cw: str, lr: float, clip: str, bs: int) -> ProbeResult | None:
        return self.cells.get((cw, lr, clip, bs))

    def milder(self, strategy: str) -> list[str]:
        """The probed weightings to compare a failure of ``strategy`` with: those (remedies
        excluded) with a measurably smaller weight spread (``measurably_milder``: a
        weighting within ``ratio_tolerance`` of this one is the same weighting, not a
        milder one); for a remedy (``normalized``, ``focal``), the unweighted ones."""
        spread = weight_spread(self.report, strategy)
        if spread is None:
            return []
        tolerance = ratio_tolerance(self.report)
        out = []
        for other in self.strategies:
            other_spread = weight_spread(self.report, other)
            if other == strategy or is_remedy(other) or other_spread is None:
                continue
            if (other_spread <= 1.0 + 1e-9) if is_remedy(strategy) else \
                    measurably_milder(other_spread, spread, tolerance):
                out.append(other)
        return out

    def unweighted(self, strategy: str) -> bool:
        """No class weighting at all (``none``, or weights that are all equal)."""
        spread = weight_spread(self.report, strategy)
        return spread is not None and spread <= 1.0 + 1e-9 and not is_remedy(strategy)

    def next_lr(self, result: ProbeResult) -> ProbeResult | None:
        """The same settings at the next larger learning rate of the grid."""
        cw, lr, clip, bs = settings_key(result)
        larger = [x for x in self.lrs if x > lr]
        return self.get(cw, larger[0], clip, bs) if larger else None
