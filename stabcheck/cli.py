"""The ``stabcheck`` command line: a thin layer over ``stabcheck.engine``.

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
from stabcheck.errors import ConfigError, StabcheckError
from stabcheck.results import Category, Outcome, ProbeResult

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


@app.command()
def probe(
    config: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        help="A TOML config; flags override it.", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="A .keras or .h5 file, file.py:function, package.module:function, or "
        "builtin:mlp / builtin:cnn.")] = None,
    data: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="An .npz (x, y[, x_val, y_val]), a .csv with --target, an image folder, or "
        "builtin:digits / builtin:breast_cancer.")] = None,
    target: Annotated[Optional[str], typer.Option(help="Label column of a CSV.")] = None,  # noqa: UP045
    loss: Annotated[Optional[str], typer.Option(help="Override the compiled loss.")] = None,  # noqa: UP045
    optimizer: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Override the compiled optimizer.")] = None,
    lr: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--lr", help=f"Learning rates (default: the baseline x 0.1, 1, 10). {_LIST}")] = None,
    class_weight: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--class-weight", help="Strategies: none, balanced, sqrt, effective, xN (e.g. x100), "
        f"custom. {_LIST}")] = None,
    clip: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--clip", help=f"none, norm=V, value=V, global_norm=V. {_LIST}")] = None,
    batch_size: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--batch-size", help=f"Batch sizes. {_LIST}")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps per probe.")] = None,  # noqa: UP045
    memory_budget: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--memory-budget", help="Host memory a probe may use, e.g. 2GiB.")] = None,
    gpu_memory_budget: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--gpu-memory-budget", help="GPU memory a probe may use (simulates a smaller card).")
    ] = None,
    timeout: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Wall-clock seconds one probe may take.")] = None,
    json_path: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--json", help="Write the machine-readable result here.")] = None,
    journal: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Append each probe's result here as it arrives (JSON lines).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 0).")] = None,  # noqa: UP045
    max_samples: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--max-samples", help="Cap on the stratified training sample (default 20000).")] = None,
    imbalance: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Make the data long-tailed for a demonstration: the rarest class keeps this "
        "fraction.")] = None,
    fail_on: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--fail-on", help="Categories or outcomes that fail the run (exit 1); default "
        f"numerical,memory,crash; also any, none. {_LIST}")] = None,
) -> None:
    """Run short probe trainings over a grid of settings and report what survives."""
    from stabcheck.config import build_settings

    flags = {
        "model": model, "data": data, "target": target, "loss": loss, "optimizer": optimizer,
        "lr": lr, "class_weight": class_weight, "clip": clip, "batch_size": batch_size,
        "steps": steps, "memory_budget": memory_budget, "gpu_memory_budget": gpu_memory_budget,
        "timeout": timeout, "json": str(json_path) if json_path else None,
        "journal": str(journal) if journal else None, "seed": seed, "max_samples": max_samples,
        "imbalance": imbalance, "fail_on": fail_on,
    }
    settings = build_settings(config, flags)
    policy = parse_fail_on(settings.fail_on)
    from stabcheck import engine, report

    console = Console(stderr=False)
    with _ProgressView(Console(stderr=True)) as view:
        result = engine.run_probe_grid(settings, view.update)
    report.render_report(result, console)
    if settings.json:
        report.write_json(result, settings.json)
        console.print(f"JSON result written to {settings.json}")
    raise typer.Exit(1 if any(fails(r, policy) for r in result.results) else 0)


def parse_fail_on(items: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Validate ``--fail-on`` values: categories, outcomes, ``any`` or ``none``."""
    known = {c.value for c in Category} | {o.value for o in Outcome} | {"any", "none"}
    chosen = set()
    for item in items:
        for part in str(item).split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in known:
                raise ConfigError(
                    f"unknown --fail-on value {part!r}; expected a category "
                    f"({', '.join(c.value for c in Category)}), an outcome, any or none"
                )
            chosen.add(name)
    return frozenset(chosen)


def fails(result: ProbeResult, policy: frozenset[str]) -> bool:
    """Whether ``result`` fails the run under the ``--fail-on`` policy."""
    if "none" in policy:
        return False
    if "any" in policy:
        return result.verdict.category is not Category.OK
    return bool({result.verdict.outcome.value, result.verdict.category.value} & policy)


class _ProgressView:
    """A progress bar over probes on stderr; shows the probe and step running now."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[detail]}"),
            console=console, transient=True,
        )
        self._task = self._progress.add_task("starting", total=None, detail="")

    def __enter__(self) -> _ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, event: object) -> None:
        from stabcheck.engine import Progress as Event

        assert isinstance(event, Event)
        if event.kind == "loading":
            self._progress.update(self._task, description=event.message)
        elif event.kind == "planned":
            self._progress.update(self._task, description="probing", total=event.total,
                                  completed=0)
        elif event.kind == "step" and event.probe is not None:
            self._progress.update(self._task, detail=f"{event.probe.id} step {event.step}/"
                                  f"{event.probe.steps}")
        elif event.kind == "result" and event.result is not None:
            self._progress.update(self._task, completed=event.step)
            verdict = event.result.verdict
            if verdict.category is not Category.OK:
                self._progress.console.print(
                    f"  {event.result.probe.id}: {verdict.outcome.value} - {verdict.summary}",
                    highlight=False, markup=False)


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
        import click

        if isinstance(exc, click.ClickException):
            print(f"stabcheck: error: {exc.format_message()}", file=sys.stderr)
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
