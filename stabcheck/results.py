"""The data that flows between layers: probes, what a probe run produced, verdicts.

Frozen dataclasses and enums only; everything here is JSON-safe through ``to_json``.
Nothing in this module imports a framework.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from stabcheck.probe_ids import is_memory_search


class Category(str, Enum):
    """What kind of trouble an outcome is."""

    OK = "ok"
    NUMERICAL = "numerical"
    LEARNING = "learning"
    MEMORY = "memory"
    CRASH = "crash"
    ERROR = "error"


class Outcome(str, Enum):
    """The verdict of one probe (the contract's table)."""

    STABLE = "stable"
    NON_FINITE = "non_finite"
    DIVERGED = "diverged"
    EXPLODING_GRADIENTS = "exploding_gradients"
    STALLED = "stalled"
    MINORITY_COLLAPSE = "minority_collapse"
    OVERCORRECTED = "overcorrected"
    OOM_HOST = "oom_host"
    OOM_GPU = "oom_gpu"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def category(self) -> Category:
        return _CATEGORY_OF[self]


_CATEGORY_OF: dict[Outcome, Category] = {
    Outcome.STABLE: Category.OK,
    Outcome.NON_FINITE: Category.NUMERICAL,
    Outcome.DIVERGED: Category.NUMERICAL,
    Outcome.EXPLODING_GRADIENTS: Category.NUMERICAL,
    Outcome.STALLED: Category.LEARNING,
    Outcome.MINORITY_COLLAPSE: Category.LEARNING,
    Outcome.OVERCORRECTED: Category.LEARNING,
    Outcome.OOM_HOST: Category.MEMORY,
    Outcome.OOM_GPU: Category.MEMORY,
    Outcome.CRASHED: Category.CRASH,
    Outcome.TIMEOUT: Category.CRASH,
    Outcome.ERROR: Category.ERROR,
}


def finite_or_none(value: float | None) -> float | None:
    """A float for a JSON number, or ``None`` where it is missing or non-finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def json_value(value: Any) -> Any:
    """Make ``value`` strict-JSON safe: non-finite floats become "nan", "inf", "-inf"."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def signal_name(returncode: int | None) -> str:
    """An exit status as pytest-xdist and loky show it: ``SIGKILL(-9)`` or ``exit(1)``."""
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            return f"{signal.Signals(-returncode).name}({returncode})"
        except ValueError:
            return f"signal({returncode})"
    return f"exit({returncode})"


@dataclass(frozen=True)
class ProbeSettings:
    """The training settings one probe runs under."""

    class_weight: str
    class_weights: dict[str, float] | None
    learning_rate: float
    clip: str
    batch_size: int
    optimizer: str
    loss: str
    accumulation_steps: int = 1  # Keras's gradient_accumulation_steps (memory probes)
    dtype_policy: str | None = None  # e.g. "mixed_bfloat16" (memory probes)
    # The batch a step trains on where it is less than ``batch_size``: fit caps a batch
    # at the training samples there are. None: the batch is ``batch_size``.
    effective_batch_size: int | None = None

    @property
    def trained_batch_size(self) -> int:
        """The batch one step trains on: ``effective_batch_size`` or ``batch_size``."""
        return self.effective_batch_size or self.batch_size

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "class_weight": self.class_weight,
            "class_weights": None if self.class_weights is None else dict(self.class_weights),
            "learning_rate": self.learning_rate,
            "clip": self.clip,
            "batch_size": self.batch_size,
            "optimizer": self.optimizer,
            "loss": self.loss,
        }
        if self.accumulation_steps != 1:
            data["accumulation_steps"] = self.accumulation_steps
        if self.dtype_policy is not None:
            data["dtype_policy"] = self.dtype_policy
        if self.effective_batch_size is not None:
            data["effective_batch_size"] = self.effective_batch_size
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeSettings:
        return cls(**data)


@dataclass(frozen=True)
class Probe:
    """One point of the grid: a stable id, its settings and how many steps to train.

    ``steps`` is the planned length (``--steps``). ``rungs``, where given, are the steps
    at which the worker evaluates the probe on the held-out split and asks whether it
    trains on (``stabcheck.judge.rungs``): it trains to the first, and at most to the
    last; without rungs it trains ``steps`` and is evaluated once, at the end.
    """

    id: str
    settings: ProbeSettings
    steps: int
    # A probe of the memory search: it measures memory, its learning is not judged, so
    # the worker does not evaluate it on the held-out split.
    measure_only: bool = False
    rungs: tuple[int, ...] = ()
    # What it climbs the rungs for (``stabcheck.judge.rungs``): "first_rung",
    # "contender" or "seed"; "" for a probe without rungs.
    stage: str = ""

    @property
    def first_stop(self) -> int:
        """The step the worker trains to before it first evaluates and asks."""
        return self.rungs[0] if self.rungs else self.steps

    @property
    def horizon(self) -> int:
        """The most steps the probe may train (its last rung, else ``steps``)."""
        return self.rungs[-1] if self.rungs else self.steps

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "settings": self.settings.to_json(), "steps": self.steps}
        if self.measure_only:
            out["measure_only"] = True
        if self.rungs:
            out["rungs"] = list(self.rungs)
        if self.stage:
            out["stage"] = self.stage
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Probe:
        return cls(data["id"], ProbeSettings.from_json(data["settings"]), data["steps"],
                   bool(data.get("measure_only", False)),
                   tuple(int(r) for r in data.get("rungs") or ()), str(data.get("stage") or ""))


@dataclass(frozen=True)
class StepRecord:
    """What the worker measured at one optimizer step (loss and pre-clip gradient norm)."""

    step: int
    loss: float
    grad_norm: float


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite value a probe produced."""

    step: int
    where: str  # "loss", "gradient" or "weight"
    variable: str | None
    value: str  # "nan", "inf" or "-inf"


@dataclass(frozen=True)
class HoldoutEval:
    """Predictions on the stratified held-out split after the probe's last step.

    ``metrics`` is ``stabcheck.worker.metrics.classification_metrics``'s dict (per-class
    precision, recall and F1, macro-F1, PR-AUC for binary problems, the confusion matrix).
    """

    n: int
    accuracy: float
    true_counts: tuple[int, ...]
    pred_counts: tuple[int, ...]
    recall: tuple[float | None, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    task = "classification"

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics, "n": self.n, "accuracy": self.accuracy,
                "true_counts": list(self.true_counts), "pred_counts": list(self.pred_counts),
                "recall": list(self.recall)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HoldoutEval:
        return cls(n=int(data["n"]), accuracy=float(data["accuracy"]),
                   true_counts=tuple(data["true_counts"]),
                   pred_counts=tuple(data["pred_counts"]), recall=tuple(data["recall"]),
                   metrics=dict(data))


@dataclass(frozen=True)
class RegressionEval:
    """A regression model's held-out errors after the probe's last step.

    ``mae`` and ``rmse`` are in the target's units; ``r2`` is the coefficient of
    determination (1 - SSE / SST, averaged over target columns): 0 predicts no better
    than the held-out mean, below 0 worse. Each is None where undefined (no rows, a
    constant target, non-finite predictions). ``metrics`` is
    ``stabcheck.worker.metrics.regression_metrics``'s dict.
    """

    n: int
    mae: float | None
    rmse: float | None
    r2: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    task = "regression"

    def to_json(self) -> dict[str, Any]:
        return {**self.metrics, "task": "regression", "n": self.n, "mae": self.mae,
                "rmse": self.rmse, "r2": self.r2}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RegressionEval:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None or isinstance(value, str) else float(value)

        return cls(n=int(data["n"]), mae=number("mae"), rmse=number("rmse"),
                   r2=number("r2"), metrics=dict(data))


def holdout_from_json(data: dict[str, Any]) -> HoldoutEval | RegressionEval:
    """A held-out evaluation as the worker or the JSON result gives it."""
    if data.get("task") == "regression":
        return RegressionEval.from_json(data)
    return HoldoutEval.from_json(data)


@dataclass(frozen=True)
class RungEval:
    """The held-out evaluation at one rung of a probe: its step, the seconds the probe
    had trained by then (the parent's clock, from the probe's start) and the evaluation."""

    step: int
    seconds: float
    holdout: HoldoutEval | RegressionEval

    def to_json(self) -> dict[str, Any]:
        """A compact record for the JSON result (the full evaluation is the last one's
        ``holdout``)."""
        out: dict[str, Any] = {"step": self.step, "seconds": round(self.seconds, 3)}
        h = self.holdout
        if isinstance(h, HoldoutEval):
            out.update(accuracy=h.accuracy, pred_counts=list(h.pred_counts),
                       true_counts=list(h.true_counts),
                       macro_f1=h.metrics.get("macro_f1"),
                       balanced_accuracy=h.metrics.get("balanced_accuracy"))
            for key in ("ranking_auc", "unpredicted_auc"):  # what the trend rules read
                if h.metrics.get(key) not in (None, []):
                    out[key] = h.metrics[key]
        else:
            out.update(mae=h.mae, rmse=h.rmse, r2=h.r2)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RungEval:
        step, seconds = int(data["step"]), float(data.get("seconds") or 0.0)
        if "pred_counts" in data:
            metrics = {k: data[k] for k in ("macro_f1", "balanced_accuracy", "ranking_auc",
                                            "unpredicted_auc")
                       if data.get(k) is not None}
            true = tuple(data.get("true_counts") or ())
            holdout: HoldoutEval | RegressionEval = HoldoutEval(
                n=int(sum(true)), accuracy=float(data["accuracy"]), true_counts=true,
                pred_counts=tuple(data["pred_counts"]), recall=(), metrics=metrics)
        else:
            holdout = RegressionEval(n=0, mae=data.get("mae"), rmse=data.get("rmse"),
                                     r2=data.get("r2"))
        return cls(step, seconds, holdout)


class Termination(str, Enum):
    """How a probe's run ended, as the runner saw it (before classification)."""

    COMPLETED = "completed"  # all steps trained
    NON_FINITE = "non_finite"  # the worker stopped at a non-finite value
    EXCEPTION = "exception"  # the worker caught an exception while building or training
    DIED = "died"  # the worker process ended without reporting
    TIMEOUT = "timeout"  # stabcheck ended the worker at --timeout
    OVER_BUDGET = "over_budget"  # stabcheck's watchdog ended the worker at --memory-budget
    NOT_RUN = "not_run"  # skipped: a probe of the same memory footprint already ran out
    # stabcheck itself ended the worker (Ctrl-C, SIGTERM, the run's shutdown): no verdict,
    # never journaled; a resumed run runs the probe again
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class MemoryEvidence:
    """What the parent knows about a probe's host memory."""

    peak_host_bytes: int | None
    budget_bytes: int | None
    enforcement: str | None  # "cgroup-v1", "cgroup-v2", "watchdog" or None (no budget)
    oom_kills: int = 0  # kernel OOM kills counted by the probe's cgroup
    system_oom: bool = False  # the kernel logged an OOM kill of the worker's pid


@dataclass(frozen=True)
class ProbeRun:
    """Everything observed about one probe; the input of ``classify``."""

    probe: Probe
    termination: Termination
    steps: tuple[StepRecord, ...] = ()
    nonfinite: NonFinite | None = None
    holdout: HoldoutEval | RegressionEval | None = None
    # {"etype", "message", "oom", "oom_device", "phase", "step"}
    exception: dict[str, Any] | None = None
    returncode: int | None = None
    memory: MemoryEvidence = field(
        default_factory=lambda: MemoryEvidence(None, None, None)
    )
    peak_gpu_bytes: int | None = None
    stderr_tail: str = ""
    duration_s: float = 0.0
    # (step, {class index: gradient norm of the loss restricted to that class})
    class_grad_norms: tuple[tuple[int, dict[str, float]], ...] = ()
    # Which training step ran and what it could not measure (the worker's "step_info")
    step_info: dict[str, Any] | None = None
    # Where a cluster executor ran the probe and, when the cluster ended it, how: Ray's
    # exception, its message, the node, whether the node was lost, the last step seen.
    cluster: dict[str, Any] | None = None
    # The held-out evaluations at the probe's rungs, in order (the last is ``holdout``)
    rungs: tuple[RungEval, ...] = ()

    @property
    def steps_completed(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Verdict:
    """A probe's outcome with the evidence behind it and one readable sentence."""

    outcome: Outcome
    evidence: dict[str, Any]
    summary: str

    @property
    def category(self) -> Category:
        return self.outcome.category


@dataclass(frozen=True)
class ProbeResult:
    """A probe, what happened and what it means: one entry of the JSON ``probes`` list."""

    run: ProbeRun
    verdict: Verdict

    @property
    def probe(self) -> Probe:
        return self.run.probe

    @property
    def ran(self) -> bool:
        """Whether the probe trained at all: False for one inferred without running (a
        batch size that already ran out of memory; its evidence says ``"ran": false``)."""
        return self.verdict.evidence.get("ran") is not False

    @property
    def is_memory_search(self) -> bool:
        """A probe stabcheck added to find the memory limit (``probe_ids.is_memory_search``),
        not one of the user's grid: its running out of memory is a finding of the search,
        not a failure of a setting the user asked for."""
        return is_memory_search(self.probe.id)

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "id": run.probe.id,
            "settings": run.probe.settings.to_json(),
            "outcome": self.verdict.outcome.value,
            "category": self.verdict.category.value,
            "summary": self.verdict.summary,
            "evidence": json_value(self.verdict.evidence),
            "steps_completed": run.steps_completed,
            "steps_planned": run.probe.steps,
            "loss_history": [finite_or_none(s.loss) for s in run.steps],
            "grad_norm_history": [finite_or_none(s.grad_norm) for s in run.steps],
            "peak_host_bytes": run.memory.peak_host_bytes,
            "peak_gpu_bytes": run.peak_gpu_bytes,
            "duration_s": round(run.duration_s, 3),
            "holdout": None if run.holdout is None else json_value(run.holdout.to_json()),
            "rungs": [json_value(r.to_json()) for r in run.rungs],
            "verdict_at_step": verdict_step(self),
        }


def verdict_step(result: ProbeResult) -> int:
    """The step at which the probe's verdict was reached: where a failure was decided
    (its evidence's ``decided_at_step``, else its ``step``), else the last step trained."""
    evidence = result.verdict.evidence
    if result.verdict.category not in (Category.OK, Category.LEARNING):
        for key in ("decided_at_step", "step"):
            value = evidence.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return result.run.steps_completed


@dataclass(frozen=True)
class SeedProbe:
    """A finalist of the recommendation probed again under another seed (``--seeds``).

    Not a probe of the grid: it counts in no stable or failed tally; the recommendation
    ranks its finalists by their worst seed. ``result.probe`` is the grid probe's (same id
    and settings); only the seed of weight initialisation and batch order differs.
    """

    seed: int
    result: ProbeResult

    @property
    def probe_id(self) -> str:
        return self.result.probe.id

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, **self.result.to_json()}


@dataclass(frozen=True)
class DatasetSummary:
    """What the report says about the data probed."""

    source: str
    n_samples: int  # rows used for probing (the training sample)
    n_total: int  # rows the source held
    n_holdout: int
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]  # in the training sample, by class index
    input_shape: tuple[int, ...]
    label_format: str  # "sparse", "binary", "onehot" or "continuous" (regression)
    task: str = "classification"  # or "regression"
    # A regression target's min, max, mean, std and columns (training sample); None for
    # classification. A regression target has no classes: ``class_counts`` is empty.
    target: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.target is None else {"target": json_value(self.target)}
        return {
            "source": self.source,
            "n_samples": self.n_samples,
            "n_total": self.n_total,
            "n_holdout": self.n_holdout,
            "class_counts": dict(zip(self.class_names, self.class_counts, strict=True)),
            "input_shape": list(self.input_shape),
            "label_format": self.label_format,
            "task": self.task,
            **extra,
        }


SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunReport:
    """The whole result of ``stabcheck probe``: what the JSON file and the report show."""

    stabcheck_version: str
    environment: dict[str, Any]  # backend, devices, host_memory_bytes, memory_enforcement
    dataset: DatasetSummary
    class_weight_table: dict[str, dict[str, float] | None]  # strategy -> weight per class
    results: tuple[ProbeResult, ...]
    warnings: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    probes_planned: int = 0
    memory: Any = None  # stabcheck.run.ladder.MemoryReport, when the memory ladder ran
    # --seeds: the seeds asked to back the recommendation, and the finalists' re-probes
    seeds: int = 1
    seed_probes: tuple[SeedProbe, ...] = ()
    # How the run spent its steps: the rungs, the budget, each stage's jobs, steps and
    # seconds, the contenders (``stabcheck.run.stages``); {} where no grid ran.
    schedule: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "stabcheck_version": self.stabcheck_version,
            "environment": json_value(self.environment),
            "dataset": self.dataset.to_json(),
            "class_weight_strategies": json_value(self.class_weight_table),
            "config": json_value(self.config),
            "warnings": list(self.warnings),
            "interrupted": self.interrupted,
            "probes_planned": self.probes_planned,
            "probes": [r.to_json() for r in self.results],
            "seeds": self.seeds,
            "seed_probes": [p.to_json() for p in self.seed_probes],
            **({"schedule": json_value(self.schedule)} if self.schedule else {}),
            **({"memory": json_value(self.memory.to_json())} if self.memory else {}),
        }
