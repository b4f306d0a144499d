"""The probe grid on a Ray cluster: each parallel worker is a Ray actor.

An actor (``_ProbeHost``) is placed by Ray with the resources a worker needs (``num_cpus``,
``num_gpus=1`` when the cluster has GPUs, ``memory=`` the ``--memory-budget``), and runs
the *local* runner on its node: every probe still trains in a child process of its own,
under the budget (a cgroup or the watchdog), so a probe's death is evidence the actor
reports, never the actor's own death. The actor keeps its child across the probes of one
batch size, as locally.

What Ray itself ends is evidence too, never retried (``max_restarts=0``,
``max_task_retries=0``): an actor killed by Ray's memory monitor or its node's OOM killer
(``ray.exceptions.OutOfMemoryError``) is ``oom_host`` with Ray's message, the node and its
memory at the kill; an actor that died, or whose node was lost, is ``crashed`` naming the
node; a probe that outlives ``--timeout`` (plus a worker's start-up) has its actor killed
and is ``timeout``. The next probe of that runner gets a fresh actor.

Only JSON-safe records cross to the actor and back (the worker's init, probes, ``ProbeRun``
dataclasses); the prepared data set travels once through Ray's object store and is written
to a temporary folder on each actor's node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from stabcheck.errors import InputError, InternalError, StabcheckError
from stabcheck.executors.local import (
    STARTUP_ALLOWANCE_S,
    ExtendCallback,
    ProbeRunner,
    RunnerBase,
    StepCallback,
)
from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import MemoryEvidence, Probe, ProbeRun, Termination
from stabcheck.units import human_bytes

_log = logging.getLogger(__name__)

# How often the parent asks an actor for the steps its probe has trained (progress; a
# result is taken the moment it is ready).
POLL_S = 1.0
# Beyond --timeout and a worker's start-up, how long a probe's actor may stay silent
# before the parent ends it (the actor's own runner ends a hung probe at --timeout).
GRACE_S = 30.0
# How long the cluster may take to mark the node of an unreachable actor dead.
NODE_SETTLE_S = 60.0
# The object store of a local cluster: the data set twice over (a re-prepared copy, as a
# regression target, beside the first), at least this much.
_MIN_OBJECT_STORE = 128 << 20

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


class RayExecutor:
    """Connects to a Ray cluster (``address``) or starts a local one for the run.

    Args:
        address: "auto", "host:6379", "ray://host:10001"; None: a local cluster that
            starts and stops with the run.
        memory_budget: the ``memory`` resource each actor asks for, or None.
        timeout: ``--timeout`` (a probe's wall-clock seconds).
        say: receives what the executor is doing (progress).
        data_bytes: the prepared data set's size (the object store of a local cluster).
    """

    name = "ray"

    def __init__(self, address: str | None, *, memory_budget: int | None = None,
                 timeout: float = 300.0, say: Callable[[str], None] | None = None,
                 data_bytes: int = 0) -> None:
        self.address = address
        self.data_bytes = data_bytes
        self.memory_budget = memory_budget
        self.timeout = timeout
        self._say = say or (lambda _message: None)
        self._owned = False  # this run started or connected Ray (and ends it)
        self._data: dict[str, tuple[tuple[int, int], Any]] = {}
        self._resources: dict[str, float] = {}
        self._nodes: list[dict[str, Any]] = []
        self._printer: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> RayExecutor:
        if ray.is_initialized():  # a notebook already connected: use its cluster
            self._owned = False
        else:
            self._say("starting a local Ray cluster" if self.address is None
                      else f"connecting to the Ray cluster at {self.address}")
            self._init()
            self._owned = True
        self._quiet()
        try:
            self._resources = dict(ray.cluster_resources())
            self._nodes = [n for n in ray.nodes() if n.get("Alive")]
            self._check_fits()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _init(self) -> None:
        sigterm = signal.getsignal(signal.SIGTERM)  # Ray sets its own; the CLI's stays
        options: dict[str, Any] = {
            "include_dashboard": False, "logging_level": logging.ERROR,
            "log_to_driver": False, "configure_logging": True,
        }
        if self.address is None:
            options.update(address="local", num_cpus=os.cpu_count() or 1,
                           object_store_memory=max(_MIN_OBJECT_STORE,
                                                   2 * self.data_bytes + (64 << 20)))
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = ("start a local Ray cluster" if self.address is None
                     else f"reach the Ray cluster at {self.address}")
            raise InputError(f"cannot {where}: {_first_line(exc)}") from None
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, sigterm)

    def _quiet(self) -> None:
        """Ray prints its cluster's error messages (a worker died, a node was lost) to the
        driver's stdout, where stabcheck's report goes; each is a probe's evidence here,
        so they go to the log instead for the run."""
        from ray._private import worker as ray_worker

        self._printer = ray_worker.print_to_stdstream

        def log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
            for line in data.get("lines") or []:
                _log.info("ray %s: %s", data.get("pid"), line)

        ray_worker.print_to_stdstream = log

    def __exit__(self, *_exc: object) -> None:
        if self._printer is not None:
            from ray._private import worker as ray_worker

            ray_worker.print_to_stdstream = self._printer
            self._printer = None
        if self._owned and ray.is_initialized():
            with contextlib.suppress(Exception):
                ray.shutdown()
        self._owned = False

    def _check_fits(self) -> None:
        """A budget no node can hold would leave every actor pending forever: say so."""
        if not self.memory_budget or not self._nodes:
            return
        largest = max(n.get("Resources", {}).get("memory", 0) for n in self._nodes)
        if largest < self.memory_budget:
            raise InputError(
                f"--memory-budget {human_bytes(self.memory_budget)}: no node of the Ray "
                f"cluster offers that much memory (the largest offers "
                f"{human_bytes(int(largest))})")

    # -- what the engine asks ----------------------------------------------------------

    @property
    def gpus(self) -> int:
        return int(self._resources.get("GPU", 0))

    def workers(self, requested: int | None) -> int:
        """Actors side by side: as asked, else one per GPU of the cluster, else one per
        CPU (a probe's per-step dispatch uses one thread). More than the cluster holds
        at once would only wait for a place: they are capped, and the cap said."""
        capacity = self.gpus or max(1, int(self._resources.get("CPU", 1)))
        if requested is None:
            return capacity
        if requested > capacity:
            self._say(f"--workers {requested}: the Ray cluster holds {capacity} at once "
                      f"(one per {'GPU' if self.gpus else 'CPU'}); running {capacity}")
            return capacity
        return requested

    def threads(self, n_workers: int) -> int:
        """Each actor's CPUs (and its framework's threads): the cluster's share, at most
        the CPUs of its largest node."""
        cpus = int(self._resources.get("CPU", 1))
        largest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in self._nodes),
                      default=cpus)
        return max(1, min(cpus // max(1, n_workers), largest))

    def runner(self, init: WorkerInit, run_dir: Path, index: int | None = None,
               **options: Any) -> RayProbeRunner:
        return RayProbeRunner(self, init, **options)

    def environment(self) -> dict[str, Any]:
        """What the report records: the cluster the probes ran on."""
        return {"executor": self.name, "ray": {
            "address": self.address or "local",
            "version": ray.__version__,
            "nodes": len(self._nodes),
            "cpus": self._resources.get("CPU", 0),
            "gpus": self._resources.get("GPU", 0),
        }}

    def data_ref(self, path: str) -> tuple[tuple[int, int], Any]:
        """The prepared data set in the object store, put once per version of the file
        (its size and time); the version with it."""
        version = data_version(path)
        cached = self._data.get(path)
        if cached is None or cached[0] != version:
            self._data[path] = (version, ray.put(Path(path).read_bytes()))
        return self._data[path]

    def actor_options(self, init: WorkerInit) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": init.threads or 1,
                                   "num_gpus": 1 if self.gpus else 0,
                                   "max_restarts": 0, "max_task_retries": 0,
                                   "max_concurrency": 4}
        if self.memory_budget:
            options["memory"] = self.memory_budget
        return options


class RayProbeRunner(RunnerBase):
    """A runner whose worker processes run in a Ray actor (see the module's docstring);
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
                f"load the model ({type(exc).__name__}): {_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
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


@ray.remote
class _ProbeHost:
    """The actor: a local runner on its node, and the steps its probe has trained."""

    def __init__(self, init: WorkerInit, data: bytes, *, timeout: float,
                 memory_budget: int | None, name: str, extend: ExtendCallback | None,
                 environment: dict[str, str]) -> None:
        # The driver's settings for the workers (this actor's process is its own; a Ray
        # runtime environment would cost each actor a fresh Ray worker instead).
        os.environ.update(environment)
        self._dir = Path(tempfile.mkdtemp(prefix="stabcheck-ray-"))
        dataset = self._dir / "dataset.npz"
        dataset.write_bytes(data)
        self._steps: list[int] = []
        self._lock = threading.Lock()
        self._missing = _missing_files(init)
        self._runner = ProbeRunner(replace(init, dataset_path=str(dataset)), self._dir,
                                   timeout=timeout, memory_budget=memory_budget,
                                   on_step=self._step, name=name, extend=extend)

    def _step(self, _probe: Probe, step: int) -> None:
        with self._lock:
            self._steps.append(step)

    def where(self) -> dict[str, Any]:
        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "host": socket.gethostname(), "pid": os.getpid()}

    def start(self) -> None:
        if not self._missing:
            self._runner.start()

    def describe(self) -> tuple[dict[str, Any], dict[str, Any], dict[str | None, ProbeRun]]:
        if self._missing:
            raise InputError(
                f"{self._missing[0]} is not on the Ray node {socket.gethostname()}: the "
                "model, its factory and custom-objects files must be at the same path on "
                "every node (a shared file system)")
        model = self._runner.describe()
        return model, self._runner.environment, self._runner.build_oom

    def run(self, probe: Probe, class_weights: list[float] | None,
            check_numerics: bool, seed: int | None = None) -> ProbeRun:
        with self._lock:
            self._steps.clear()
        return self._runner.run(probe, class_weights, check_numerics=check_numerics,
                                seed=seed)

    def progress(self) -> list[int]:
        with self._lock:
            steps, self._steps = self._steps, []
        return steps

    def abort(self) -> None:
        self._runner.signal_kill()

    def shutdown(self) -> None:
        self._runner.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _missing_files(init: WorkerInit) -> list[str]:
    """The user's files the worker needs that this node does not have."""
    spec = init.model
    paths = [spec.get("path")] + [c for c in spec.get("custom_objects") or []
                                  if str(c).endswith(".py")]
    return [str(p) for p in paths if p and not Path(p).exists()]
