"""``stabcheck probe`` and ``stabcheck memory``: settings, the run, the report, the exit code."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from stabcheck.cli.app import app
from stabcheck.cli.options import (
    _Backend,
    _BatchSize,
    _Budget,
    _CheckNumerics,
    _ClassWeight,
    _Clip,
    _Config,
    _CustomObjects,
    _Data,
    _Executor,
    _FailOn,
    _GpuBudget,
    _HtmlOpt,
    _Imbalance,
    _Journal,
    _Json,
    _JunitOpt,
    _Loss,
    _Lr,
    _MarkdownOpt,
    _MaxSamples,
    _MemoryBudget,
    _Model,
    _Optimizer,
    _RayAddress,
    _Resume,
    _Seed,
    _Seeds,
    _Steps,
    _Target,
    _Task,
    _Timeout,
    _Verbose,
    _Workers,
)
from stabcheck.cli.outputs import output_flags, write_outputs
from stabcheck.cli.progress import ProgressView
from stabcheck.errors import InputError
from stabcheck.judge.gate import fails, parse_fail_on, unprobed_cause


@dataclass(frozen=True)
class RunArguments:
    """The flags of ``probe`` and ``memory`` as given (None: not given, the config or the
    default decides); ``memory`` has no steps, seeds, resume, imbalance, workers or
    check-numerics of its own."""

    model: str | None = None
    data: str | None = None
    target: str | None = None
    task: str | None = None
    loss: str | None = None
    optimizer: str | None = None
    lr: list[str] | None = None
    class_weight: list[str] | None = None
    clip: list[str] | None = None
    batch_size: list[str] | None = None
    steps: int | None = None
    memory_budget: str | None = None
    gpu_memory_budget: str | None = None
    timeout: float | None = None
    json_path: Path | None = None
    journal: Path | None = None
    resume: Path | None = None
    seed: int | None = None
    seeds: int | None = None
    budget: str | None = None
    max_samples: int | None = None
    imbalance: float | None = None
    fail_on: list[str] | None = None
    check_numerics: bool | None = None
    workers: int | None = None
    backend: str | None = None
    executor: str | None = None
    ray_address: str | None = None
    custom_objects: list[str] | None = None
    junit: Path | None = None
    markdown: Path | None = None
    html: Path | None = None

    @classmethod
    def of(cls, given: dict[str, Any]) -> RunArguments:
        """The arguments from a command's parameters (its ``locals()``), less the config
        and ``--verbose``."""
        return cls(**{key: value for key, value in given.items()
                      if key not in ("config", "verbose")})

    def flags(self) -> dict:
        """The flags as ``config.settings.build_settings`` takes them."""
        flags = {key: value for key, value in asdict(self).items()
                 if key not in ("json_path", "junit", "markdown", "html", "journal", "resume")}
        flags["json"] = self.json_path
        flags["journal"] = self.journal or self.resume
        flags.update(output_flags(self.junit, self.markdown, self.html))
        return {key: str(value) if isinstance(value, Path) else value
                for key, value in flags.items()}


@app.command(short_help="Probe a grid of training settings: what survives, what dies.")
def probe(
    config: _Config = None, model: _Model = None, data: _Data = None, target: _Target = None,
    task: _Task = None, loss: _Loss = None, optimizer: _Optimizer = None, lr: _Lr = None,
    class_weight: _ClassWeight = None, clip: _Clip = None, batch_size: _BatchSize = None,
    steps: _Steps = None, memory_budget: _MemoryBudget = None,
    gpu_memory_budget: _GpuBudget = None, timeout: _Timeout = None, json_path: _Json = None,
    journal: _Journal = None, resume: _Resume = None, seed: _Seed = None,
    seeds: _Seeds = None, budget: _Budget = None,
    max_samples: _MaxSamples = None, imbalance: _Imbalance = None, fail_on: _FailOn = None,
    check_numerics: _CheckNumerics = None, workers: _Workers = None,
    custom_objects: _CustomObjects = None, backend: _Backend = None,
    executor: _Executor = None, ray_address: _RayAddress = None,
    junit: _JunitOpt = None, markdown: _MarkdownOpt = None, html: _HtmlOpt = None,
    verbose: _Verbose = False,
) -> None:
    """Run short probe trainings over a grid of settings and report what survives."""
    run(config, RunArguments.of(locals()), memory_only=False, verbose=verbose)


@app.command(short_help="Peak memory per batch size, and the largest that fits.")
def memory(
    config: _Config = None, model: _Model = None, data: _Data = None, target: _Target = None,
    task: _Task = None, loss: _Loss = None, optimizer: _Optimizer = None, lr: _Lr = None,
    class_weight: _ClassWeight = None, clip: _Clip = None, batch_size: _BatchSize = None,
    memory_budget: _MemoryBudget = None, gpu_memory_budget: _GpuBudget = None,
    timeout: _Timeout = None, json_path: _Json = None, journal: _Journal = None,
    seed: _Seed = None, max_samples: _MaxSamples = None, fail_on: _FailOn = None,
    custom_objects: _CustomObjects = None, backend: _Backend = None,
    executor: _Executor = None, ray_address: _RayAddress = None,
    junit: _JunitOpt = None, markdown: _MarkdownOpt = None, html: _HtmlOpt = None,
    verbose: _Verbose = False,
) -> None:
    """Measure peak memory per batch size (each in a fresh process), forecast the largest
    batch size that fits --memory-budget, verify it by a real run, and measure remedies."""
    run(config, RunArguments.of(locals()), memory_only=True, verbose=verbose)


def run(config: Path | None, args: RunArguments, *, memory_only: bool,
        verbose: bool = False) -> None:
    """The body of `probe` and `memory`: settings, the run, the report, the exit code.

    The report goes to stdout. stderr carries the progress bar (a terminal only) and, where
    it is all the user sees (stdout redirected, stderr a terminal), a line per failing
    probe as it ends; otherwise those failures would only repeat the report.
    """
    import signal

    from stabcheck.config.settings import build_settings
    from stabcheck.judge.summary import summarize
    from stabcheck.report import json as result_file
    from stabcheck.report.terminal import report
    from stabcheck.run import engine

    settings = build_settings(config, args.flags())
    policy = parse_fail_on(settings.fail_on)
    # SIGTERM (a CI runner cancelling the job) ends the run like Ctrl-C: workers are
    # ended, the partial report is printed and written, exit code 130.
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(stderr=False)
    echo = not sys.stdout.isatty() and sys.stderr.isatty()
    try:
        with ProgressView(Console(stderr=True), echo_failures=echo) as view:
            result = engine.run_probe_grid(settings, view.update, memory_only=memory_only,
                                           resume=args.resume)
    except KeyboardInterrupt:  # before the first probe: nothing to report
        print("stabcheck: interrupted before any probe ran", file=sys.stderr)
        raise typer.Exit(130) from None
    # Nothing could be probed: the input is wrong, whatever --fail-on says (exit 2).
    cause = None if result.interrupted else unprobed_cause(result.results)
    if cause is not None:
        raise InputError(cause)
    view.release()
    judged = summarize(result)  # the run's one judgement: every view renders it
    report.render_report(result, judged, console, verbose=verbose)
    if settings.json:
        result_file.write_json(result, judged, settings.json)
        console.print(f"JSON result written to {settings.json}")
    write_outputs(result, judged, policy, console, settings.junit, settings.markdown,
                  settings.html)
    if result.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if any(fails(r, policy) for r in result.results) else 0)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
