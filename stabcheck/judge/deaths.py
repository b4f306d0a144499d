"""The verdicts on a probe that did not finish: a worker that died (out of memory, a
signal, the cluster), an exception in the user's code or the framework, a timeout's step.
The runner's hard facts come first (``stabcheck.judge.classify``). Pure."""

from __future__ import annotations

from typing import Any

from stabcheck.judge.verdicts import at_step, make_verdict
from stabcheck.results import (
    Outcome,
    ProbeRun,
    Termination,
    Verdict,
    signal_name,
)
from stabcheck.system.oom import is_oom_message
from stabcheck.units import human_bytes


def death_verdict(run: ProbeRun) -> Verdict:
    mem = run.memory
    step = run.steps_completed
    sig = signal_name(run.returncode)
    common = {"step": step, "signal": sig, "returncode": run.returncode,
              "peak_host_bytes": mem.peak_host_bytes, "budget_bytes": mem.budget_bytes,
              "enforcement": mem.enforcement}
    if run.exception and run.exception.get("phase"):  # died before training began
        common["phase"] = run.exception["phase"]
        if run.exception.get("weight_bytes"):
            common["weight_bytes"] = run.exception["weight_bytes"]
    if run.cluster and run.cluster.get("cause"):
        return _cluster_death(run, common)
    if run.termination is Termination.OVER_BUDGET:
        return make_verdict(
            Outcome.OOM_HOST, {**common, "enforced_by": "watchdog"},
            f"ended by stabcheck's memory watchdog at {human_bytes(mem.peak_host_bytes)} of a "
            f"{human_bytes(mem.budget_bytes)} budget, {when(run, step)}",
        )
    killed = run.returncode == -9
    if killed and (mem.oom_kills > 0 or mem.system_oom):
        source = "cgroup" if mem.oom_kills > 0 else "system"
        budget = f" of a {human_bytes(mem.budget_bytes)} budget" if mem.budget_bytes else ""
        via = f" ({mem.enforcement})" if mem.enforcement else ""
        return make_verdict(
            Outcome.OOM_HOST,
            {**common, "enforced_by": "kernel", "oom_kills": mem.oom_kills,
             "oom_evidence": source},
            f"killed by the kernel OOM killer at {human_bytes(mem.peak_host_bytes)}{budget}"
            f"{via}, {when(run, step)}",
        )
    if is_oom_message(run.stderr_tail):
        return make_verdict(
            Outcome.OOM_GPU if "GPU" in run.stderr_tail or "CUDA" in run.stderr_tail
            else Outcome.OOM_HOST,
            {**common, "stderr_tail": _tail(run.stderr_tail)},
            f"the allocator ran out of memory and the process aborted ({sig}) at step {step}",
        )
    return make_verdict(
        Outcome.CRASHED, {**common, "stderr_tail": _tail(run.stderr_tail)},
        f"worker died with {sig} {when(run, step)}"
        + (" with no sign of memory exhaustion" if killed else ""),
    )


def _cluster_death(run: ProbeRun, common: dict[str, Any]) -> Verdict:
    """A probe whose Ray actor the cluster ended: by its memory monitor or a node's OOM
    killer (``OutOfMemoryError``), with its node, or for another reason (crashed)."""
    cluster = run.cluster or {}
    step = cluster.get("last_step") or run.steps_completed
    node = " ".join(filter(None, (cluster.get("node_ip"),
                                  f"({cluster['node_id'][:8]})" if cluster.get("node_id")
                                  else None))) or "an unknown node"
    evidence = {**common, "step": step, "signal": None, "cluster": cluster}
    if cluster.get("oom"):
        used, total = cluster.get("node_memory_used_bytes"), cluster.get("node_memory_total_bytes")
        at = f" ({human_bytes(used)} of {human_bytes(total)} in use)" if used and total else ""
        return make_verdict(Outcome.OOM_HOST, {**evidence, "enforced_by": "ray"},
                            f"killed by Ray for memory: node {node} ran out{at}, "
                            f"{at_step(step)}")
    error = cluster.get("error") or "no error"
    if cluster.get("node_lost"):
        return make_verdict(Outcome.CRASHED, evidence,
                            f"its Ray node {node} was lost ({error}) {at_step(step)}")
    if cluster.get("node_lost") is None:
        return make_verdict(Outcome.CRASHED, evidence,
                            f"its Ray worker on node {node} became unreachable ({error}) "
                            f"{at_step(step)}")
    return make_verdict(Outcome.CRASHED, evidence,
                        f"its Ray worker (pid {cluster.get('pid')} on node {node}) died ({error}) "
                        f"{at_step(step)}")


def exception_verdict(run: ProbeRun) -> Verdict:
    exc = run.exception or {}
    step = exc.get("step") or run.steps_completed
    evidence = {"step": step, "exception_type": exc.get("etype"), "message": exc.get("message"),
                "phase": exc.get("phase")}
    if exc.get("oom"):
        on_gpu = exc.get("oom_device") == "GPU" or "GPU" in (exc.get("message") or "")
        outcome = Outcome.OOM_GPU if on_gpu else Outcome.OOM_HOST
        return make_verdict(outcome, evidence,
                            f"{exc.get('etype')} {when(run, step)}: the allocator ran out of "
                            "memory")
    message = (exc.get("message") or "").strip().splitlines()
    doing = "building the model" if exc.get("phase") == "build" else "training"
    return make_verdict(Outcome.ERROR, evidence,
                        f"{exc.get('etype')} while {doing}: {message[-1][:200] if message else ''}")


def when(run: ProbeRun, step: int) -> str:
    """When a worker died: at a step, while it started, or while it built the model."""
    exc = run.exception or {}
    if exc.get("phase") == "startup":
        return f"{at_step(step)} (while the worker started)"
    if exc.get("phase") == "build":
        weights = exc.get("weight_bytes")
        need = f": its weights alone need {human_bytes(weights)}" if weights else ""
        again = (" (measured once for all probes: building does not depend on their "
                 "settings)") if exc.get("measured_once") else ""
        return f"while building the model{need}{again}"
    if exc.get("phase") == "optimizer":
        return "while allocating the optimizer's state, before the first step"
    return at_step(step)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
