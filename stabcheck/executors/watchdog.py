"""The parent's watch over a running worker: every 50 ms, while it waits for the worker's
next message, it samples the worker tree's private memory (psutil) and its GPU memory
(NVML), enforces --timeout and, without a cgroup, the memory budget; when the probe ends,
it turns what it observed into the run's memory evidence (its peak, the cgroup's OOM-kill
counter, the kernel's log).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from stabcheck.executors.process import WorkerProcess
from stabcheck.protocol.messages import ParentEvent
from stabcheck.results import MemoryEvidence, RungEval
from stabcheck.system import cgroup, kernel_log, nvml

SAMPLE_INTERVAL_S = 0.05


@dataclass
class Watch:
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


def next_event(
    worker: WorkerProcess, watch: Watch, *, limit: float, budget: int | None, gpu: bool,
) -> dict[str, Any] | ParentEvent | None:
    """The next message or parent event (``EOF``, ``TIMEOUT``, ``OVER_BUDGET``); None:
    keep waiting. ``limit``: the seconds since ``watch.started`` the worker may take;
    ``budget``: the host bytes it may use (the watchdog enforces it without a cgroup);
    ``gpu``: whether to sample its GPU memory."""
    try:
        return worker.messages.get(timeout=SAMPLE_INTERVAL_S)
    except queue.Empty:
        pass
    gpu_bytes = nvml.process_memory({worker.proc.pid}) if gpu else None
    if gpu_bytes is not None:
        watch.gpu_peak = max(watch.gpu_peak or 0, gpu_bytes)
    rss = worker.rss_bytes()
    if rss is not None:
        watch.peak = max(watch.peak, rss)
        if worker.enforcement == "watchdog" and budget and rss > budget:
            worker.kill()
            return ParentEvent.OVER_BUDGET
    if time.monotonic() - watch.started > limit:
        worker.kill()
        return ParentEvent.TIMEOUT
    return None


def memory_evidence(
    worker: WorkerProcess, watch: Watch, *, budget: int | None, died: bool,
    ending: threading.Event,
) -> MemoryEvidence:
    """The memory evidence of a probe ``worker`` ran (``died``: without its final
    message); ``ending``: set once stabcheck itself ends the runner's workers."""
    kills = 0
    if worker.cgroup is not None:
        kills = worker.cgroup.oom_kills() - watch.cgroup_kills_before
    # The kernel's OOM killer ended it: its log names the pid. Where the log cannot
    # be read, the machine-wide counter moved while it died (and stabcheck did not
    # end it): weaker evidence, the best there is.
    system = False
    if died and not ending.is_set():
        logged = kernel_log.oom_killed(worker.proc.pid)
        system = logged if logged is not None else \
            cgroup.system_oom_kills() > watch.system_kills_before
    # A worker that reported its own high-water mark measured its training exactly
    # (its held-out evaluation, after it, is not part of the user's fit); the
    # parent's samples stand in where it could not report (it died).
    peak = watch.peak if watch.reported is None else max(watch.build_peak, watch.reported)
    return MemoryEvidence(
        peak_host_bytes=peak or None,
        budget_bytes=budget,
        enforcement=worker.enforcement,
        oom_kills=max(0, kills),
        system_oom=bool(system),
    )
