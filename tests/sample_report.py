"""A hand-made ``RunReport`` with one of each kind of trouble: deterministic input for the
renderers' tests (Markdown snapshot, JUnit, HTML) where a real run would vary."""

from __future__ import annotations

import math

from stabcheck.results import (
    DatasetSummary,
    MemoryEvidence,
    Outcome,
    Probe,
    ProbeResult,
    ProbeRun,
    ProbeSettings,
    RunReport,
    StepRecord,
    Termination,
    Verdict,
)

MiB = 1024**2
GiB = 1024**3
BUDGET = 2 * GiB
STEPS = 40

WEIGHTS = {
    "none": None,
    "balanced": {"0": 0.5556, "1": 5.0},
    "x100": {"0": 0.5556, "1": 500.0},
}


def _settings(cw: str, lr: float, bs: int) -> ProbeSettings:
    return ProbeSettings(cw, WEIGHTS[cw], lr, "none", bs, "adam",
                         "sparse_categorical_crossentropy")


def _probe(cw: str, lr: float, bs: int) -> Probe:
    pid = f"cw={cw},lr={lr:g},clip=none,bs={bs}"
    return Probe(pid, _settings(cw, lr, bs), STEPS)


def _steps(n: int, start: float, decay: float, grad: float, *, blow_from: int | None = None,
           nan_at: int | None = None) -> tuple[StepRecord, ...]:
    records = []
    for i in range(1, n + 1):
        loss = start * decay ** i * (1 + 0.08 * math.sin(i * 1.7))
        norm = grad * (1 + 0.3 * math.cos(i * 0.9))
        if blow_from is not None and i >= blow_from:
            norm *= 10 ** (i - blow_from + 1)
        if nan_at is not None and i >= nan_at:
            loss, norm = math.nan, math.inf
        records.append(StepRecord(i, loss, norm))
    return tuple(records)


def _memory(peak: int | None) -> MemoryEvidence:
    return MemoryEvidence(peak, BUDGET, "cgroup-v2")


def _result(cw: str, lr: float, bs: int, termination: Termination, steps: tuple[StepRecord, ...],
            outcome: Outcome, evidence: dict, summary: str, *, peak: int | None = 310 * MiB,
            returncode: int | None = 0, duration: float = 1.25) -> ProbeResult:
    run = ProbeRun(_probe(cw, lr, bs), termination, steps, returncode=returncode,
                   memory=_memory(peak), duration_s=duration)
    return ProbeResult(run, Verdict(outcome, evidence, summary))


def make_report() -> RunReport:
    """Two batch sizes; stable, numerical (NaN, exploding), learning, crash and memory."""
    ok = Termination.COMPLETED
    results = [
        _result("none", 0.001, 32, ok, _steps(STEPS, 0.7, 0.985, 0.8), Outcome.STABLE,
                {"final_loss": 0.39, "holdout_accuracy": 0.91},
                "trained 40 steps, smoothed loss 0.39, held-out accuracy 91.0%"),
        _result("none", 0.1, 32, Termination.DIED, _steps(5, 0.7, 0.95, 1.1), Outcome.CRASHED,
                {"step": 5, "signal": "SIGSEGV(-11)", "returncode": -11,
                 "stderr_tail": "Fatal Python error: Segmentation fault\n<stack>"},
                "worker died with SIGSEGV(-11) at step 5", returncode=-11, duration=0.8),
        _result("balanced", 0.001, 32, ok, _steps(STEPS, 0.7, 0.99, 2.5), Outcome.STABLE,
                {"final_loss": 0.48, "holdout_accuracy": 0.86},
                "trained 40 steps, smoothed loss 0.48, held-out accuracy 86.0%"),
        _result("balanced", 0.1, 32, ok, _steps(STEPS, 0.7, 0.99, 2.0, blow_from=12),
                Outcome.EXPLODING_GRADIENTS,
                {"step": 12, "ratio": 1.0e9, "peak_grad_norm": float("inf")},
                "gradient norm grew 1e+09x from step 12"),
        _result("x100", 0.001, 32, ok, _steps(STEPS, 2.0, 0.99, 40.0), Outcome.OVERCORRECTED,
                {"common_class": "0", "rare_class": "1", "true_counts": [180, 20],
                 "pred_counts": [12, 188]},
                "class weights invert the class balance: 0 is 9x as common as 1 but "
                "predicted 16x less often"),
        _result("x100", 0.1, 32, Termination.NON_FINITE,
                _steps(37, 2.0, 1.02, 60.0, blow_from=30, nan_at=37), Outcome.NON_FINITE,
                {"step": 37, "where": "loss", "variable": None, "value": "nan"},
                "the loss became nan at step 37"),
        _result("none", 0.001, 4096, Termination.DIED, (), Outcome.OOM_HOST,
                {"step": 0, "signal": "SIGKILL(-9)", "returncode": -9,
                 "peak_host_bytes": 2 * GiB + 3 * MiB, "budget_bytes": BUDGET,
                 "enforcement": "cgroup-v2", "enforced_by": "kernel", "oom_kills": 1,
                 "oom_evidence": "cgroup"},
                "killed by the kernel OOM killer at 2.0 GiB of a 2.0 GiB budget (cgroup-v2), "
                "during the first step", peak=2 * GiB + 3 * MiB, returncode=-9, duration=3.5),
    ]
    source = results[-1]
    for cw, lr in (("none", 0.1), ("balanced", 0.001), ("balanced", 0.1), ("x100", 0.001),
                   ("x100", 0.1)):
        probe = _probe(cw, lr, 4096)
        evidence = {**source.verdict.evidence, "inferred_from": source.probe.id, "ran": False}
        summary = (f"not run: batch size 4096 already exhausted memory in {source.probe.id} "
                   f"({source.verdict.summary})")
        run = ProbeRun(probe, Termination.NOT_RUN, memory=source.run.memory)
        results.append(ProbeResult(run, Verdict(Outcome.OOM_HOST, evidence, summary)))
    return RunReport(
        stabcheck_version="0.1.0",
        environment={"backend": "tensorflow", "devices": [{"type": "CPU", "name": "CPU:0"}],
                     "host_memory_bytes": 24 * GiB, "memory_enforcement": "cgroup-v2"},
        dataset=DatasetSummary("data.npz", 1000, 1250, 250, ("0", "1"), (900, 100), (20,),
                               "sparse"),
        class_weight_table=dict(WEIGHTS),
        results=tuple(results),
        warnings=("class_weight 'x100' spans a 900:1 weight ratio: expect exploding gradients "
                  "without clipping",),
        config={"model": "model.keras", "data": "data.npz", "steps": STEPS,
                "memory_budget": BUDGET, "gpu_memory_budget": None,
                "fail_on": ["numerical", "memory", "crash"]},
        probes_planned=len(results),
    )
