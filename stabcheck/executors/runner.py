"""What every runner shares, whichever executor runs its workers: the callbacks it calls
while a probe runs, the start-up allowance beyond --timeout, and ``RunnerBase`` (its
workers' init, the probe settings it enforces, and what the runners of one run learn once
for all: the model's description, and per dtype policy a build that ran out of memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from stabcheck.protocol.messages import WorkerInit
from stabcheck.results import Probe, ProbeRun, Termination

# Importing TensorFlow and building a model may take this long beyond --timeout before
# a worker counts as hung at start-up (TensorFlow's import alone is ~6 s on 2 cores).
STARTUP_ALLOWANCE_S = 120.0


StepCallback = Callable[[Probe, int], None]
# Asked with the run so far (its steps, its held-out evaluation) when a worker has
# evaluated a probe: the step to train on to, or None to finish (``WorkerInit.extend``).
ExtendCallback = Callable[[ProbeRun], "int | None"]


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


def measured_once(first: ProbeRun, probe: Probe) -> ProbeRun:
    """``probe``'s run when building the model under its dtype policy already ran out of
    memory in ``first``: building does not depend on a probe's settings."""
    return replace(first, probe=probe, duration_s=0.0,
                   exception={**(first.exception or {}), "measured_once": True})


def built_out_of_memory(run: ProbeRun) -> bool:
    """Whether ``run`` ran out of memory while its worker built the model."""
    return phase_of(run) == "build" and ran_out_of_memory(run)


def phase_of(run: ProbeRun) -> str | None:
    """The phase a run's worker was in when it failed ("startup", "build", ...), if any."""
    return (run.exception or {}).get("phase")


def ran_out_of_memory(run: ProbeRun) -> bool:
    """Ended by the watchdog's budget, a kernel OOM kill (the cgroup's or the system's)
    or an allocator's out-of-memory error."""
    return (run.termination is Termination.OVER_BUDGET or run.memory.oom_kills > 0
            or run.memory.system_oom or bool((run.exception or {}).get("oom")))

