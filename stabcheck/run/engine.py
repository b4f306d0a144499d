"""``stabcheck probe`` as a library call: settings in, ``RunReport`` out.

Progress goes out through a callback; nothing here prints. Every probe result is appended
to a JSON-lines journal (flushed and fsynced) the moment it is known, so an interrupted
or crashed run loses nothing it had finished.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from stabcheck import __version__
from stabcheck.config.options import NOT_IDENTITY
from stabcheck.config.settings import Settings
from stabcheck.errors import InputError
from stabcheck.executors import Runner, open_executor
from stabcheck.inputs.prepare import Inputs, load_inputs
from stabcheck.judge.classify import classify
from stabcheck.judge.rungs import climb
from stabcheck.judge.trend import early_stop_rule
from stabcheck.memory import cgroup
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
from stabcheck.run.ladder import MemoryReport, build_memory_report
from stabcheck.run.numerics import parse_check_numerics
from stabcheck.run.scheduler import Job
from stabcheck.run.stages import StagedResult, StagedRun


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


class Journal:
    """Appends one JSON line per event; each line is on disk before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def default_journal_path() -> Path:
    """``.stabcheck/runs/<time>-<pid>.jsonl`` under the current folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(".stabcheck") / "runs" / f"{stamp}-{os.getpid()}.jsonl"


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
        t = settings.thresholds
        n_workers = executor.workers(settings.workers)
        init = WorkerInit(str(prepared), inputs.spec.to_json(), settings.loss, settings.optimizer,
                          settings.seed, settings.gpu_memory_budget,
                          early_stop=early_stop_rule(t),
                          extend=True,  # the parent decides at every rung
                          threads=executor.threads(n_workers),
                          backend=settings.backend)
        current: dict[str, Any] = {"total": 0}

        def on_step(probe: Probe, step: int) -> None:
            emit(Progress("step", probe=probe, step=step, total=current["total"]))

        shared: dict[str, Any] = {}  # what the first worker learns, for every runner
        # whether a probe climbs to its next rung (a plain function: a Ray actor calls it
        # too); a time budget's deadline in wall-clock time, which a Ray node reads too
        deadline = None if settings.budget_seconds is None \
            else time.time() + settings.budget_seconds
        extend = functools.partial(climb, class_names=inputs.dataset.class_names,
                                   thresholds=t, deadline=deadline,
                                   class_counts=inputs.dataset.summary().class_counts)
        runners = [executor.runner(init, run_dir, i, timeout=settings.timeout,
                                   memory_budget=settings.memory_budget, on_step=on_step,
                                   name=f"w{i}", shared=shared, extend=extend)
                   for i in range(n_workers)]
        runner = runners[0]
        staged = StagedResult()
        results = staged.results
        seed_probes = staged.seed_probes
        measured: list[ProbeResult] = []
        memory: MemoryReport | None = None
        interrupted = False
        try:
            emit(Progress("loading", f"starting {_workers_text(n_workers, memory_only)} "
                                     f"(imports {settings.backend})"))
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
                settings = inputs.settings
                save_prepared(inputs.dataset, prepared)
                for each in runners:  # their workers loaded the data as it was
                    each.close()
                for extra in runners[1:]:
                    extra.start()
                model = runner.describe()
            inputs = inputs.checked_against(model)
            weights = inputs.weights
            probes = plan_probes(
                settings, lrs=learning_rates(settings, model["baseline_lr"]),
                loss=model["loss"], optimizer=model["optimizer"],
                weights_by_strategy=inputs.weights_by_name,
                n_samples=inputs.dataset.batch_rows,
            )
            template = probes[0]
            if memory_only:
                probes = []
            if previous is not None and (
                previous.probe_ids != [p.id for p in probes]
                or previous.identity != run_identity(settings)
            ):
                raise InputError(f"journal {resume} is of another grid: resume with the same "
                                 "config and flags as the interrupted run")
            current["total"] = len(probes)
            emit(Progress("planned", f"{len(probes)} probes", total=len(probes)))
            journal = Journal(journal_path)
            journal.append({"type": "run" if previous is None else "resumed",
                            "stabcheck_version": __version__, "config": settings.to_json(),
                            "probes": [p.id for p in probes]})
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

            try:
                StagedRun(
                    runners, weights, classifier, record, stage_started,
                    functools.partial(_provisional, inputs), t, seed=settings.seed,
                    seeds=1 if memory_only else settings.seeds,
                    budget_steps=settings.budget_steps,
                    budget_seconds=settings.budget_seconds,
                    done=previous.results if previous else {},
                    class_names=class_names,
                ).run(probes, staged)
                for extra in runners[1:]:  # memory probes run alone: clean peaks
                    extra.close()
                if settings.check_numerics:
                    results[:] = _name_operations(runner, results, weights, journal, emit)
                if ladder is None:
                    ladder = bool(settings.memory_budget) or len(settings.batch_size) > 1
                if memory_only or ladder:
                    memory = _memory(runner, template, results, weights, settings, journal,
                                     emit, memory_only, measured, enforcement,
                                     inputs.dataset.batch_rows)
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
    return RunReport(
        stabcheck_version=__version__,
        environment={**_environment(runner, enforcement, settings.backend),
                     **executor_info},
        dataset=inputs.dataset.summary(),
        class_weight_table=inputs.weights_by_name,
        results=tuple(results),
        warnings=inputs.warnings,
        config={**settings.to_json(), "journal": str(journal_path), "model_info": model},
        interrupted=interrupted,
        probes_planned=len(results) if memory_only else len(probes),
        memory=memory,
        seeds=1 if memory_only else settings.seeds,
        seed_probes=tuple(seed_probes),
        schedule=staged.schedule,
    )


def _workers_text(n_workers: int, memory_only: bool) -> str:
    if memory_only or n_workers == 1:
        return "a probe worker"
    return f"{n_workers} probe workers"


def run_identity(settings: Settings) -> dict[str, Any]:
    """The settings that decide the probes' results (model, data, steps, optimizer, ...):
    the options of ``config.options`` marked ``identity``."""
    return {k: v for k, v in settings.to_json().items() if k not in NOT_IDENTITY}


@dataclass(frozen=True)
class JournalState:
    """What an interrupted run's journal holds: its plan, its settings and its results,
    by the key of the job that produced each (``stabcheck.run.scheduler.Job.key``)."""

    probe_ids: list[str]
    identity: dict[str, Any]
    results: dict[tuple[str, str, int | None, int], ProbeResult]


def journal_record(job: Job, result: ProbeResult) -> dict[str, Any]:
    """A job's result as a journal line: the result's JSON and the job that produced it
    (its stage, seed and rungs), from which a resumed run knows it."""
    kind = "probe" if job.seed is None else "seed_probe"
    extra: dict[str, Any] = {"type": kind,
                             "job": {"stage": job.probe.stage, "seed": job.seed,
                                     "rungs": list(job.probe.rungs)}}
    if job.seed is not None:
        extra["seed"] = job.seed
    return {**extra, **result.to_json()}


def read_journal(path: Path) -> JournalState:
    """Read a journal for ``--resume``; a torn last line (a kill mid-write) is ignored."""
    from stabcheck.run.resultio import probe_result_from_json

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read journal {path}: {exc.strerror or exc}") from None
    probe_ids: list[str] | None = None
    identity: dict[str, Any] = {}
    results: dict[tuple[str, str, int | None, int], ProbeResult] = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise InputError(f"journal {path} line {number} is not JSON") from None
        if record.get("type") in ("run", "resumed") and probe_ids is None:
            probe_ids = list(record.get("probes") or [])
            identity = {k: v for k, v in (record.get("config") or {}).items()
                        if k not in NOT_IDENTITY}
            # a journal from before the backend was a setting: its probes ran TensorFlow
            identity.setdefault("backend", "tensorflow")
        elif record.get("type") in ("probe", "seed_probe") and isinstance(
                record.get("job"), dict):
            job = record["job"]
            result = probe_result_from_json(record)
            probe = replace(result.probe, stage=str(job.get("stage") or ""),
                            rungs=tuple(int(r) for r in job.get("rungs") or ()))
            seed = job.get("seed")
            key = Job(probe, None if seed is None else int(seed)).key
            results[key] = ProbeResult(replace(result.run, probe=probe), result.verdict)
    if probe_ids is None:
        raise InputError(f"{path} is not a stabcheck journal (no run record)")
    return JournalState(probe_ids, identity, results)


def _memory(
    runner: Runner, template: Probe, results: list[ProbeResult],
    weights: dict[str, list[float] | None], settings: Settings, journal: Journal,
    emit: ProgressCallback, memory_only: bool, measured: list[ProbeResult],
    enforcement: str | None, n_samples: int,
) -> MemoryReport:
    """Run the memory ladder; its probes' results are appended to ``measured`` as they
    arrive (so an interrupted ladder keeps what it measured). No batch trains on more
    than the ``n_samples`` training samples, so the ladder plans none beyond them."""

    def record(result: ProbeResult) -> None:
        journal.append({"type": "memory_probe", **result.to_json()})
        measured.append(result)
        emit(Progress("result", probe=result.probe, result=result, step=len(measured),
                      total=0))

    emit(Progress("loading", "measuring memory per batch size"))
    gpu_present = any(d.get("type") == "GPU" for d in runner.environment.get("devices", []))
    report = build_memory_report(
        runner, template, results, budget=settings.memory_budget, enforcement=enforcement,
        class_weights=weights[template.settings.class_weight],
        extra_sizes=settings.batch_size if memory_only else (), on_result=record,
        mixed_policy="mixed_float16" if gpu_present else "mixed_bfloat16",
        max_batch=n_samples, margin=settings.thresholds.memory_margin,
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
    runner: Runner, results: list[ProbeResult], weights: dict[str, list[float] | None],
    journal: Journal, emit: ProgressCallback, limit: int = 3,
) -> list[ProbeResult]:
    """Re-run the first non-finite probes with TensorFlow's check-numerics on, in a fresh
    worker, and add the operation that produced the first Inf/NaN to their evidence."""
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

