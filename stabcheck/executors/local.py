"""Runs probes in worker processes and turns whatever happens to them into ``ProbeRun``s.

The parent/child protocol (JSON lines; only JSON-safe values cross the boundary) is
drawn and typed in one place, ``stabcheck.protocol.messages``. All the while a probe runs,
the parent samples the worker tree's memory every 50 ms (psutil), enforces --timeout and,
without a cgroup, the memory budget; the worker's stderr goes to a file.

A worker that ends without its final message is a *result*: the parent owns the evidence
(exit status, the last step received, the peak memory it sampled, the cgroup's OOM-kill
counter, the tail of stderr) and starts a fresh worker for the remaining probes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from stabcheck.errors import InputError, InternalError
from stabcheck.memory import cgroup, kernel_log, nvml
from stabcheck.protocol.messages import (
    FINAL,
    FromWorker,
    ParentEvent,
    ProbeMessage,
    ToWorker,
    WorkerInit,
)
from stabcheck.results import (
    HoldoutEval,
    MemoryEvidence,
    NonFinite,
    Probe,
    ProbeRun,
    RegressionEval,
    RungEval,
    StepRecord,
    Termination,
    holdout_from_json,
    signal_name,
)

SAMPLE_INTERVAL_S = 0.05
# Importing TensorFlow and building a model may take this long beyond --timeout before
# a worker counts as hung at start-up (TensorFlow's import alone is ~6 s on 2 cores).
STARTUP_ALLOWANCE_S = 120.0


StepCallback = Callable[[Probe, int], None]
# Asked with the run so far (its steps, its held-out evaluation) when a worker has
# evaluated a probe: the step to train on to, or None to finish (``WorkerInit.extend``).
ExtendCallback = Callable[[ProbeRun], "int | None"]


def worker_environment(init: WorkerInit, gpu: str | None = None) -> dict[str, str]:
    """A worker's environment: stabcheck's, with its Keras backend and, when it is given
    one GPU (``gpu``: an NVML index or a UUID), only that GPU, numbered as NVML numbers
    them unless the user chose an order."""
    env = {**os.environ, "KERAS_BACKEND": init.backend, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu is not None:
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


class _Worker:
    """One worker process, its reader thread, its cgroup and its stderr file.

    ``gpu``: the GPU it may see (its NVML index or UUID), or None for all that stabcheck
    sees; its Keras backend is ``init.backend``.
    """

    def __init__(self, init: WorkerInit, stderr_path: Path, memory_budget: int | None,
                 gpu: str | None = None) -> None:
        self.stderr_path = stderr_path
        self.cgroup = cgroup.create_cgroup(memory_budget)
        self.enforcement = (
            None if memory_budget is None
            else f"cgroup-v{self.cgroup.version}" if self.cgroup else "watchdog"
        )
        cmd = [sys.executable, "-m", "stabcheck.worker"]
        if self.cgroup is not None:  # join the cgroup before Python starts: nothing escapes it
            cmd = ["/bin/sh", "-c", 'echo $$ > "$1" || exit 97; shift; exec "$@"', "sh",
                   str(self.cgroup.procs_file), *cmd]
        env = worker_environment(init, gpu)
        self._stderr = stderr_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, start_new_session=True,  # Ctrl-C reaches stabcheck, which ends workers
        )
        self.messages: queue.Queue[dict[str, Any] | ParentEvent] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ps = _process(self.proc.pid)
        self.send(init.message())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.messages.put(ParentEvent.EOF)

    def send(self, message: dict[str, Any]) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(message, allow_nan=False) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def rss_bytes(self) -> int | None:
        """Private resident memory (anonymous pages) of the worker and its descendants.

        File-backed pages (TensorFlow's shared libraries, ~300 MiB) are left out: the
        kernel can drop and re-read them under a memory limit, so they neither count
        against a cgroup budget in the end nor cause an OOM kill.
        """
        if self._ps is None:
            return None
        try:
            procs = [self._ps, *self._ps.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_info()
                total += info.rss - getattr(info, "shared", 0)
        return total

    def kill(self) -> None:
        """End the worker and anything it started (its whole process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def stop(self) -> None:
        """Ask the worker to exit, then make sure it did; free its cgroup."""
        if self.proc.poll() is None:
            self.send({"type": ToWorker.EXIT.value})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.reap()

    def reap(self) -> int:
        """Wait for the dead worker, close its files, remove its cgroup; its exit status."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        return code

    def stderr_tail(self, limit: int = 3000) -> str:
        try:
            with self.stderr_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


@dataclass
class _Watch:
    """What the parent observes while waiting on a worker."""

    started: float
    peak: int = 0  # the largest private-memory sample of the worker tree
    reported: int | None = None  # the worker's own high-water mark of its probe's training
    build_peak: int = 0  # the worker's high-water mark when it was ready (import, model)
    imported: bool = False  # the worker got past importing the backend
    trainer_ready: bool = False  # the probe's optimizer state is allocated
    gpu_peak: int | None = None
    class_grads: tuple[tuple[int, dict[str, float]], ...] = ()
    rungs: tuple[RungEval, ...] = ()  # the held-out evaluations so far
    step_info: dict[str, Any] | None = None
    cgroup_kills_before: int = 0
    system_kills_before: int = 0


class RunnerBase:
    """What every runner holds: its workers' init, the probe settings it enforces, and
    what the runners of one run learn once for all, kept in one dict they share: the
    model's description (``model_info``), and per dtype policy the run of a worker that
    ran out of memory building the model (every probe under that policy would too)."""

    def __init__(self, init: WorkerInit, *, timeout: float, memory_budget: int | None,
                 on_step: StepCallback | None, name: str, shared: dict[str, Any] | None,
                 extend: ExtendCallback | None) -> None:
        self._init = init
        self._timeout = timeout
        self._budget = memory_budget
        self._on_step = on_step
        self._name = name
        self._extend = extend
        self._shared = shared if shared is not None else {}
        self._build_oom: dict[str | None, ProbeRun] = self._shared.setdefault("build_oom", {})
        self.environment: dict[str, Any] = {}

    @property
    def model_info(self) -> dict[str, Any]:
        """The model as the first worker described it ({} before)."""
        return self._shared.get("model_info", {})

    @model_info.setter
    def model_info(self, value: dict[str, Any]) -> None:
        self._shared["model_info"] = value

    @property
    def build_oom(self) -> dict[str | None, ProbeRun]:
        """Per dtype policy, the run of a worker that ran out of memory building the model."""
        return dict(self._build_oom)

    def _built_before(self, probe: Probe) -> ProbeRun | None:
        """``probe``'s run when building the model under its policy already ran out."""
        first = self._build_oom.get(probe.settings.dtype_policy)
        return None if first is None else measured_once(first, probe)

    def _note_build(self, run: ProbeRun) -> None:
        """Keep ``run`` if it ran out of memory building the model (never one that
        stabcheck ended itself: that says nothing of the model)."""
        if run.termination is not Termination.INTERRUPTED and built_out_of_memory(run):
            self._build_oom[run.probe.settings.dtype_policy] = run


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
        self._worker: _Worker | None = None
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
        outcome = self._await_ready(worker, _Watch(time.monotonic()))
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
        out_of_memory = self._budget and _ran_out_of_memory(run)
        if out_of_memory and _phase_of(run) == "build":
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
        watch = _Watch(time.monotonic())
        if self._worker is None or not self._ready:
            worker = self._worker if self._worker is not None else \
                self._spawn(probe.settings.dtype_policy, check_numerics)
            watch.cgroup_kills_before = worker.cgroup.oom_kills() if worker.cgroup else 0
            ready = self._await_ready(worker, watch, probe)
            if not isinstance(ready, dict):
                self._note_build(ready)
                return ready
            watch = _Watch(time.monotonic(), peak=watch.peak, build_peak=watch.build_peak)
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
            message = self._next(worker, watch, probe)
            if message is None:
                continue
            if isinstance(message, ParentEvent):
                return self._died(worker, probe, watch, steps, message,
                                  phase="train" if watch.trainer_ready else "optimizer")
            kind = message["type"]
            if kind == FromWorker.TRAINER_READY:
                watch.trainer_ready = True
            if kind == FromWorker.STEP:
                steps.append(StepRecord(message["step"], _float(message["loss"]),
                                        _float(message["grad_norm"])))
                if self._on_step is not None:
                    self._on_step(probe, message["step"])
            if kind == FromWorker.CLASS_GRADS:
                class_grads.append((message["step"], message["norms"]))
                continue
            if kind == FromWorker.EVALUATED:
                rungs.append(RungEval(int(message["step"]), time.monotonic() - watch.started,
                                      _holdout(message["holdout"])))
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
                holdout = _holdout(message["holdout"]) if message.get("holdout") else None
                return self._finished(probe, watch, worker, steps, Termination.COMPLETED,
                                      holdout=holdout, peak_gpu_bytes=peak_gpu)
            elif kind == FromWorker.NONFINITE:
                nonfinite = NonFinite(message["step"], message["where"], message.get("variable"),
                                      message["value"])
                return self._finished(probe, watch, worker, steps, Termination.NON_FINITE,
                                      nonfinite=nonfinite)
            elif kind == FromWorker.EXCEPTION:
                return self._finished(probe, watch, worker, steps, Termination.EXCEPTION,
                                      exception=_exception(message))

    # -- internals ---------------------------------------------------------------------

    def _spawn(self, dtype_policy: str | None = None, check_numerics: bool = False) -> _Worker:
        self._count += 1
        stderr = self._run_dir / f"{self._name}-worker-{self._count}.stderr"
        init = replace(self._init, dtype_policy=dtype_policy, check_numerics=check_numerics)
        self._worker = _Worker(init, stderr, self._budget, self._gpu_id)
        self._worker_batch = None
        self._worker_kind = (dtype_policy, check_numerics)
        self._ready = False
        return self._worker

    def _await_ready(
        self, worker: _Worker, watch: _Watch, probe: Probe | None = None
    ) -> dict[str, Any] | ProbeRun:
        limit = self._timeout + STARTUP_ALLOWANCE_S
        placeholder = probe or _STARTUP_PROBE
        while True:
            message = self._next(worker, watch, placeholder, limit)
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
                                      exception=_exception(message), close=True)

    def _next(
        self, worker: _Worker, watch: _Watch, probe: Probe, limit: float | None = None
    ) -> dict[str, Any] | ParentEvent | None:
        """The next message or parent event (``EOF``, ``TIMEOUT``, ``OVER_BUDGET``); None:
        keep waiting."""
        try:
            return worker.messages.get(timeout=SAMPLE_INTERVAL_S)
        except queue.Empty:
            pass
        gpu_bytes = nvml.process_memory({worker.proc.pid}) if self._gpu else None
        if gpu_bytes is not None:
            watch.gpu_peak = max(watch.gpu_peak or 0, gpu_bytes)
        rss = worker.rss_bytes()
        if rss is not None:
            watch.peak = max(watch.peak, rss)
            if worker.enforcement == "watchdog" and self._budget and rss > self._budget:
                worker.kill()
                return ParentEvent.OVER_BUDGET
        if time.monotonic() - watch.started > (limit or self._timeout):
            worker.kill()
            return ParentEvent.TIMEOUT
        return None

    def _memory(self, worker: _Worker, watch: _Watch, died: bool) -> MemoryEvidence:
        kills = 0
        if worker.cgroup is not None:
            kills = worker.cgroup.oom_kills() - watch.cgroup_kills_before
        # The kernel's OOM killer ended it: its log names the pid. Where the log cannot
        # be read, the machine-wide counter moved while it died (and stabcheck did not
        # end it): weaker evidence, the best there is.
        system = False
        if died and not self._ending.is_set():
            logged = kernel_log.oom_killed(worker.proc.pid)
            system = logged if logged is not None else \
                cgroup.system_oom_kills() > watch.system_kills_before
        # A worker that reported its own high-water mark measured its training exactly
        # (its held-out evaluation, after it, is not part of the user's fit); the
        # parent's samples stand in where it could not report (it died).
        peak = watch.peak if watch.reported is None else max(watch.build_peak, watch.reported)
        return MemoryEvidence(
            peak_host_bytes=peak or None,
            budget_bytes=self._budget,
            enforcement=worker.enforcement,
            oom_kills=max(0, kills),
            system_oom=bool(system),
        )

    def _finished(
        self, probe: Probe, watch: _Watch, worker: _Worker, steps: list[StepRecord],
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
        self, worker: _Worker, probe: Probe, watch: _Watch, steps: list[StepRecord],
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


def measured_once(first: ProbeRun, probe: Probe) -> ProbeRun:
    """``probe``'s run when building the model under its dtype policy already ran out of
    memory in ``first``: building does not depend on a probe's settings."""
    return replace(first, probe=probe, duration_s=0.0,
                   exception={**(first.exception or {}), "measured_once": True})


def built_out_of_memory(run: ProbeRun) -> bool:
    """Whether ``run`` ran out of memory while its worker built the model."""
    return _phase_of(run) == "build" and _ran_out_of_memory(run)


def _phase_of(run: ProbeRun) -> str | None:
    return (run.exception or {}).get("phase")


def _ran_out_of_memory(run: ProbeRun) -> bool:
    """Ended by the watchdog's budget, a kernel OOM kill (the cgroup's or the system's)
    or an allocator's out-of-memory error."""
    return (run.termination is Termination.OVER_BUDGET or run.memory.oom_kills > 0
            or run.memory.system_oom or bool((run.exception or {}).get("oom")))


def _float(value: Any) -> float:
    """A protocol number: non-finite values travel as "nan", "inf" or "-inf"; a value
    the worker could not measure (null) is NaN."""
    return math.nan if value is None else float(value)


def _holdout(data: dict[str, Any]) -> HoldoutEval | RegressionEval:
    return holdout_from_json(data)


def _exception(message: dict[str, Any]) -> dict[str, Any]:
    return {key: message.get(key) for key in
            ("phase", "step", "etype", "message", "oom", "oom_device", "user_input",
             "traceback")}


class LocalExecutor:
    """Probe workers as processes of this machine: one per core (at most 4), or one per
    GPU, each GPU its own (``CUDA_VISIBLE_DEVICES``)."""

    name = "local"

    def __init__(self) -> None:
        self._gpus = nvml.visible_gpus()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def workers(self, requested: int | None) -> int:
        """Parallel workers: as asked, else one per core (at most 4; each gets its share
        of the cores as the framework's threads): small probes are bound by per-step
        dispatch, which one thread does, so workers side by side beat threads inside one.
        Each GPU gets one."""
        if requested is not None:
            return requested
        if self._gpus:
            return len(self._gpus)
        return max(1, min(4, os.cpu_count() or 1))

    def threads(self, n_workers: int) -> int:
        """The framework threads of each of ``n_workers`` workers: a share of the cores."""
        return max(1, (os.cpu_count() or 1) // n_workers)

    def runner(self, init: WorkerInit, run_dir: Path, index: int | None = None,
               **options: Any) -> ProbeRunner:
        """The ``index``-th parallel runner; with several GPUs, GPU ``index`` round robin."""
        gpu = (self._gpus[index % len(self._gpus)]
               if index is not None and len(self._gpus) > 1 else None)
        return ProbeRunner(init, run_dir, gpu=gpu, **options)

    def environment(self) -> dict[str, Any]:
        """What the report records of where the probes ran."""
        return {"executor": self.name}
