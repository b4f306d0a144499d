"""Running a list of jobs: in order on one worker, or on several workers at once.

A job is a probe climbing its rungs under a seed (``Job``). Each result is classified,
journaled and reported the moment it arrives. Probes of a batch size that already ran out
of memory are not run again (see ``same_footprint``). With several workers every worker
keeps its own process (and cgroup): a crash still costs only the job it was running, and
results come back in job order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stabcheck.executors import Runner
from stabcheck.results import (
    Category,
    Probe,
    ProbeResult,
    ProbeRun,
    Termination,
    Verdict,
)

Classifier = Callable[[ProbeRun], Verdict]


@dataclass(frozen=True)
class Job:
    """One probe to run: its settings and rungs (``probe``) under ``seed`` (None: the
    run's seed)."""

    probe: Probe
    seed: int | None = None

    @property
    def key(self) -> tuple[str, str, int | None, int]:
        """What identifies its result in a journal: the probe, its stage, its seed and
        how far it may climb."""
        return (self.probe.id, self.probe.stage, self.seed, self.probe.horizon)


Record = Callable[[int, Job, ProbeResult, bool], None]


class GridRun:
    """Runs a list of jobs and returns their results (in job order) as they finish.

    Args:
        runners: one per parallel worker; the first also serves sequential runs.
        weights: class weights (as the runner takes them) per strategy.
        classifier: ProbeRun -> Verdict.
        record: called with each new result (count, job, result, resumed), under a lock.
        deadline: a ``time.monotonic()`` after which no further job starts (``--budget``
            in time); the jobs not started have no result.
    """

    def __init__(self, runners: list[Runner], weights: dict[str, list[float] | None],
                 classifier: Classifier, record: Record, deadline: float | None = None):
        self._runners = runners
        self._weights = weights
        self._classifier = classifier
        self._record = record
        self._deadline = deadline
        self._lock = threading.Lock()
        self._exhausted: dict[tuple[int, str], ProbeResult] = {}
        self._stop = threading.Event()
        self.skipped = 0  # jobs not started: the deadline passed

    def run(self, jobs: list[Job], done: dict[Any, ProbeResult],
            results: list[ProbeResult] | None = None) -> list[ProbeResult]:
        """Run every job whose key is not in ``done`` (those results are taken as they
        are); on KeyboardInterrupt end all workers, keep in ``results`` those that
        finished, and re-raise."""
        slots: dict[int, ProbeResult] = {}
        pending = iter(list(enumerate(jobs)))
        out = results if results is not None else []
        try:
            if len(self._runners) == 1:
                self._serve(self._runners[0], pending, slots, done)
            else:
                self._parallel(pending, slots, done)
        finally:
            out[:] = [slots[i] for i in sorted(slots)]
        return out

    def _parallel(self, pending: Any, slots: dict[int, ProbeResult],
                  done: dict[Any, ProbeResult]) -> None:
        errors: list[BaseException] = []

        def serve(runner: Runner) -> None:
            try:
                self._serve(runner, pending, slots, done)
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=serve, args=(r,), daemon=True)
                   for r in self._runners]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)  # short joins keep Ctrl-C responsive
        except KeyboardInterrupt:
            self._stop.set()
            for runner in self._runners:
                runner.signal_kill()
            for thread in threads:
                thread.join(30)
            raise
        if errors:
            raise errors[0]

    def _serve(self, runner: Runner, pending: Any, slots: dict[int, ProbeResult],
               done: dict[Any, ProbeResult]) -> None:
        while not self._stop.is_set():
            with self._lock:
                item = next(pending, None)
            if item is None:
                return
            index, job = item
            probe = job.probe
            footprint = (probe.settings.batch_size, probe.settings.optimizer)
            resumed = job.key in done
            with self._lock:
                source = self._exhausted.get(footprint)
            if resumed:
                result = done[job.key]
            elif source is not None:
                result = same_footprint(probe, source)
            elif self._deadline is not None and time.monotonic() >= self._deadline:
                with self._lock:
                    self.skipped += 1
                continue
            else:
                try:
                    run = runner.run(probe, self._weights[probe.settings.class_weight],
                                     seed=job.seed)
                except KeyboardInterrupt:
                    if self._stop.is_set():
                        return  # the run's interrupt ended its worker: no result
                    raise
                if self._stop.is_set():
                    return  # ended by an interrupt: not a result of the probe
                result = ProbeResult(run, self._classifier(run))
            with self._lock:
                if result.verdict.category is Category.MEMORY:
                    self._exhausted.setdefault(footprint, result)
                slots[index] = result
                self._record(len(slots), job, result, resumed)


def same_footprint(probe: Probe, source: ProbeResult) -> ProbeResult:
    """The verdict for a probe not run because one of the same memory footprint ran out.

    A probe's memory is set by the model, the batch size and the optimizer's state; the
    learning rate, the class weights and the clipping threshold do not change it. Running
    the probe again would only repeat the OOM kill (and a TensorFlow import).
    """
    verdict = source.verdict
    evidence = {**verdict.evidence, "inferred_from": source.probe.id, "ran": False}
    summary = (f"not run: batch size {probe.settings.batch_size} already exhausted memory in "
               f"{source.probe.id} ({verdict.summary})")
    run = ProbeRun(probe, Termination.NOT_RUN, memory=source.run.memory)
    return ProbeResult(run, Verdict(verdict.outcome, evidence, summary))
