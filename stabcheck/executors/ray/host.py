"""The Ray actor (``_ProbeHost``): a local runner on its node, which runs each probe in a
worker process of its own there, and the steps its probe has trained (the parent polls
them for progress). It runs in a Ray worker process, not in stabcheck's.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from stabcheck.errors import InputError
from stabcheck.executors.local_runner import ProbeRunner
from stabcheck.executors.runner import ExtendCallback
from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import Probe, ProbeRun


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
