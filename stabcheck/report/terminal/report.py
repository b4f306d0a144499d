"""The terminal report: display only.

The core computes and never prints; this module (and the CLI) turn a ``RunReport`` into
what people read:

- ``render_report``: the rich terminal report, the answer first: the verdict in one line,
  the grid of verdicts per batch size, the recommended configuration with its evidence,
  the failures grouped by cause (one entry per cause, not per probe), memory, notes and
  warnings; ``verbose`` adds the details (classes, every probe's evidence, per-class
  quality, the per-strategy summary). It reads as well in a CI log (no colours, no
  terminal) as in a terminal. The judgement is ``judge.summary``'s (verdict line, causes)
  and ``judge.recommend``'s; the sections' rendering lives in modules of their own:
  ``header`` (title, data set, environment, classes), ``failures`` (the per-probe tables),
  ``quality``, ``memory``, ``recommendation``; the grid's layout is in ``judge.gridview``,
  the words all renderers share in ``stabcheck.text``.
"""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from stabcheck.judge.gridview import GridTable, by_key, column_label, grid_tables
from stabcheck.judge.quality import is_regression, quality_title
from stabcheck.judge.summary import RunSummary
from stabcheck.report.sparkline import sparkline
from stabcheck.report.terminal.failures import failure_table
from stabcheck.report.terminal.header import class_table, header_table, title_line
from stabcheck.report.terminal.memory import memory_forecast_lines, memory_table
from stabcheck.report.terminal.quality import quality_note, quality_table
from stabcheck.report.terminal.recommendation import recommendation_panel, strategy_table
from stabcheck.report.terminal.widgets import bullet, cause_lines
from stabcheck.results import Outcome, ProbeResult, RunReport
from stabcheck.text import (
    FAILURE_SECTIONS,
    MISSING,
    UNJUDGED_CELL,
    capped_batch_notes,
    cell,
    plural,
    step_suffix,
)
from stabcheck.units import human_bytes

__all__ = ["render_report"]

# Grid words that need a key below the grid.
_UNJUDGED = ("ok? = no numerical or memory failure, learning not judged (not a contender) "
             "though its first rung showed a problem")
_LEGEND: dict[Outcome, str] = {
    Outcome.NON_FINITE: "NaN = a non-finite loss, gradient or weight",
    Outcome.EXPLODING_GRADIENTS: "explodes = exploding gradients",
    Outcome.MINORITY_COLLAPSE: "collapse = a class never predicted",
    Outcome.OVERCORRECTED: "overcorr = overcorrected",
}


# --------------------------------------------------------------------------- grid


def _spark(result: ProbeResult) -> str:
    losses = [s.loss for s in result.run.steps]
    return sparkline(losses, broken=result.verdict.outcome is Outcome.NON_FINITE and bool(losses))


def _cell(result: ProbeResult | None, spark: bool) -> Text:
    """The verdict word (and the step of a failure), over the probe's loss sparkline with
    ``spark``."""
    if result is None:
        return Text(MISSING, style="dim")
    word, style = cell(result)
    suffix = step_suffix(result)
    text = Text(f"{word} {suffix}" if suffix else word, style=style)
    line = _spark(result) if spark else ""
    if line:
        text.append("\n" + line, style=style.replace("bold ", ""))
    return text


def _uniform(grid: GridTable) -> Text | None:
    """One line for a batch size whose every cell ended the same way (all out of memory,
    typically): ``batch size 16384: all 18 probes OOM host (17 not run)``; else None."""
    cells = [result for _, row in grid.rows for result in row]
    if len(cells) < 2 or any(c is None for c in cells):
        return None
    words = {cell(c) for c in cells if c is not None}
    if len(words) != 1:
        return None
    word, style = words.pop()
    skipped = sum(not c.ran for c in cells if c is not None)
    text = Text(f"batch size {grid.batch_size}: ", style="bold")
    text.append(f"all {len(cells)} probes {word}", style=style)
    if skipped:
        text.append(f" ({skipped} not run)", style="dim")
    return text


def _grid_tables(report: RunReport, verbose: bool) -> list[RenderableType]:
    """One rich table per batch size, laid out by ``gridview.grid_tables`` (loss
    sparklines under the words with ``verbose``; a batch size whose cells all ended the
    same way in one line without)."""
    tables: list[RenderableType] = []
    for grid in grid_tables(report):
        line = None if verbose else _uniform(grid)
        if line is not None:
            tables.append(line)
            continue
        table = Table(
            title=f"batch size {grid.batch_size}",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
            show_edge=verbose,
        )
        regression = is_regression(report)
        table.add_column("target" if regression else "class weight", overflow="fold")
        for column in grid.columns:
            table.add_column("\n".join(column_label(column)), justify="center",
                             overflow="fold")
        for strategy, row in grid.rows:
            table.add_row(Text("regression" if regression else strategy),
                          *(_cell(result, verbose) for result in row))
        tables.append(table)
    return tables


def _legend(report: RunReport) -> Text | None:
    outcomes = {r.verdict.outcome for r in report.results}
    parts = [text for outcome, text in _LEGEND.items() if outcome in outcomes]
    if any(cell(r) == UNJUDGED_CELL for r in report.results):
        parts.append(_UNJUDGED)
    if any(r.probe.settings.clip.startswith("global_norm=") for r in report.results):
        parts.append("gnorm = global_clipnorm")
    if any(step_suffix(r) for r in report.results):
        parts.append("@N = at step N")
    cells = by_key(report.results)
    full = (
        len({k[0] for k in cells}) * len({(k[1], k[2]) for k in cells}) * len({k[3] for k in cells})
    )
    if len(cells) < full:
        parts.append(f"{MISSING} = not run")
    return Text("; ".join(parts), style="dim") if parts else None


# --------------------------------------------------------------------------- render


def render_report(report: RunReport, summary: RunSummary, console: Console, *,
                  verbose: bool = False) -> None:
    """Print the report, the answer first: the verdict line, the grid, the recommended
    configuration with its evidence, the failures grouped by cause, memory, notes and
    warnings. ``verbose`` adds the details: the data set and environment, the classes and
    their weights, loss sparklines in the grid, every probe's evidence, the per-class
    quality, the per-strategy summary and the settings the recommendation passed over.

    Args:
        report: the run to show.
        summary: its judgement (``stabcheck.judge.summary.summarize``, once per run).
        console: where to print; colours and width are the console's business.
        verbose: show the details too.
    """
    console.print(title_line(report))
    console.print(Text(summary.verdict, style="bold"))
    if summary.spending:
        console.print(Text(summary.spending, style="dim"))
    if verbose:
        console.print()
        console.print(header_table(report))
        classes = class_table(report)
        if classes is not None:
            console.print()
            console.print(Text("Classes and the weight each class-weight strategy gives them",
                               style="bold underline"))
            console.print(classes)

    console.print()
    console.print(Text("Verdicts", style="bold underline"))
    if report.results:
        for table in _grid_tables(report, verbose):
            console.print(table)
        legend = _legend(report)
        if legend is not None:
            console.print(legend)
        for note in capped_batch_notes(report.results):
            console.print(Text(note, style="yellow"))
    else:
        console.print(Text("no probe ran", style="yellow"))

    if report.results:
        console.print(recommendation_panel(summary, rejected=verbose))

    if summary.causes:
        console.print()
        console.print(Text("Failures by cause", style="bold underline"))
        for cause in summary.causes:
            console.print(cause_lines(cause, beside_memory=report.memory is not None))
    if verbose:
        _probe_sections(report, console)

    if report.memory is not None:
        console.print()
        budget = report.memory.budget_bytes
        title = Text("Memory per batch size", style="bold underline")
        if budget:
            title.append(f"  budget {human_bytes(budget)}"
                         + (f", {report.memory.enforcement}" if report.memory.enforcement
                            else ""), style="dim")
        console.print(title)
        console.print(memory_table(report.memory, budget_column=False))
        for line in memory_forecast_lines(report.memory):
            console.print(bullet(line))

    if summary.notes or report.warnings or report.interrupted:
        console.print()
    for note in summary.notes:
        console.print(bullet(note))
    if report.warnings:
        console.print(Text("Warnings", style="bold yellow"))
    for warning in report.warnings:
        console.print(bullet(warning, style="yellow"))
    if report.interrupted:
        planned = report.probes_planned
        of = f" of {planned}" if planned else ""
        console.print(Text(f"interrupted: {len(report.results)}{of} probes ran",
                           style="bold yellow"))

    if verbose and report.results:
        strategies = None if is_regression(report) else strategy_table(summary)
        if strategies is not None:
            console.print()
            console.print(Text("Per class-weight strategy", style="bold underline"))
            console.print(strategies)
    elif report.results:
        console.print(Text("--verbose: every probe's evidence, per-class tables; --html: charts",
                           style="dim"))


def _probe_sections(report: RunReport, console: Console) -> None:
    """The details: one table per kind of failure (a row per probe, with its evidence),
    and the per-class quality of the probes that trained."""
    for category, title_text, style in FAILURE_SECTIONS:
        failing = [r for r in report.results if r.verdict.category is category]
        ran = [r for r in failing if r.ran]
        if ran:
            console.print()
            console.print(failure_table(title_text, style, ran, console.width))
        for source, count in Counter(
            r.verdict.evidence.get("inferred_from") for r in failing if r not in ran
        ).items():
            console.print(Text(
                f"  + {plural(count, 'more probe')} of the same batch size and optimizer not "
                f"run: they would exhaust memory like {source}", style="dim"))

    quality = quality_table(report, console.width)
    if quality is not None:
        table, left_out = quality
        console.print()
        console.print(Text(quality_title(report), style="bold underline"))
        console.print(table)
        if left_out:
            console.print(Text(f"  + {plural(left_out, 'more probe')} (see the JSON: "
                               "probes[].holdout)", style="dim"))
        note = quality_note(report)
        if note is not None:
            console.print(note)
