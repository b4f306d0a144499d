"""The ``stabcheck`` command line: a thin layer over ``stabcheck.run.engine``.

Expected errors end in one line on stderr and their exit code (2 for usage, config and
input errors); only an unexpected bug shows a traceback (exit 3). This module must not
import TensorFlow or any Keras backend, directly or through what it imports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stabcheck import __version__
from stabcheck.errors import InputError, StabcheckError, UsageError
from stabcheck.judge.gate import fails, parse_fail_on, unprobed_cause
from stabcheck.results import Category, RunReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Probe Keras training settings before a long job: which survive, which die "
    "numerically (NaN, divergence) and which die of memory exhaustion.",
)

_LIST = "Repeat the flag or give a comma-separated list."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stabcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(  # noqa: UP045 - typer needs Optional
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """stabcheck: which training settings will survive, and why the others die."""


# -------------------------------------------------------------------- outputs
_JunitOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--junit", help="Write JUnit XML here (one test case per probe).")]
_MarkdownOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--markdown", help="Write a Markdown summary here (for a pull-request comment).")]
_HtmlOpt = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--html", help="Write a self-contained HTML report with charts here.")]


def _output_flags(junit: Path | None, markdown: Path | None, html: Path | None) -> dict:
    return {"junit": str(junit) if junit else None,
            "markdown": str(markdown) if markdown else None, "html": str(html) if html else None}


def _write_outputs(result: RunReport, policy: frozenset[str], console: Console,
                   junit: Path | None, markdown: Path | None, html: Path | None) -> None:
    """Write the JUnit, Markdown and HTML files that were asked for, and say so."""
    from stabcheck.report.html import write_html
    from stabcheck.report.junit import write_junit
    from stabcheck.report.markdown import write_markdown

    for path, write, what in ((junit, write_junit, "JUnit XML"),
                              (markdown, write_markdown, "Markdown summary"),
                              (html, write_html, "HTML report")):
        if path is None:
            continue
        try:
            write(result, path, policy)
        except OSError as exc:
            raise UsageError(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None
        console.print(f"{what} written to {path}", highlight=False)


# ------------------------------------------------------------------ probe, memory
# Options shared by `probe` and `memory` (`# noqa: UP045`: typer needs Optional).
_Config = Annotated[Optional[Path], typer.Argument(  # noqa: UP045
    help="A TOML config; flags override it.", show_default=False)]
_Model = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="A .keras or .h5 file, file.py:function, package.module:function, or "
    "builtin:mlp / builtin:cnn.")]
_Data = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="An .npz (x, y[, x_val, y_val]), a .csv with --target, an image folder, or "
    "builtin:digits / builtin:breast_cancer.")]
_Target = Annotated[Optional[str], typer.Option(help="Label column of a CSV.")]  # noqa: UP045
_Task = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="auto (default), classification or regression. auto: float targets with "
    "non-integer values, or a regression loss (mse, mae, huber, msle, log_cosh, poisson), "
    "make a regression probe (learning rate x clipping x batch size, no class weights).")]
_Loss = Annotated[Optional[str], typer.Option(help="Override the compiled loss.")]  # noqa: UP045
_Optimizer = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Override the compiled optimizer.")]
_Lr = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--lr", help=f"Learning rates (default: the baseline x 0.1, 1, 10). {_LIST}")]
_ClassWeight = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--class-weight", help="Strategies: none, balanced, sqrt, effective, xN (e.g. x100), "
    f"custom, and the remedies normalized, normalized-<strategy>, focal. {_LIST}")]
_Clip = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--clip", help=f"none, norm=V, value=V, global_norm=V. {_LIST}")]
_BatchSize = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--batch-size", help=f"Batch sizes. {_LIST}")]
_Steps = Annotated[Optional[int], typer.Option(help="Optimizer steps per probe.")]  # noqa: UP045
_MemoryBudget = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--memory-budget", help="Host memory a probe may use, e.g. 2GiB.")]
_GpuBudget = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--gpu-memory-budget", help="GPU memory a probe may use (simulates a smaller card).")]
_Timeout = Annotated[Optional[float], typer.Option(  # noqa: UP045
    help="Wall-clock seconds one probe may take.")]
_Json = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--json", help="Write the machine-readable result here.")]
_Journal = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Append each probe's result here as it arrives (JSON lines).")]
_Resume = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    help="Finish an interrupted run from its journal, without re-running its probes.")]
_Seed = Annotated[Optional[int], typer.Option(help="Seed (default 0).")]  # noqa: UP045
_Seeds = Annotated[Optional[int], typer.Option(  # noqa: UP045
    help="Seeds behind the recommendation: the top 3 finalists are re-probed under "
    "N-1 more seeds and ranked by their worst seed (default 3; 1: no re-probes).")]
_MaxSamples = Annotated[Optional[int], typer.Option(  # noqa: UP045
    "--max-samples", help="Cap on the stratified training sample (default 20000).")]
_Imbalance = Annotated[Optional[float], typer.Option(  # noqa: UP045
    help="Make the data long-tailed for a demonstration: the rarest class keeps this "
    "fraction.")]
_FailOn = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--fail-on", help="Categories or outcomes that fail the run (exit 1); default: "
    f"numerical, memory, crash, error; also any, none. A run in which every probe ended "
    f"error exits 2. {_LIST}")]
_CustomObjects = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--custom-objects", metavar="MODULE",
    help="A module (mypkg.layers) or .py file imported in the worker before the model is "
    "loaded, so that the classes it registers with "
    "@keras.saving.register_keras_serializable load with safe_mode=True. "
    f"{_LIST}")]
_Workers = Annotated[Optional[int], typer.Option(  # noqa: UP045
    help="Probe workers in parallel (default: one per core, at most 4; 1 with a GPU).")]
_CheckNumerics = Annotated[Optional[bool], typer.Option(  # noqa: UP045
    "--check-numerics/--no-check-numerics",
    help="Re-run non-finite probes with TensorFlow's check-numerics to name the operation "
    "that produced the first NaN/Inf.")]


@app.command()
def probe(
    config: _Config = None, model: _Model = None, data: _Data = None, target: _Target = None,
    task: _Task = None, loss: _Loss = None, optimizer: _Optimizer = None, lr: _Lr = None,
    class_weight: _ClassWeight = None, clip: _Clip = None, batch_size: _BatchSize = None,
    steps: _Steps = None, memory_budget: _MemoryBudget = None,
    gpu_memory_budget: _GpuBudget = None, timeout: _Timeout = None, json_path: _Json = None,
    journal: _Journal = None, resume: _Resume = None, seed: _Seed = None,
    seeds: _Seeds = None,
    max_samples: _MaxSamples = None, imbalance: _Imbalance = None, fail_on: _FailOn = None,
    check_numerics: _CheckNumerics = None, workers: _Workers = None,
    custom_objects: _CustomObjects = None,
    junit: _JunitOpt = None, markdown: _MarkdownOpt = None, html: _HtmlOpt = None,
) -> None:
    """Run short probe trainings over a grid of settings and report what survives."""
    _run(config, locals(), memory_only=False)


@app.command()
def memory(
    config: _Config = None, model: _Model = None, data: _Data = None, target: _Target = None,
    task: _Task = None, loss: _Loss = None, optimizer: _Optimizer = None, lr: _Lr = None,
    class_weight: _ClassWeight = None, clip: _Clip = None, batch_size: _BatchSize = None,
    memory_budget: _MemoryBudget = None, gpu_memory_budget: _GpuBudget = None,
    timeout: _Timeout = None, json_path: _Json = None, journal: _Journal = None,
    seed: _Seed = None, max_samples: _MaxSamples = None, fail_on: _FailOn = None,
    custom_objects: _CustomObjects = None,
    junit: _JunitOpt = None, markdown: _MarkdownOpt = None, html: _HtmlOpt = None,
) -> None:
    """Measure peak memory per batch size (each in a fresh process), forecast the largest
    batch size that fits --memory-budget, verify it by a real run, and measure remedies."""
    _run(config, locals(), memory_only=True)


def _run(config: Path | None, params: dict, *, memory_only: bool) -> None:
    """The body of `probe` and `memory`: settings, the run, the report, the exit code."""
    import signal

    from stabcheck.config.settings import build_settings
    from stabcheck.report import json as result_file
    from stabcheck.report.terminal import report
    from stabcheck.run import engine

    flags = {key: value for key, value in params.items()
             if key not in ("config", "json_path", "junit", "markdown", "html", "journal",
                            "resume")}
    flags["json"] = params.get("json_path")
    flags["journal"] = params.get("journal") or params.get("resume")
    flags.update(_output_flags(params.get("junit"), params.get("markdown"), params.get("html")))
    flags = {key: str(value) if isinstance(value, Path) else value
             for key, value in flags.items()}
    settings = build_settings(config, flags)
    policy = parse_fail_on(settings.fail_on)
    # SIGTERM (a CI runner cancelling the job) ends the run like Ctrl-C: workers are
    # ended, the partial report is printed and written, exit code 130.
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(stderr=False)
    try:
        with _ProgressView(Console(stderr=True)) as view:
            result = engine.run_probe_grid(settings, view.update, memory_only=memory_only,
                                           resume=params.get("resume"))
    except KeyboardInterrupt:  # before the first probe: nothing to report
        print("stabcheck: interrupted before any probe ran", file=sys.stderr)
        raise typer.Exit(130) from None
    # Nothing could be probed: the input is wrong, whatever --fail-on says (exit 2).
    cause = None if result.interrupted else unprobed_cause(result.results)
    if cause is not None:
        raise InputError(cause)
    view.release()
    report.render_report(result, console)
    if settings.json:
        result_file.write_json(result, settings.json)
        console.print(f"JSON result written to {settings.json}")
    _write_outputs(result, policy, console, settings.junit, settings.markdown, settings.html)
    if result.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if any(fails(r, policy) for r in result.results) else 0)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# ---------------------------------------------------------- report, init, env
@app.command("report")
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
) -> None:
    """Re-render a saved result (terminal report, JUnit, Markdown, HTML) without re-running."""
    from stabcheck.config.settings import FAIL_ON_DEFAULT
    from stabcheck.report.terminal.report import render_report
    from stabcheck.run.resultio import load_report

    result = load_report(result_file)
    saved = result.config.get("fail_on")
    policy = parse_fail_on(fail_on or (saved if isinstance(saved, list) else FAIL_ON_DEFAULT))
    console = Console()
    render_report(result, console)
    _write_outputs(result, policy, console, junit, markdown, html)
    raise typer.Exit(1 if any(fails(r, policy) for r in result.results) else 0)


@app.command()
def init(
    model: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Your model (a .keras/.h5 file or a factory); default: a built-in demo.")] = None,
    data: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Your data (.npz, .csv, an image folder); default: a built-in demo.")] = None,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Where to write the config.")] = Path("stabcheck.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter stabcheck.toml."""
    from stabcheck.config.template import write_starter

    write_starter(output, model, data, force)
    typer.echo(f"wrote {output}: run it with `stabcheck probe {output}`")


@app.command()
def env(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """Show the backend and versions, GPUs, host memory and how budgets are enforced here."""
    import json

    from rich.table import Table

    from stabcheck.memory.environment import collect_environment
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


# ------------------------------------------------------------------ progress
class _ProgressView:
    """A progress bar over probes on stderr; shows the probe and step running now.

    A probe that did not end ``ok`` gets a line on stderr as it ends; ``error`` lines are
    held back until some probe ends otherwise (or ``release``), so that a run in which
    every probe ended ``error`` leaves only its one-line usage error on stderr.
    """

    def __init__(self, console: Console) -> None:
        self._held: list[str] = []
        self._hold = True
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[detail]}"),
            console=console, transient=True,
        )
        self._task = self._progress.add_task("starting", total=None, detail="")

    def __enter__(self) -> _ProgressView:
        # Only a terminal gets the live bar: in a CI log (or a pipe) it draws nothing, and
        # stopping it there prints a blank line before a usage error's one line.
        if self._progress.console.is_terminal:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress.live.is_started:
            self._progress.stop()

    def release(self) -> None:
        """Print the held ``error`` lines, and hold none from now on."""
        self._hold = False
        for line in self._held:
            self._progress.console.print(line, highlight=False, markup=False)
        self._held.clear()

    def update(self, event: object) -> None:
        from stabcheck.run.engine import Progress as Event

        assert isinstance(event, Event)
        if event.kind == "loading":
            self._progress.update(self._task, description=event.message)
        elif event.kind == "planned":
            self._progress.update(self._task, description="probing", total=event.total,
                                  completed=0)
        elif event.kind == "reprobe":  # the finalists under other seeds (--seeds)
            self._progress.update(self._task, description=event.message, total=event.total,
                                  completed=0)
        elif event.kind == "step" and event.probe is not None:
            planned = event.probe.steps
            detail = (f"{event.probe.id} step {event.step}/{planned}" if event.step <= planned
                      else f"{event.probe.id} step {event.step} (extended: a class is not "
                           "predicted yet)")
            self._progress.update(self._task, detail=detail)
        elif event.kind == "result" and event.result is not None:
            self._progress.update(self._task, completed=event.step)
            verdict = event.result.verdict
            if verdict.category is not Category.ERROR:
                self.release()
            if verdict.category is not Category.OK:
                seed = "" if event.seed is None else f" (seed {event.seed})"
                line = (f"  {event.result.probe.id}{seed}: {verdict.outcome.value} - "
                        f"{verdict.summary}")
                if self._hold:
                    self._held.append(line)
                else:
                    self._progress.console.print(line, highlight=False, markup=False)


def main() -> None:
    """Console-script entry point: expected errors become one line and an exit code."""
    try:
        code = app(standalone_mode=False)
    except StabcheckError as exc:
        print(f"stabcheck: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("stabcheck: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click's own usage errors arrive here too
        try:
            from click import ClickException
        except ImportError:  # newer typer vendors click as typer._click
            from typer._click.exceptions import ClickException

        if isinstance(exc, ClickException):
            print(f"stabcheck: error: {exc.format_message()}", file=sys.stderr)
            sys.exit(2)
        # A bug in stabcheck: the traceback is for the report, exit code 3 for the caller.
        import traceback

        traceback.print_exc()
        print(f"stabcheck: internal error: {type(exc).__name__}: {exc} (please report it)",
              file=sys.stderr)
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
