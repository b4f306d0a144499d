"""The terminal report and the JSON result file: display only.

The core computes and never prints; this module (and the CLI) turn a ``RunReport`` into
what people and machines read:

- ``render_report``: the rich terminal report (data set, the grid of verdicts per batch
  size, one section per kind of failure, per-class quality, memory, what to do, the
  recommended configuration). It reads as well in a CI log (no colours, no terminal) as
  in a terminal. Its parts live in modules of their own: ``report_header`` (data set,
  environment, classes), ``failures`` (the failure sections), ``quality`` (per-class
  quality), ``memory_section``, ``advice`` and ``explain`` ("What to do"), ``recommend``
  (the recommended configuration and the per-strategy summary); the grid's layout is in
  ``gridview``, the words all renderers share in ``wording``.
- ``write_json``: the strict-JSON result of the contract (``result_json``), written
  atomically.
- ``load_schema``: the JSON Schema of that result, kept in the package.

The public names of those modules that callers used to import from here are re-exported.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from stabcheck.judge.advice import recommendations, summary_counts
from stabcheck.judge.explain import numerical_explanations, where_it_failed
from stabcheck.report.terminal.failures import SECTIONS, failure_table
from stabcheck.judge.gridview import by_key, column_label, grid_tables
from stabcheck.report.terminal.memory import memory_forecast_lines, memory_table
from stabcheck.judge.quality import (
    is_regression,
    quality_note,
    quality_results,
    quality_table,
    quality_title,
)
from stabcheck.judge.recommend import (
    recommendation_panel,
    recommended_configuration,
    strategy_summary,
    strategy_table,
)
from stabcheck.report.terminal.header import class_table, header_table
from stabcheck.results import Outcome, ProbeResult, RunReport
from stabcheck.report.sparkline import SPARK_WIDTH, sparkline
from stabcheck.units import human_bytes
from stabcheck.text import (
    CELLS,
    MISSING,
    bullet,
    capped_batch_notes,
    plural,
    step_suffix,
)

__all__ = [
    "SPARK_WIDTH",
    "human_bytes",
    "load_schema",
    "memory_forecast_lines",
    "numerical_explanations",
    "quality_results",
    "recommendations",
    "recommended_configuration",
    "render_report",
    "result_json",
    "sparkline",
    "strategy_summary",
    "summary_counts",
    "where_it_failed",
    "write_json",
]

SCHEMA_RESOURCE = "result_schema.json"

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

    for category, title_text, style in SECTIONS:
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



# --------------------------------------------------------------------------- JSON


def _json_default(value: Any) -> Any:
    """Numpy scalars and arrays, should one slip into the report, as plain JSON values."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def result_json(report: RunReport) -> dict[str, Any]:
    """The contract's JSON result of ``report``, as ``write_json`` writes it.

    ``RunReport.to_json()`` plus what the report concludes from it:
    ``recommended_configuration`` (``recommend.recommended_configuration``, null where no
    setting was stable) and ``strategy_summary`` (``recommend.strategy_summary``). Both are
    derived from the probes alone, so a result read back (``resultio.load_report``) gives
    the same dict again.
    """
    return {
        **report.to_json(),
        "recommended_configuration": recommended_configuration(report),
        "strategy_summary": strategy_summary(report),
    }


def write_json(report: RunReport, path: Path) -> None:
    """Write the contract's strict-JSON result (``result_json``) to ``path``, atomically.

    The text is produced in full before the file is touched (``allow_nan=False``: a NaN
    that slipped past ``RunReport.to_json`` is a bug, not a file), then written to a
    temporary file next to ``path`` and moved over it, so a reader never sees half a file.

    Args:
        report: the run to write.
        path: the destination; its folder is created if missing.
    """
    text = json.dumps(
        result_json(report), indent=2, allow_nan=False, ensure_ascii=False,
        default=_json_default,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would outlive the rename; open() honours the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the result ``write_json`` writes."""
    text = resources.files("stabcheck.report").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)
