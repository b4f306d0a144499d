"""The local executor: probe workers as processes of this machine, one per core (at most
4) or one per GPU, each run by a local runner (``stabcheck.executors.local_runner``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from stabcheck.executors.local_runner import ProbeRunner
from stabcheck.protocol.messages import WorkerInit
from stabcheck.system import nvml


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
