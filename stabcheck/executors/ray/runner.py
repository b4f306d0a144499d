"""A runner whose worker processes run in a Ray actor: it creates the actor where Ray
places it, forwards the probes and the steps they trained, and turns what Ray itself
ended (an actor's death, a lost node, Ray's memory monitor, a hang) into the probe's
evidence.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import ray
import ray.exceptions

from stabcheck.errors import InputError, InternalError, StabcheckError
from stabcheck.executors.ray.host import _ProbeHost
from stabcheck.executors.runner import (
    STARTUP_ALLOWANCE_S,
    ExtendCallback,
    RunnerBase,
    StepCallback,
)
from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import MemoryEvidence, Probe, ProbeRun, Termination
from stabcheck.units import human_bytes

if TYPE_CHECKING:
    from stabcheck.executors.ray.executor import RayExecutor

# How often the parent asks an actor for the steps its probe has trained (progress; a
# result is taken the moment it is ready).
POLL_S = 1.0
# Beyond --timeout and a worker's start-up, how long a probe's actor may stay silent
# before the parent ends it (the actor's own runner ends a hung probe at --timeout).
GRACE_S = 30.0
# How long the cluster may take to mark the node of an unreachable actor dead.
NODE_SETTLE_S = 60.0

# The environment a probe worker reads here, handed to each actor for its workers (Ray does
# not carry the driver's environment to other nodes): stabcheck's, Keras's and the
# frameworks' settings.
_FORWARDED = ("STABCHECK_", "KERAS_", "TF_", "XLA_", "JAX_", "TORCH_")

# Ray's failures that end an actor (and the probe it ran) without a result.
_LOST = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
         ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError,
         ray.exceptions.ObjectLostError)
# Ray's own words at a memory-monitor kill: "Memory usage 2749607936B exceeded threshold of
# 2669400064B (10.6% of 25276071936B limit)" (Ray 2.5x), or "Memory on the node (IP: ...,
# ID: ...) [where the task ... was running] was 30.50GB [used] / 31.90GB [limit]" (older).
_RAY_MEMORY_BYTES = re.compile(
    r"Memory usage (\d+)B exceeded threshold of (\d+)B \([\d.]+% of (\d+)B limit\)")
_RAY_MEMORY_GB = re.compile(r"was ([\d.]+)GB(?: used)? / ([\d.]+)GB")


class RayProbeRunner(RunnerBase):
    """A runner whose worker processes run in a Ray actor (see ``stabcheck.executors.ray``);
    the same calls as the local ``ProbeRunner``."""

    def __init__(self, executor: RayExecutor, init: WorkerInit, *, timeout: float,
                 memory_budget: int | None = None, on_step: StepCallback | None = None,
                 name: str = "w0", shared: dict[str, Any] | None = None,
                 extend: ExtendCallback | None = None) -> None:
        super().__init__(init, timeout=timeout, memory_budget=memory_budget, on_step=on_step,
                         name=name, shared=shared, extend=extend)
        self._executor = executor
        self._actor: Any = None
        self._placed: Any = None  # the actor's ``where`` call, until it answers
        self._data_version: tuple[int, int] | None = None
        self._where: dict[str, Any] = {}
        self._count = 0
        self._ended = threading.Event()  # signal_kill: the run was interrupted
        self._create()  # placed while the engine does something else

    # -- the actor ---------------------------------------------------------------------

    def _create(self) -> None:
        """Ask Ray for a fresh actor and return at once: it is placed, and its Ray worker
        starts, while this runner waits for something else (the first worker's import)."""
        self._count += 1
        self._data_version, data = self._executor.data_ref(self._init.dataset_path)
        self._actor = _ProbeHost.options(  # type: ignore[attr-defined]
            **self._executor.actor_options(self._init)).remote(
            self._init, data, timeout=self._timeout, memory_budget=self._budget,
            name=f"{self._name}-{self._count}", extend=self._extend,
            environment={k: v for k, v in os.environ.items() if k.startswith(_FORWARDED)})
        self._placed = self._actor.where.remote()
        self._where = {}

    def _ready(self) -> Any:
        """This runner's actor once placed (its node, IP and pid known); a fresh one when
        there is none or the data set changed since it was made."""
        if self._actor is not None and \
                self._data_version != data_version(self._init.dataset_path):
            self.close()  # the data were prepared again (as a regression target)
        if self._actor is None:
            self._create()
        if self._placed is not None:
            wait = self._timeout + STARTUP_ALLOWANCE_S  # an autoscaler may add a node
            try:
                self._where = ray.get(self._placed, timeout=wait)
            except ray.exceptions.GetTimeoutError:
                options = self._executor.actor_options(self._init)
                self.kill()
                raise InputError(
                    f"no node of the Ray cluster started a probe worker asking for "
                    f"{_resources(options)} within {wait:g} s (--timeout plus "
                    f"{STARTUP_ALLOWANCE_S:g} s)") from None
            self._placed = None
        return self._actor

    def start(self) -> None:
        """Have the actor start its worker now (``ProbeRunner.start``), without waiting."""
        if self._actor is None:
            self._create()
        self._actor.start.remote()

    def describe(self) -> dict[str, Any]:
        """Start an actor and return its model description (``ProbeRunner.describe``)."""
        actor = self._ready()
        try:
            model, environment, build_oom = ray.get(actor.describe.remote())
        except ray.exceptions.RayTaskError as exc:
            self.kill()
            if isinstance(exc.cause, StabcheckError):
                raise exc.cause from None
            raise
        except (ray.exceptions.OutOfMemoryError, *_LOST) as exc:
            self.kill()
            raise InternalError(
                f"the Ray actor on node {self._where.get('node_ip')} ended before it could "
                f"load the model ({type(exc).__name__}): {first_line(exc)}") from None
        self.environment = {**environment, "node": self._where.get("node_ip")}
        self.model_info = model
        self._build_oom.update(build_oom)
        return model

    def run(self, probe: Probe, class_weights: list[float] | None, *,
            check_numerics: bool = False, seed: int | None = None) -> ProbeRun:
        """Run one probe in this runner's actor; never raises for what the probe, its
        worker, its actor or its node did."""
        built = self._built_before(probe)
        if built is not None:
            return built
        started = time.monotonic()
        last_step = 0
        actor = self._ready()
        ref = actor.run.remote(probe, class_weights, check_numerics, seed)
        deadline = started + self._timeout + STARTUP_ALLOWANCE_S + GRACE_S
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=POLL_S)
                last_step = self._progress(actor, probe, last_step)
                if ready:
                    run: ProbeRun = ray.get(ref)
                    break
                if self._ended.is_set():  # stabcheck ended it: no result
                    raise KeyboardInterrupt
                if time.monotonic() > deadline:
                    self.kill()
                    return replace(self._lost(probe, started, last_step, None, "cancelled"),
                                   termination=Termination.TIMEOUT)
        except ray.exceptions.OutOfMemoryError as exc:
            return self._lost(probe, started, last_step, exc, "oom")
        except _LOST as exc:
            return self._lost(probe, started, last_step, exc, "lost")
        self._note_build(run)
        return replace(run, cluster=self._evidence(None, last_step))

    def _progress(self, actor: Any, probe: Probe, last_step: int) -> int:
        """Hand the steps the actor's probe trained since the last poll to ``on_step``."""
        try:
            steps = ray.get(actor.progress.remote(), timeout=POLL_S * 4)
        except (ray.exceptions.RayError, TimeoutError):
            return last_step
        for step in steps:
            if self._on_step is not None:
                self._on_step(probe, step)
        return max([last_step, *steps])

    def _evidence(self, exc: BaseException | None, last_step: int,
                  cause: str | None = None) -> dict[str, Any]:
        """What Ray tells of where a probe ran and, when Ray ended it, how."""
        evidence: dict[str, Any] = {"executor": "ray", **self._where}
        if exc is None and cause is None:
            return evidence
        message = str(exc).strip() if exc is not None else ""
        evidence.update(error=type(exc).__name__ if exc is not None else None,
                        message=message[:2000], cause=cause, last_step=last_step,
                        oom=cause == "oom")
        evidence.update(_node_memory(message))
        if cause in ("oom", "lost"):
            evidence["node_lost"] = self._node_lost(exc)
        return evidence

    def _node_lost(self, exc: BaseException | None) -> bool | None:
        """Whether the actor's node is gone, as the cluster (GCS) records it. An actor
        Ray saw die had a live node; for one that became unreachable the cluster may take
        its health checks' time to mark the node dead: wait for that, up to
        ``NODE_SETTLE_S`` (None: the node was still alive then, the cause unknown)."""
        node = self._where.get("node_id")
        if not node:
            return None
        patient = not isinstance(exc, ray.exceptions.ActorDiedError)
        deadline = time.monotonic() + (NODE_SETTLE_S if patient else 0)
        while True:
            try:
                alive = {n["NodeID"]: n.get("Alive") for n in ray.nodes()}
            except Exception:  # noqa: BLE001 - the cluster itself is unreachable
                return None
            if not alive.get(node, False):
                return True
            if time.monotonic() >= deadline or self._ended.is_set():
                return None if patient else False
            time.sleep(POLL_S)

    def _lost(self, probe: Probe, started: float, last_step: int,
              exc: BaseException | None, cause: str) -> ProbeRun:
        """The run of a probe that Ray ended (or the parent, on an interrupt or a hang):
        its actor is gone; the next probe starts a fresh one."""
        self._actor = self._placed = None
        return ProbeRun(
            probe=probe, termination=Termination.DIED, returncode=None,
            memory=MemoryEvidence(None, self._budget, None),
            duration_s=time.monotonic() - started,
            cluster=self._evidence(exc, last_step, cause),
        )

    # -- ending ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the actor's worker, remove its folder, end the actor."""
        actor, self._actor = self._actor, None
        if actor is None:
            return
        if self._placed is None:  # it ran: let it stop its worker and clean up
            with contextlib.suppress(Exception):
                ray.get(actor.shutdown.remote(), timeout=30)
        self._placed = None
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)

    def kill(self) -> None:
        """End the actor at once (its worker follows it: a worker ends with its parent)."""
        actor, self._actor, self._placed = self._actor, None, None
        if actor is not None:
            with contextlib.suppress(Exception):
                actor.abort.remote()
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)

    def signal_kill(self) -> None:
        """From another thread, on an interrupt: the thread inside ``run`` returns."""
        self._ended.set()
        self.kill()


def _node_memory(message: str) -> dict[str, int]:
    """The node's memory at a Ray memory-monitor kill, from Ray's message ({} if absent)."""
    exact = _RAY_MEMORY_BYTES.search(message)
    if exact:
        used, threshold, limit = (int(g) for g in exact.groups())
        return {"node_memory_used_bytes": used, "node_memory_threshold_bytes": threshold,
                "node_memory_total_bytes": limit}
    rounded = _RAY_MEMORY_GB.search(message)
    if rounded:
        return {"node_memory_used_bytes": int(float(rounded.group(1)) * 1e9),
                "node_memory_total_bytes": int(float(rounded.group(2)) * 1e9)}
    return {}


def first_line(exc: BaseException) -> str:
    """An exception's first line (its type's name when it has no message)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def data_version(path: str) -> tuple[int, int]:
    """A file's version as its size and modification time."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _resources(options: dict[str, Any]) -> str:
    parts = [f"{options['num_cpus']} CPU"]
    if options.get("num_gpus"):
        parts.append(f"{options['num_gpus']} GPU")
    if options.get("memory"):
        parts.append(f"{human_bytes(options['memory'])} memory")
    return ", ".join(parts)
