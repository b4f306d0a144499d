"""The worker protocol: every message that crosses the process boundary, typed.

The parent/child protocol (JSON lines; only JSON-safe values cross the boundary)::

    stabcheck (parent, no TensorFlow)                 worker: python -m stabcheck.worker
    ─────────────────────────────────                 ───────────────────────────────────
    spawn in its own memory cgroup (or watched)  ───▶ oom_score_adj=1000
    stdin  {"type":"init", dataset, model, ...}  ───▶ imports Keras
                                                 ◀─── {"type":"imported", peak_private_bytes,
                                                      import_s} (a death after it is the
                                                      user's model and data: phase "build")
                                                      loads data, builds the model,
                                                      resolves loss / optimizer / base lr
                                                 ◀─── stdout {"type":"ready", model, environment}
                                                      or {"type":"exception", phase:"build"}
    stdin  {"type":"probe", probe, class_weights, ───▶ (a seed other than init's: the model
            seed}                                     built again under it, its values kept)
                                                 ◀─── {"type":"start", id}
                                                 ◀─── {"type":"trainer_ready"} (optimizer state
                                                      allocated: a death before it is phase
                                                      "optimizer")
                                                 ◀─── {"type":"step", id, step, loss, grad_norm} xN
                                                      (grad_norm null: not measured)
                                                 ◀─── {"type":"class_grads", id, step, norms}
                                                      (per-class gradient norms, some steps)
                                                 ◀─── (init.extend) {"type":"evaluated", id,
                                                      step, holdout} after the held-out
                                                      evaluation; it waits for
    stdin  {"type":"extend", to} or              ───▶ more steps, then evaluates again,
           {"type":"finish"}                          or its final message
                                                 ◀─── one of {"type":"done", id, holdout, ...}
                                                             {"type":"nonfinite", id, step, ...}
                                                             {"type":"exception", id, oom, ...}
    ... more probes of the same batch size ...
    stdin  {"type":"exit"} (or a new batch size) ───▶ exits 0

    all the while: sample the worker tree's memory every 50 ms (psutil), enforce
    --timeout and, without a cgroup, the memory budget; stderr goes to a file.

Besides the worker's messages, the parent's reader produces events of its own, apart
from them (``ParentEvent``): the worker's stdout ended (``EOF``), the probe ran past
``--timeout`` (``TIMEOUT``), the watchdog found it over the memory budget
(``OVER_BUDGET``). Messages are plain JSON objects on the wire; the ``TypedDict``s below
name their fields for readers and type checkers, and ``ToWorker``/``FromWorker`` their
kinds (``str`` enums: they compare equal to the ``"type"`` string of a decoded message).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, TypedDict


class ToWorker(str, Enum):
    """Kinds of the parent's messages to a worker (on its stdin)."""

    INIT = "init"
    PROBE = "probe"
    EXTEND = "extend"
    FINISH = "finish"
    EXIT = "exit"


class FromWorker(str, Enum):
    """Kinds of a worker's messages to the parent (on its stdout)."""

    IMPORTED = "imported"
    READY = "ready"
    START = "start"
    TRAINER_READY = "trainer_ready"
    STEP = "step"
    CLASS_GRADS = "class_grads"
    EVALUATED = "evaluated"
    DONE = "done"
    NONFINITE = "nonfinite"
    EXCEPTION = "exception"


# A probe's last message: after one of these the worker waits for the next probe.
FINAL = frozenset({FromWorker.DONE, FromWorker.NONFINITE, FromWorker.EXCEPTION})


class ParentEvent(str, Enum):
    """What the parent concludes without a message: never sent by a worker."""

    EOF = "eof"  # the worker's stdout ended: it exited or was killed
    TIMEOUT = "timeout"  # past --timeout (or the start-up allowance): the parent killed it
    OVER_BUDGET = "over_budget"  # the watchdog saw it above the memory budget and killed it


class ProbeMessage(TypedDict, total=False):
    type: str  # "probe"
    probe: dict[str, Any]  # Probe.to_json()
    class_weights: list[float] | None
    # the seed of the probe's starting state and batch order; absent: the run's (init)
    seed: int | None


class ExtendMessage(TypedDict):
    type: str  # "extend"
    to: int  # train on to this step, then evaluate again


class ImportedMessage(TypedDict):
    type: str  # "imported"
    peak_private_bytes: int | None
    import_s: float


class ReadyMessage(TypedDict, total=False):
    type: str  # "ready"
    model: dict[str, Any]  # what the worker resolved: loss, optimizer, base lr, weights
    environment: dict[str, Any]
    peak_private_bytes: int | None


class StepMessage(TypedDict):
    type: str  # "step"
    id: str
    step: int
    loss: float | str | None  # non-finite values as strings ("nan", "inf")
    grad_norm: float | str | None  # None: not measured


class ClassGradsMessage(TypedDict):
    type: str  # "class_grads"
    id: str
    step: int
    norms: dict[str, float]  # class index -> gradient norm of its samples


class EvaluatedMessage(TypedDict):
    type: str  # "evaluated"
    id: str
    step: int
    holdout: dict[str, Any]


class DoneMessage(TypedDict, total=False):
    type: str  # "done"
    id: str
    holdout: dict[str, Any] | None
    peak_private_bytes: int | None
    peak_gpu_bytes: int | None
    step_info: dict[str, Any] | None


class NonFiniteMessage(TypedDict, total=False):
    type: str  # "nonfinite"
    id: str
    step: int
    where: str  # "loss", "gradient" or "weight"
    variable: str | None
    value: str
    peak_private_bytes: int | None
    step_info: dict[str, Any] | None


class ExceptionMessage(TypedDict, total=False):
    type: str  # "exception"
    id: str  # absent for an exception while building (phase "build")
    phase: str
    exception_type: str
    message: str
    oom: bool
    oom_device: str | None  # "GPU" where the exception's type says so (JAX, PyTorch)
    step: int | None
    peak_private_bytes: int | None


@dataclass(frozen=True)
class WorkerInit:
    """What every worker is told at start."""

    dataset_path: str
    model: dict[str, Any]
    loss: str | None
    optimizer: str | None
    seed: int
    gpu_memory_budget: int | None = None
    dtype_policy: str | None = None
    check_numerics: bool = False
    early_stop: dict[str, float] | None = None  # stabcheck.judge.trend.early_stop_rule
    extend: bool = False  # ask the parent after each held-out evaluation ("evaluated")
    threads: int | None = None  # the framework's intra-op threads of each worker
    backend: str = "tensorflow"  # the Keras backend (KERAS_BACKEND of the worker)

    def message(self) -> dict[str, Any]:
        return {
            "type": ToWorker.INIT.value,
            "dataset": self.dataset_path,
            "model": self.model,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "seed": self.seed,
            "gpu_memory_budget": self.gpu_memory_budget,
            "dtype_policy": self.dtype_policy,
            "check_numerics": self.check_numerics,
            "early_stop": self.early_stop,
            "extend": self.extend,
            "threads": self.threads,
            "backend": self.backend,
        }
