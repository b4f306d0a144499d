"""``stabcheck report``, ``stabcheck init`` and ``stabcheck env``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from stabcheck.cli.app import app
from stabcheck.cli.options import _LIST, _HtmlOpt, _JunitOpt, _MarkdownOpt, _Verbose
from stabcheck.cli.outputs import write_outputs
from stabcheck.judge.gate import fails, parse_fail_on


@app.command("report", short_help="Re-render a saved JSON result without re-running.")
def report_command(
    result_file: Annotated[Path, typer.Argument(
        metavar="RESULT.json", help="A result written by `stabcheck probe --json`.",
        show_default=False)],
    junit: _JunitOpt = None,
    markdown: _MarkdownOpt = None,
    html: _HtmlOpt = None,
    fail_on: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--fail-on", help="Categories or outcomes that fail (exit 1); default: the saved "
        f"run's own policy. {_LIST}")] = None,
    verbose: _Verbose = False,
) -> None:
    """Re-render a saved result (terminal report, JUnit, Markdown, HTML) without re-running."""
    from stabcheck.config.settings import FAIL_ON_DEFAULT
    from stabcheck.judge.summary import summarize
    from stabcheck.report.terminal.report import render_report
    from stabcheck.run.resultio import load_report

    result = load_report(result_file)
    saved = result.config.get("fail_on")
    policy = parse_fail_on(fail_on or (saved if isinstance(saved, list) else FAIL_ON_DEFAULT))
    console = Console()
    judged = summarize(result)  # judged again from the probes, as the run judged them
    render_report(result, judged, console, verbose=verbose)
    write_outputs(result, judged, policy, console, junit, markdown, html)
    raise typer.Exit(1 if any(fails(r, policy) for r in result.results) else 0)


@app.command(short_help="Write a commented starter stabcheck.toml.")
def init(
    model: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Your model (a .keras/.h5 file or a factory); default: a built-in demo.")] = None,
    data: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Your data (.npz, .csv, .parquet, an image folder); default: a built-in "
        "demo.")] = None,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the config.")] = Path("stabcheck.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter stabcheck.toml.

    For a CSV or Parquet file, the label column is the one named like labels (label,
    target, class or y), else the last column; init says which it chose.
    """
    from stabcheck.config.template import write_starter

    target = _guess_target(data)
    write_starter(output, model, data, force, target)
    typer.echo(f"wrote {output}: run it with `stabcheck probe {output}`")
    if target is not None:
        typer.echo(f"label column: '{target[0]}' ({target[1]}); change target in {output} "
                   "if it is another")


def _guess_target(data: str | None) -> tuple[str, str] | None:
    """The label column of a ``.csv``/``.parquet`` data file and why it was chosen; None
    for other data, or a file not there yet."""
    from stabcheck.inputs.tables import TABLE_SUFFIXES, guess_target, table_columns

    if data is None or Path(data).suffix.lower() not in TABLE_SUFFIXES:
        return None
    path = Path(data).expanduser()
    if not path.is_file():
        return None
    return guess_target(table_columns(data, path))


@app.command(short_help="Backend, GPUs, host memory, how budgets are enforced.")
def env(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Show the backend and versions, GPUs, host memory and how budgets are enforced here."""
    import json

    from rich.table import Table

    from stabcheck.system.environment import collect_environment
    from stabcheck.units import human_bytes

    info = collect_environment()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title="stabcheck environment", title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("stabcheck", info["stabcheck_version"])
    table.add_row("python", f"{info['python']} ({info['platform']})")
    table.add_row("backend", f"{info['backend']} (in the probe workers only)")
    for name, found in info["packages"].items():
        table.add_row(name, f"{found['version']} ({found['distribution']})" if found
                      else "not installed")
    for gpu in info["gpus"]:
        table.add_row(f"GPU {gpu['index']}", f"{gpu['name']}, {human_bytes(gpu['memory_bytes'])}"
                      f", driver {gpu['driver']}")
    if not info["gpus"]:
        table.add_row("GPU", f"no NVIDIA GPU ({info['gpu_note']})")
    table.add_row("host memory", f"{human_bytes(info['host_memory_bytes'])} "
                  f"({human_bytes(info['host_memory_available_bytes'])} available), "
                  f"{info['cpu_count']} CPUs")
    table.add_row("memory budgets", f"{info['memory_enforcement']}: "
                  f"{info['memory_enforcement_detail']}")
    Console().print(table)
