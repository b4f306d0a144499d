"""``stabcheck probe`` as a library call: settings in, ``RunReport`` out.

Progress goes out through a callback; nothing here prints. Every probe result is appended
to the run's journal (``stabcheck.run.journal``) the moment it is known, so an interrupted
or crashed run loses nothing it had finished.

``run_probe_grid`` runs its steps in order: load and check the inputs against the model
the first worker describes, plan the grid, run it in stages (``stabcheck.run.stages``),
name the operations of non-finite probes (``--check-numerics``), run the memory ladder
(``stabcheck.run.ladder``), and build the report.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from stabcheck.about import __version__
from stabcheck.config.settings import Settings
from stabcheck.errors import InputError
from stabcheck.executors import Executor, Runner, open_executor
from stabcheck.executors.runner import StepCallback
from stabcheck.inputs.prepare import Inputs, load_inputs
from stabcheck.judge.classify import classify
from stabcheck.judge.rungs import climb
from stabcheck.judge.trend import early_stop_rule
from stabcheck.plan import learning_rates, plan_probes
from stabcheck.protocol.dataset import save_prepared
from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import (
    Outcome,
    Probe,
    ProbeResult,
    ProbeRun,
    RunReport,
    SeedProbe,
    Verdict,
)
from stabcheck.run.journal import (
    Journal,
    default_journal_path,
    journal_record,
    read_journal,
    run_identity,
)
from stabcheck.run.ladder import MemoryReport, build_memory_report
from stabcheck.run.numerics import parse_check_numerics
from stabcheck.run.scheduler import Job
from stabcheck.run.stages import StagedResult, StagedRun, StageHooks, StageSetup
from stabcheck.system import cgroup


@dataclass(frozen=True)
class Progress:
    """One progress event: ``kind`` is "loading", "planned", "step", "result" or "stage"
    (a stage of the grid begins: ``stage`` its name, ``message`` what it runs, ``total``
    its jobs; the "result" and "step" events that follow count within it)."""

    kind: str
    message: str = ""
    probe: Probe | None = None
    step: int = 0
    total: int = 0
    result: ProbeResult | None = None
    seed: int | None = None  # a finalist's re-probe under this seed (``--seeds``)
    stage: str = ""  # "stage": the stage beginning (stabcheck.judge.rungs)


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RunContext:
    """What the steps after planning share: the run's settings (as checked against the
    model), its class weights per strategy, its journal, where progress goes, whether it is
    ``stabcheck memory``, how a budget is enforced here, and the training samples a batch
    can hold at most."""

    settings: Settings
    weights: dict[str, list[float] | None]
    journal: Journal
    emit: ProgressCallback
    memory_only: bool
    enforcement: str | None
    n_samples: int


@dataclass(frozen=True)
class _Plan:
    """The model as the first worker described it, the grid's probes and the grid's first
    setting (the memory ladder's template, also under ``memory_only``)."""

    model: dict[str, Any]
    probes: list[Probe]
    template: Probe


def run_probe_grid(
    settings: Settings,
    progress: ProgressCallback | None = None,
    *,
    memory_only: bool = False,
    resume: Path | None = None,
    ladder: bool | None = None,
) -> RunReport:
    """Load, check, plan and run the probe grid of ``settings``.

    With a memory budget (or several batch sizes) the memory ladder follows the grid:
    peaks per batch size, the forecast of the largest batch size that fits, its
    verification by a real run, and the remedies for the batch sizes that do not fit.
    A KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) during the probes
    ends every worker and returns the report of what finished, marked interrupted.

    Args:
        settings: validated settings.
        progress: receives progress events.
        memory_only: ``stabcheck memory``: skip the grid, run the ladder over
            ``settings.batch_size`` with the grid's first setting.
        resume: the journal of an interrupted run of the same grid: its probes are not
            run again, the rest are, and the journal is continued.
        ladder: whether the memory ladder follows the grid; None: when there is a memory
            budget or several batch sizes (``memory_only`` always runs it).

    Raises:
        UsageError: bad model, data or settings (exit 2), before any probe ran.
    """
    emit = progress or (lambda _event: None)
    started = time.monotonic()
    inputs = load_inputs(settings, lambda message: emit(Progress("loading", message)))
    settings = inputs.settings
    previous = read_journal(resume) if resume is not None else None
    # How a budget is enforced here (a cgroup or the watchdog), found out once per run.
    enforcement = cgroup.enforcement_method() if settings.memory_budget else None
    journal_path = resume or settings.journal or default_journal_path()

    with tempfile.TemporaryDirectory(prefix="stabcheck-") as tmp, ExitStack() as stack:
        run_dir = Path(tmp)
        prepared = run_dir / "dataset.npz"
        save_prepared(inputs.dataset, prepared)
        executor = stack.enter_context(open_executor(
            settings, lambda message: emit(Progress("loading", message)),
            data_bytes=prepared.stat().st_size))
        current: dict[str, Any] = {"total": 0}

        def on_step(probe: Probe, step: int) -> None:
            emit(Progress("step", probe=probe, step=step, total=current["total"]))

        runners = _runners(executor, inputs, prepared, run_dir, on_step)
        runner = runners[0]
        staged = StagedResult()
        results = staged.results
        measured: list[ProbeResult] = []
        memory: MemoryReport | None = None
        interrupted = False
        try:
            inputs, model = _check_model(runners, inputs, prepared, emit, memory_only)
            settings = inputs.settings
            plan = _plan(inputs, model, memory_only)
            if previous is not None and (
                previous.probe_ids != [p.id for p in plan.probes]
                or previous.identity != run_identity(settings)
            ):
                raise InputError(f"journal {resume} is of another grid: resume with the same "
                                 "config and flags as the interrupted run")
            current["total"] = len(plan.probes)
            emit(Progress("planned", f"{len(plan.probes)} probes", total=len(plan.probes)))
            journal = Journal(journal_path)
            journal.append({"type": "run" if previous is None else "resumed",
                            "stabcheck_version": __version__, "config": settings.to_json(),
                            "probes": [p.id for p in plan.probes]})
            context = RunContext(settings, inputs.weights, journal, emit, memory_only,
                                 enforcement, inputs.dataset.batch_rows)
            try:
                _run_stages(context, runners, inputs, plan.probes, staged,
                            previous.results if previous else {}, current)
                for extra in runners[1:]:  # memory probes run alone: clean peaks
                    extra.close()
                if settings.check_numerics:
                    results[:] = _name_operations(context, runner, results)
                if ladder is None:
                    ladder = bool(settings.memory_budget) or len(settings.batch_size) > 1
                if memory_only or ladder:
                    memory = _memory(context, runner, plan.template, results, measured)
            except KeyboardInterrupt:
                interrupted = True
                for each in runners:
                    each.kill()
                journal.append({"type": "interrupted", "done": len(results)})
            finally:
                journal.close()
                if memory_only:  # the ladder's measurements are the results
                    results[:] = measured
        except BaseException:
            for each in runners:  # an error or an interrupt before probing:
                each.kill()  # no worker outlives stabcheck
            raise
        for each in runners:
            each.close()
        executor_info = executor.environment()
        if staged.schedule:
            staged.schedule["run_seconds"] = round(time.monotonic() - started, 3)
    environment = {**_environment(runner, enforcement, settings.backend), **executor_info}
    return _report(context, inputs, plan, staged, environment, memory, interrupted)


def _runners(executor: Executor, inputs: Inputs, prepared: Path, run_dir: Path,
             on_step: StepCallback) -> list[Runner]:
    """The run's runners, one per parallel worker, none started yet; they share what the
    first worker learns, and each asks ``judge.rungs.climb`` whether a probe climbs on."""
    settings = inputs.settings
    t = settings.thresholds
    n_workers = executor.workers(settings.workers)
    init = WorkerInit(str(prepared), inputs.spec.to_json(), settings.loss, settings.optimizer,
                      settings.seed, settings.gpu_memory_budget,
                      early_stop=early_stop_rule(t),
                      extend=True,  # the parent decides at every rung
                      threads=executor.threads(n_workers),
                      backend=settings.backend)
    shared: dict[str, Any] = {}  # what the first worker learns, for every runner
    # whether a probe climbs to its next rung (a plain function: a Ray actor calls it
    # too); a time budget's deadline in wall-clock time, which a Ray node reads too
    deadline = None if settings.budget_seconds is None \
        else time.time() + settings.budget_seconds
    extend = functools.partial(climb, class_names=inputs.dataset.class_names,
                               thresholds=t, deadline=deadline,
                               class_counts=inputs.dataset.summary().class_counts)
    return [executor.runner(init, run_dir, i, timeout=settings.timeout,
                            memory_budget=settings.memory_budget, on_step=on_step,
                            name=f"w{i}", shared=shared, extend=extend)
            for i in range(n_workers)]


def _check_model(runners: list[Runner], inputs: Inputs, prepared: Path,
                 emit: ProgressCallback, memory_only: bool) -> tuple[Inputs, dict[str, Any]]:
    """Start the workers, have the first describe the model, and check the data against
    it: the inputs as checked and the model's description. A model compiled with a
    regression loss reloads the data as a regression target first."""
    runner = runners[0]
    emit(Progress("loading", f"starting {_workers_text(len(runners), memory_only)} "
                             f"(imports {inputs.settings.backend})"))
    if not memory_only:  # the others import their framework beside the first
        for extra in runners[1:]:
            extra.start()
    model = runner.describe()
    if inputs.is_regression_model(model):
        # A model compiled with a regression loss on integer targets (counts,
        # ratings): they are a regression target; the workers reload them as such.
        emit(Progress("loading", f"{model['loss']} is a regression loss: reloading "
                                 "the targets as a regression target"))
        inputs = inputs.as_regression()
        save_prepared(inputs.dataset, prepared)
        for each in runners:  # their workers loaded the data as it was
            each.close()
        for extra in runners[1:]:
            extra.start()
        model = runner.describe()
    return inputs.checked_against(model), model


def _plan(inputs: Inputs, model: dict[str, Any], memory_only: bool) -> _Plan:
    """The grid's probes for ``model`` (none under ``memory_only``) and its first setting."""
    settings = inputs.settings
    probes = plan_probes(
        settings, lrs=learning_rates(settings, model["baseline_lr"]),
        loss=model["loss"], optimizer=model["optimizer"],
        weights_by_strategy=inputs.weights_by_name,
        n_samples=inputs.dataset.batch_rows,
    )
    return _Plan(model, [] if memory_only else probes, probes[0])


def _run_stages(context: RunContext, runners: list[Runner], inputs: Inputs,
                probes: list[Probe], staged: StagedResult,
                done: dict[tuple[str, str, int | None, int], ProbeResult],
                current: dict[str, Any]) -> None:
    """Run the grid in stages (``stabcheck.run.stages``) into ``staged``, journaling and
    reporting each job's result; ``done``: a resumed run's results; ``current["total"]``
    follows the stage's job count (the "step" events read it)."""
    settings, journal, emit = context.settings, context.journal, context.emit
    t = settings.thresholds
    class_names = inputs.dataset.class_names
    counts = inputs.dataset.summary().class_counts

    def record(job: Job, count: int, total: int, result: ProbeResult,
               resumed: bool) -> None:
        if not resumed:
            journal.append(journal_record(job, result))
        emit(Progress("result", probe=result.probe, result=result, step=count,
                      total=total, seed=job.seed))

    def stage_started(name: str, text: str, total: int) -> None:
        current["total"] = total
        emit(Progress("stage", text, total=total, stage=name))

    def classifier(run: ProbeRun) -> Verdict:
        return classify(run, class_names, t, class_counts=counts)

    hooks = StageHooks(classifier, record, stage_started,
                       functools.partial(_provisional, inputs))
    setup = StageSetup(t, seed=settings.seed,
                       seeds=1 if context.memory_only else settings.seeds,
                       budget_steps=settings.budget_steps,
                       budget_seconds=settings.budget_seconds,
                       done=done, class_names=class_names)
    StagedRun(runners, context.weights, hooks, setup).run(probes, staged)


def _report(context: RunContext, inputs: Inputs, plan: _Plan, staged: StagedResult,
            environment: dict[str, Any], memory: MemoryReport | None,
            interrupted: bool) -> RunReport:
    """The run's report: what finished (all of it unless ``interrupted``)."""
    settings, memory_only = context.settings, context.memory_only
    return RunReport(
        stabcheck_version=__version__,
        environment=environment,
        dataset=inputs.dataset.summary(),
        class_weight_table=inputs.weights_by_name,
        results=tuple(staged.results),
        warnings=inputs.warnings,
        config={**settings.to_json(), "journal": str(context.journal.path),
                "model_info": plan.model},
        interrupted=interrupted,
        probes_planned=len(staged.results) if memory_only else len(plan.probes),
        memory=memory,
        seeds=1 if memory_only else settings.seeds,
        seed_probes=tuple(staged.seed_probes),
        schedule=staged.schedule,
    )


def _workers_text(n_workers: int, memory_only: bool) -> str:
    if memory_only or n_workers == 1:
        return "a probe worker"
    return f"{n_workers} probe workers"



def _memory(context: RunContext, runner: Runner, template: Probe,
            results: list[ProbeResult], measured: list[ProbeResult]) -> MemoryReport:
    """Run the memory ladder with ``template``'s setting after the grid's ``results``; its
    probes' results are appended to ``measured`` as they arrive (so an interrupted ladder
    keeps what it measured). No batch trains on more than the context's ``n_samples``
    training samples, so the ladder plans none beyond them."""
    settings, journal, emit = context.settings, context.journal, context.emit

    def record(result: ProbeResult) -> None:
        journal.append({"type": "memory_probe", **result.to_json()})
        measured.append(result)
        emit(Progress("result", probe=result.probe, result=result, step=len(measured),
                      total=0))

    emit(Progress("loading", "measuring memory per batch size"))
    gpu_present = any(d.get("type") == "GPU" for d in runner.environment.get("devices", []))
    report = build_memory_report(
        runner, template, results, budget=settings.memory_budget,
        enforcement=context.enforcement,
        class_weights=context.weights[template.settings.class_weight],
        extra_sizes=settings.batch_size if context.memory_only else (), on_result=record,
        mixed_policy="mixed_float16" if gpu_present else "mixed_bfloat16",
        max_batch=context.n_samples, margin=settings.thresholds.memory_margin,
    )
    return report


def _provisional(inputs: Inputs, results: list[ProbeResult],
                 seed_probes: list[SeedProbe]) -> RunReport:
    """The results so far as a report, for ranking them between stages."""
    return RunReport(stabcheck_version=__version__, environment={},
                     dataset=inputs.dataset.summary(),
                     class_weight_table=inputs.weights_by_name, results=tuple(results),
                     config=inputs.settings.to_json(), seeds=inputs.settings.seeds,
                     seed_probes=tuple(seed_probes))


def _name_operations(
    context: RunContext, runner: Runner, results: list[ProbeResult], limit: int = 3,
) -> list[ProbeResult]:
    """Re-run the first non-finite probes with TensorFlow's check-numerics on, in a fresh
    worker, and add the operation that produced the first Inf/NaN to their evidence."""
    weights, journal, emit = context.weights, context.journal, context.emit
    out = list(results)
    todo = [i for i, r in enumerate(out) if r.verdict.outcome is Outcome.NON_FINITE
            and r.ran][:limit]
    for index in todo:
        result = out[index]
        emit(Progress("loading", f"re-running {result.probe.id} with check-numerics"))
        rerun = runner.run(result.probe, weights[result.probe.settings.class_weight],
                           check_numerics=True)
        found = parse_check_numerics((rerun.exception or {}).get("message") or "")
        if found is None:
            continue
        verdict = result.verdict
        summary = (f"{verdict.summary}; check-numerics: first produced by {found['op_type']} "
                   f"op {found['operation']}")
        out[index] = ProbeResult(result.run, Verdict(verdict.outcome, {
            **verdict.evidence, "check_numerics": found}, summary))
        journal.append({"type": "explained", "id": result.probe.id, "check_numerics": found})
    return out


def _environment(runner: Runner, enforcement: str | None,
                 backend: str) -> dict[str, Any]:
    env = dict(runner.environment)
    env.setdefault("backend", backend)  # the worker's own word, when one started
    env.setdefault("devices", [])
    env["host_memory_bytes"] = psutil.virtual_memory().total
    env["memory_enforcement"] = enforcement or "none (no budget)"
    return env

