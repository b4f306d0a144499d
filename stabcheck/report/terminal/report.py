"""The terminal report: display only.

The core computes and never prints; this module (and the CLI) turn a ``RunReport`` into
what people read:

- ``render_report``: the rich terminal report (data set, the grid of verdicts per batch
  size, one section per kind of failure, per-class quality, memory, what to do, the
  recommended configuration). It reads as well in a CI log (no colours, no terminal) as
  in a terminal. Its parts live in modules of their own: ``report_header`` (data set,
  environment, classes), ``failures`` (the failure sections), ``quality`` (per-class
  quality), ``memory_section``, ``advice`` and ``explain`` ("What to do"), ``recommend``
  (the recommended configuration and the per-strategy summary); the grid's layout is in
  ``gridview``, the words all renderers share in ``wording``.
"""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from stabcheck.judge.advice import recommendations
from stabcheck.judge.gridview import by_key, column_label, grid_tables
from stabcheck.judge.quality import is_regression, quality_title
from stabcheck.report.sparkline import sparkline
from stabcheck.report.terminal.failures import failure_table
from stabcheck.report.terminal.header import class_table, header_table
from stabcheck.report.terminal.memory import memory_forecast_lines, memory_table
from stabcheck.report.terminal.quality import quality_note, quality_table
from stabcheck.report.terminal.recommendation import recommendation_panel, strategy_table
from stabcheck.report.terminal.widgets import bullet
from stabcheck.results import Outcome, ProbeResult, RunReport
from stabcheck.text import CELLS, FAILURE_SECTIONS, MISSING, capped_batch_notes, plural, step_suffix

__all__ = ["render_report"]

# Grid words that need a key below the grid.
_LEGEND: dict[Outcome, str] = {
    Outcome.NON_FINITE: "NaN = a non-finite loss, gradient or weight",
    Outcome.EXPLODING_GRADIENTS: "explodes = exploding gradients",
    Outcome.MINORITY_COLLAPSE: "collapse = minority class ignored",
    Outcome.OVERCORRECTED: "overcorr = overcorrected by the class weights",
}


# --------------------------------------------------------------------------- grid


def _spark(result: ProbeResult) -> str:
    losses = [s.loss for s in result.run.steps]
    return sparkline(losses, broken=result.verdict.outcome is Outcome.NON_FINITE and bool(losses))


def _cell(result: ProbeResult | None) -> Text:
    """The verdict word (and the step of a failure) over the probe's loss sparkline."""
    if result is None:
        return Text(MISSING, style="dim")
    word, style = CELLS[result.verdict.outcome]
    suffix = step_suffix(result)
    text = Text(f"{word} {suffix}" if suffix else word, style=style)
    spark = _spark(result)
    if spark:
        text.append("\n" + spark, style=style.replace("bold ", ""))
    return text


def _grid_tables(report: RunReport) -> list[Table]:
    """One rich table per batch size, laid out by ``gridview.grid_tables``."""
    tables = []
    for grid in grid_tables(report):
        table = Table(
            title=f"batch size {grid.batch_size}",
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
        )
        regression = is_regression(report)
        table.add_column("target" if regression else "class weight", overflow="fold")
        for column in grid.columns:
            table.add_column("\n".join(column_label(column)), justify="center",
                             overflow="fold")
        for strategy, row in grid.rows:
            table.add_row(Text("regression" if regression else strategy),
                          *(_cell(result) for result in row))
        tables.append(table)
    return tables


def _legend(report: RunReport) -> Text | None:
    outcomes = {r.verdict.outcome for r in report.results}
    parts = [text for outcome, text in _LEGEND.items() if outcome in outcomes]
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


def render_report(report: RunReport, console: Console) -> None:
    """Print the whole report: data set, grid, failure sections, what to do, warnings.

    Args:
        report: the run to show.
        console: where to print; colours and width are the console's business.
    """
    title = Text(f"stabcheck {report.stabcheck_version}", style="bold")
    title.append(" · probe report", style="default")
    console.print(title)
    console.print(header_table(report))
    classes = class_table(report)
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
        for note in capped_batch_notes(report.results):
            console.print(Text(note, style="yellow"))
    else:
        console.print(Text("no probe ran", style="yellow"))

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

    if report.memory is not None:
        console.print()
        console.print(Text("Memory per batch size", style="bold underline"))
        console.print(memory_table(report.memory))
        for line in memory_forecast_lines(report.memory):
            console.print(bullet(line))

    advice = recommendations(report)
    console.print()
    console.print(Text("What to do", style="bold underline"))
    bullets = [bullet(line) for line in advice[:-1]]
    console.print(Group(*bullets, Text(advice[-1], style="bold")))

    if report.warnings or report.interrupted:
        console.print()
    if report.warnings:
        console.print(Text("Warnings", style="bold yellow"))
        for warning in report.warnings:
            console.print(bullet(warning, style="yellow"))
    if report.interrupted:
        planned = report.probes_planned
        ran = len(report.results)
        of = f" of {planned}" if planned else ""
        console.print(Text(f"interrupted: {ran}{of} probes ran", style="bold yellow"))

    if report.results:
        strategies = None if is_regression(report) else strategy_table(report)
        if strategies is not None:
            console.print()
            console.print(Text("Per class-weight strategy", style="bold underline"))
            console.print(strategies)
        console.print(recommendation_panel(report))
