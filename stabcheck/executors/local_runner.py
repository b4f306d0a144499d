"""The local runner: runs probes one after another in worker processes of this machine,
one worker per batch size, and turns whatever happens to them into ``ProbeRun``s.

A worker that ends without its final message is a *result*: the parent owns the evidence
(exit status, the last step received, the peak memory it sampled, the cgroup's OOM-kill
counter, the tail of stderr) and starts a fresh worker for the remaining probes. The
process itself is ``stabcheck.executors.process``; what the parent observes while it
waits, ``stabcheck.executors.watchdog``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError, InternalError
from stabcheck.executors.process import WorkerProcess, exception_evidence, protocol_float
from stabcheck.executors.runner import (
    STARTUP_ALLOWANCE_S,
    ExtendCallback,
    RunnerBase,
    StepCallback,
    phase_of,
    ran_out_of_memory,
)
from stabcheck.executors.watchdog import Watch, memory_evidence, next_event
from stabcheck.protocol.messages import (
    FINAL,
    FromWorker,
    ParentEvent,
    ProbeMessage,
    ToWorker,
    WorkerInit,
)
from stabcheck.results import (
    MemoryEvidence,
    NonFinite,
    Probe,
    ProbeRun,
    RungEval,
    StepRecord,
    Termination,
    holdout_from_json,
    signal_name,
)
from stabcheck.system import cgroup, nvml


class ProbeRunner(RunnerBase):
    """Runs probes one after another in worker processes, one worker per batch size.

    Args:
        init: what each worker is told at start.
        run_dir: folder for the workers' stderr files.
        timeout: wall-clock seconds one probe may take.
        memory_budget: host bytes a worker may use, or None.
        on_step: called with (probe, step) as step records arrive.
        extend: decides whether a probe that was evaluated trains on (``ExtendCallback``);
            without it a worker asked to wait is told to finish.
        shared: what the runners of one run learn once for all (the same dict for each):
            the model's description, and per dtype policy the run of a worker that ran
            out of memory building the model (every probe under that policy would too).
    """

    def __init__(
        self,
        init: WorkerInit,
        run_dir: Path,
        *,
        timeout: float,
        memory_budget: int | None = None,
        on_step: StepCallback | None = None,
        name: str = "w0",
        shared: dict[str, Any] | None = None,
        extend: ExtendCallback | None = None,
        gpu: str | None = None,
    ) -> None:
        super().__init__(init, timeout=timeout, memory_budget=memory_budget, on_step=on_step,
                         name=name, shared=shared, extend=extend)
        self._gpu_id = gpu
        self._run_dir = run_dir
        # set once stabcheck itself ends this runner's workers (an interrupt, the run's
        # shutdown): a worker that dies then died of it, whatever its exit status says
        self._ending = threading.Event()
        self._gpu = bool(nvml.devices())
        self._worker: WorkerProcess | None = None
        self._worker_batch: tuple[int, str | None, bool] | None = None
        # (dtype policy, check-numerics) the current worker was started with, and whether
        # it has reported ready (a worker started ahead by ``start`` has not yet)
        self._worker_kind: tuple[str | None, bool] = (None, False)
        self._ready = False
        self._count = 0

    # -- lifecycle ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Start the first worker and return its model description.

        Raises:
            InputError: the user's model could not be built or loaded.
            InternalError: the worker died before it could describe the model.
        """
        worker = self._worker if self._worker is not None and not self._ready \
            else self._spawn()
        outcome = self._await_ready(worker, Watch(time.monotonic()))
        if isinstance(outcome, dict):
            return outcome
        self._worker = None
        run = outcome
        if (run.termination is Termination.EXCEPTION and run.exception is not None
                and not run.exception.get("oom")):
            detail = (run.exception.get("message") or "").strip().splitlines()
            raise InputError(
                f"cannot build the model {self._init.model['text']!r}: "
                f"{run.exception.get('etype')}: {detail[-1] if detail else ''}"
            )
        memory = run.memory
        out_of_memory = self._budget and ran_out_of_memory(run)
        if out_of_memory and phase_of(run) == "build":
            # The backend imported; the user's model or data did not fit the budget.
            # That is the probes' finding (each is oom_host while building the model),
            # not a usage error: describe the model from a worker without the budget.
            model = self._describe_unbudgeted()
            self._build_oom[self._init.dtype_policy] = replace(
                run, exception={**(run.exception or {}), "weight_bytes": model.get("weight_bytes")})
            return model
        if out_of_memory:
            raise InputError(
                f"--memory-budget {self._budget >> 20} MiB is too small to start a probe "
                f"worker: it ran out at {(memory.peak_host_bytes or 0) >> 20} MiB while "
                f"importing {self._init.backend}, before the model was loaded"
            )
        if run.termination is Termination.TIMEOUT:
            raise InputError(
                f"the probe worker did not load the model within {self._timeout:g} s plus "
                f"{STARTUP_ALLOWANCE_S:g} s for the import: the model factory may hang"
            )
        raise InternalError(
            f"the probe worker ended before it could load the model "
            f"({signal_name(run.returncode)}); its stderr ends with: "
            f"{run.stderr_tail.strip().splitlines()[-1:] or ['(nothing)']}"
        )

    def _describe_unbudgeted(self) -> dict[str, Any]:
        """The model's description from a worker without ``--memory-budget``."""
        free = ProbeRunner(self._init, self._run_dir, timeout=self._timeout,
                           name=f"{self._name}-describe", gpu=self._gpu_id)
        try:
            model = free.describe()
        finally:
            free.close()
        self.environment = free.environment
        self.model_info = model
        return model

    def start(self) -> None:
        """Start a worker now, without waiting for it: it imports its framework and builds
        the model while the first runner's worker does (the probes' workers of a run start
        side by side, not one after the other). ``run`` waits for it to be ready."""
        if self._worker is None:
            self._spawn()

    def close(self) -> None:
        """Stop the current worker, if any."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def signal_kill(self) -> None:
        """Kill the current worker's processes without waiting (safe from another thread:
        the thread inside ``run`` sees the worker die and cleans up, and its run ends
        ``INTERRUPTED``: stabcheck ended it)."""
        self._ending.set()
        worker = self._worker
        if worker is not None:
            worker.kill()

    def kill(self) -> None:
        """End the current worker at once (on interrupt)."""
        self._ending.set()
        if self._worker is not None:
            self._worker.kill()
            self._worker.reap()
            self._worker = None

    # -- probes ------------------------------------------------------------------------

    def run(
        self, probe: Probe, class_weights: list[float] | None, *, check_numerics: bool = False,
        seed: int | None = None,
    ) -> ProbeRun:
        """Run one probe; never raises for anything the probe or its worker did.

        Probes share a worker while their batch size, dtype policy and check-numerics
        setting are the same; a change starts a fresh worker (clean memory peaks).

        Raises:
            KeyboardInterrupt: stabcheck itself ended the worker (``signal_kill``,
                ``kill``): the probe has no result.
        """
        run = self._run(probe, class_weights, check_numerics=check_numerics, seed=seed)
        if run.termination is Termination.INTERRUPTED:
            raise KeyboardInterrupt
        return run

    def _run(
        self, probe: Probe, class_weights: list[float] | None, *, check_numerics: bool,
        seed: int | None,
    ) -> ProbeRun:
        batch = (probe.settings.batch_size, probe.settings.dtype_policy, check_numerics)
        kind = (probe.settings.dtype_policy, check_numerics)
        if self._worker is not None and (self._worker_batch not in (None, batch)
                                         or self._worker_kind != kind):
            self.close()
        built = self._built_before(probe)
        if built is not None:
            return built
        watch = Watch(time.monotonic())
        if self._worker is None or not self._ready:
            worker = self._worker if self._worker is not None else \
                self._spawn(probe.settings.dtype_policy, check_numerics)
            watch.cgroup_kills_before = worker.cgroup.oom_kills() if worker.cgroup else 0
            ready = self._await_ready(worker, watch, probe)
            if not isinstance(ready, dict):
                self._note_build(ready)
                return ready
            watch = Watch(time.monotonic(), peak=watch.peak, build_peak=watch.build_peak)
        worker = self._worker
        assert worker is not None
        self._worker_batch = batch
        watch.cgroup_kills_before = worker.cgroup.oom_kills() if worker.cgroup else 0
        watch.system_kills_before = cgroup.system_oom_kills()
        request: ProbeMessage = {"type": ToWorker.PROBE.value, "probe": probe.to_json(),
                                 "class_weights": class_weights}
        if seed is not None and seed != self._init.seed:
            request["seed"] = seed
        if not worker.send(request):
            return self._died(worker, probe, watch, [])
        steps: list[StepRecord] = []
        rungs: list[RungEval] = []
        class_grads: list[tuple[int, dict[str, float]]] = []
        while True:
            message = self._next(worker, watch)
            if message is None:
                continue
            if isinstance(message, ParentEvent):
                return self._died(worker, probe, watch, steps, message,
                                  phase="train" if watch.trainer_ready else "optimizer")
            kind = message["type"]
            if kind == FromWorker.TRAINER_READY:
                watch.trainer_ready = True
            if kind == FromWorker.STEP:
                steps.append(StepRecord(message["step"], protocol_float(message["loss"]),
                                        protocol_float(message["grad_norm"])))
                if self._on_step is not None:
                    self._on_step(probe, message["step"])
            if kind == FromWorker.CLASS_GRADS:
                class_grads.append((message["step"], message["norms"]))
                continue
            if kind == FromWorker.EVALUATED:
                rungs.append(RungEval(int(message["step"]), time.monotonic() - watch.started,
                                      holdout_from_json(message["holdout"])))
                watch.rungs = tuple(rungs)
                to = None
                if self._extend is not None:
                    so_far = ProbeRun(probe=probe, termination=Termination.COMPLETED,
                                      steps=tuple(steps), holdout=rungs[-1].holdout,
                                      rungs=tuple(rungs), step_info=message.get("step_info"))
                    to = self._extend(so_far)
                reply = ({"type": ToWorker.EXTEND.value, "to": int(to)} if to
                         else {"type": ToWorker.FINISH.value})
                if not worker.send(reply):
                    return self._died(worker, probe, watch, steps)
                continue
            if kind in FINAL:
                watch.reported = message.get("peak_private_bytes")
                watch.class_grads = tuple(class_grads)
                watch.step_info = message.get("step_info")
            if kind == FromWorker.DONE:
                peak_gpu = max(message.get("peak_gpu_bytes") or 0, watch.gpu_peak or 0) or None
                holdout = holdout_from_json(message["holdout"]) if message.get("holdout") else None
                return self._finished(probe, watch, worker, steps, Termination.COMPLETED,
                                      holdout=holdout, peak_gpu_bytes=peak_gpu)
            elif kind == FromWorker.NONFINITE:
                nonfinite = NonFinite(message["step"], message["where"], message.get("variable"),
                                      message["value"])
                return self._finished(probe, watch, worker, steps, Termination.NON_FINITE,
                                      nonfinite=nonfinite)
            elif kind == FromWorker.EXCEPTION:
                return self._finished(probe, watch, worker, steps, Termination.EXCEPTION,
                                      exception=exception_evidence(message))

    # -- internals ---------------------------------------------------------------------

    def _spawn(self, dtype_policy: str | None = None,
               check_numerics: bool = False) -> WorkerProcess:
        self._count += 1
        stderr = self._run_dir / f"{self._name}-worker-{self._count}.stderr"
        init = replace(self._init, dtype_policy=dtype_policy, check_numerics=check_numerics)
        self._worker = WorkerProcess(init, stderr, self._budget, self._gpu_id)
        self._worker_batch = None
        self._worker_kind = (dtype_policy, check_numerics)
        self._ready = False
        return self._worker

    def _await_ready(
        self, worker: WorkerProcess, watch: Watch, probe: Probe | None = None
    ) -> dict[str, Any] | ProbeRun:
        limit = self._timeout + STARTUP_ALLOWANCE_S
        placeholder = probe or _STARTUP_PROBE
        while True:
            message = self._next(worker, watch, limit)
            if message is None:
                continue
            if isinstance(message, ParentEvent):
                return self._died(worker, placeholder, watch, [], message,
                                  phase="build" if watch.imported else "startup")
            if message["type"] == FromWorker.IMPORTED:
                watch.imported = True
            if message["type"] == FromWorker.READY:
                self._ready = True
                watch.build_peak = message.get("peak_private_bytes") or 0
                self.environment = message["environment"]
                self.model_info = message["model"]
                return message["model"]
            if message["type"] == FromWorker.EXCEPTION:
                return self._finished(placeholder, watch, worker, [], Termination.EXCEPTION,
                                      exception=exception_evidence(message), close=True)

    def _next(
        self, worker: WorkerProcess, watch: Watch, limit: float | None = None
    ) -> dict[str, Any] | ParentEvent | None:
        """The next message or parent event (``watchdog.next_event``); None: keep waiting."""
        return next_event(worker, watch, limit=limit or self._timeout, budget=self._budget,
                          gpu=self._gpu)

    def _memory(self, worker: WorkerProcess, watch: Watch, died: bool) -> MemoryEvidence:
        return memory_evidence(worker, watch, budget=self._budget, died=died,
                               ending=self._ending)

    def _finished(
        self, probe: Probe, watch: Watch, worker: WorkerProcess, steps: list[StepRecord],
        termination: Termination, *, close: bool = False, **extra: Any,
    ) -> ProbeRun:
        run = ProbeRun(
            probe=probe, termination=termination, steps=tuple(steps),
            memory=self._memory(worker, watch, died=False),
            duration_s=time.monotonic() - watch.started,
            stderr_tail=worker.stderr_tail() if termination is Termination.EXCEPTION else "",
            class_grad_norms=watch.class_grads,
            step_info=watch.step_info,
            rungs=watch.rungs,
            **extra,
        )
        if close:
            worker.stop()
            self._worker = None
        return run

    def _died(
        self, worker: WorkerProcess, probe: Probe, watch: Watch, steps: list[StepRecord],
        reason: ParentEvent = ParentEvent.EOF, phase: str = "train",
    ) -> ProbeRun:
        try:
            code: int | None = worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its stdout closed but it lingers: end it
            worker.kill()
            code = worker.proc.wait()
        worker.kill()  # anything left in its process group
        memory = self._memory(worker, watch, died=True)  # before the cgroup is removed
        worker.reap()
        self._worker = None
        termination = {
            ParentEvent.TIMEOUT: Termination.TIMEOUT,
            ParentEvent.OVER_BUDGET: Termination.OVER_BUDGET,
        }.get(reason, Termination.INTERRUPTED if self._ending.is_set() else Termination.DIED)
        return ProbeRun(
            probe=probe, termination=termination, steps=tuple(steps),
            returncode=code, memory=memory,
            stderr_tail=worker.stderr_tail(), duration_s=time.monotonic() - watch.started,
            rungs=watch.rungs,
            exception=None if phase == "train" else {
                "phase": phase, "weight_bytes": self.model_info.get("weight_bytes")},
        )


_STARTUP_PROBE = Probe.from_json({
    "id": "(start-up)",
    "settings": {"class_weight": "none", "class_weights": None, "learning_rate": 0.0,
                 "clip": "none", "batch_size": 0, "optimizer": "", "loss": ""},
    "steps": 0,
})
