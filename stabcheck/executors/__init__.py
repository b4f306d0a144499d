"""Where probe workers run: processes of this machine (``local``), or actors of a Ray
cluster (``ray``, an optional extra), each of which runs the local runner on its node.

Both hand the engine the same kind of runner (``Runner``); the scheduler, the journal,
resume and the report do not know which executor ran a probe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from stabcheck.config.settings import Settings
from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import Probe, ProbeRun


class Runner(Protocol):
    """Runs probes one after another, one worker process per batch size."""

    environment: dict[str, Any]

    @property
    def model_info(self) -> dict[str, Any]: ...

    def start(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def run(self, probe: Probe, class_weights: list[float] | None, *,
            check_numerics: bool = False, seed: int | None = None) -> ProbeRun: ...

    def close(self) -> None: ...

    def kill(self) -> None: ...

    def signal_kill(self) -> None: ...


class Executor(Protocol):
    """Makes runners; a context manager around the run (a Ray cluster starts and stops)."""

    name: str

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def workers(self, requested: int | None) -> int: ...

    def threads(self, n_workers: int) -> int: ...

    def runner(self, init: WorkerInit, run_dir: Path, index: int | None = None,
               **options: Any) -> Runner: ...

    def environment(self) -> dict[str, Any]: ...


def open_executor(settings: Settings, say: Callable[[str], None],
                  data_bytes: int = 0) -> Executor:
    """The executor of ``settings.executor``; ``say`` receives what it is doing;
    ``data_bytes``: the size of the prepared data set the workers read."""
    if settings.executor == "ray":
        from stabcheck.executors.ray.executor import RayExecutor

        return RayExecutor(settings.ray_address, memory_budget=settings.memory_budget,
                           timeout=settings.timeout, say=say, data_bytes=data_bytes)
    from stabcheck.executors.local import LocalExecutor

    return LocalExecutor()
