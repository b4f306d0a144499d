"""The parent's side of a Ray run: ``RayExecutor`` starts a local Ray cluster or connects
to one, checks that a node can hold a worker's budget, tells the engine how many actors run
side by side and with how many threads, puts the prepared data set in the object store,
and makes a ``RayProbeRunner`` per parallel worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from stabcheck.errors import InputError
from stabcheck.executors.ray.runner import RayProbeRunner, data_version, first_line
from stabcheck.protocol.messages import WorkerInit
from stabcheck.units import human_bytes

_log = logging.getLogger(__name__)

# The object store of a local cluster: the data set twice over (a re-prepared copy, as a
# regression target, beside the first), at least this much.
_MIN_OBJECT_STORE = 128 << 20


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
            raise InputError(f"cannot {where}: {first_line(exc)}") from None
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
