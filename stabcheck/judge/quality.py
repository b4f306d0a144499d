"""The per-class quality of the settings that trained: held-out metrics, and their table.

A stable probe is evaluated on the held-out split after training; this module reads those
metrics (macro-F1, per-class recall, PR-AUC, predicted and true class shares), orders the
probes by them and names the rows and columns every renderer shows (the terminal's table
is ``report.terminal.quality``). The metric readers are shared with ``judge.recommend``
and ``judge.ranking``.
"""

from __future__ import annotations

import math
from typing import Any

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
    "quality_results",
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


def fmt_score(value: float | None) -> str:
    """A score in [0, 1] with two decimals; ``—`` for None."""
    return "—" if value is None else f"{value:.2f}"


REGRESSION_NOTE = ("R²: 1 - squared error / variance of the held-out targets (0: no better "
                   "than predicting their mean); MAE, RMSE: in the target's units")
