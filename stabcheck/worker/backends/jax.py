"""The JAX backend: Keras's stateless JAX ``train_step`` inside ``jax.jit``, watched.

A probe runs what ``model.fit`` runs under JAX for one batch: ``model.train_step(state,
data)`` (``jax.value_and_grad`` of ``compute_loss_and_updates``, then
``optimizer.stateless_apply``) in one ``jax.jit`` that donates the state, as Keras's
``make_train_function`` does. stabcheck adds nothing to the mathematics; it hooks
``stateless_apply`` of the optimizer instance, which ``train_step`` hands the gradients
at the top of the trace: the hook measures the gradients' global norm and the finiteness
of each, and the traced function returns them as outputs beside the loss and the
finiteness of the new weights. Behind a ``LossScaleOptimizer`` (mixed float16) the
gradients are measured unscaled, and an overflowing step, which Keras skips, is not
measured (as under TensorFlow, where the hook sits on the inner optimizer).

The probe's clipping is Keras's own: ``clipnorm`` / ``clipvalue`` / ``global_clipnorm``
are set on the optimizer instance, so ``_clip_gradients`` clips as ``compile`` would; they
are constants of the trace, so one trace serves all the probes of one clip setting
(``traces`` counts them). The learning rate is the optimizer's variable, part of the
state: no new trace per learning rate.

The state lives in the Keras variables between steps (each step reads their values and
assigns the new ones), so evaluation, the initial-state restore and the next probe see
what a synced ``fit`` leaves. Not supported here: a model's own ``train_step`` (under JAX
it is a stateless function of the user's own making; run it with the TensorFlow or
PyTorch backend). Under ``--gpu-memory-budget`` XLA's allocator is capped before the
import (``backends.prepare_environment``); its peak (``peak_bytes_in_use``) cannot be
reset, so it is the worker's since start. Worker only: imports JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stabcheck.errors import InputError
from stabcheck.worker.backends.base import (
    InitialState,
    StepResult,
    TrainerBase,
    keep_tensorflow_out,
    overrides_train_step,
)

keep_tensorflow_out()


def check_model(model: Any) -> None:
    """Refuse what this backend cannot probe as ``fit`` would train it."""
    if overrides_train_step(model):
        raise InputError(
            f"the model {type(model).__name__} overrides train_step: stabcheck's jax "
            "backend runs Keras's own stateless train_step only; probe this model with "
            "--backend tensorflow or --backend torch")


class Trainer(TrainerBase):
    """One compiled model with its optimizer, jitted training steps and reset (the
    arguments are ``TrainerBase``'s; ``jit_compile="auto"``: jitted, as under ``fit``)."""

    def __init__(self, model: Any, loss: Any, optimizer: Any, state_dir: Path,
                 jit_compile: Any = "auto") -> None:
        check_model(model)
        super().__init__(model, loss, optimizer, state_dir, jit_compile)
        self._captured: tuple[Any, Any, Any] | None = None  # norm, states, applied
        self._key: tuple[str | None, float | None] = (None, None)
        self.per_mode = False  # dense gradients under JAX: the trace is per clip setting
        self._hook(self.optimizer)
        self._steps: dict[tuple[str | None, float | None], Callable[..., Any]] = {}
        self._recorded = False  # whether the last trace reached stateless_apply
        self._records: dict[tuple[str | None, float | None], bool] = {}
        self._grad_norm_fn: Callable[..., Any] | None = None
        self.grad_norm = self._grad_norm

    # -- per probe ---------------------------------------------------------------------

    def activate(self, initial: InitialState, learning_rate: float,
                 clip_kind: str | None, clip_value: float | None) -> None:
        """Start a probe from scratch: initial model and optimizer state, lr and clip."""
        self._restart(initial, learning_rate)
        self._set_keras_clipping(clip_kind, clip_value)
        self._key = (clip_kind, None if clip_kind is None else float(clip_value or 0.0))

    def step(self, x: Any, y: Any, sw: Any) -> StepResult:
        """One step of Keras's JAX ``train_step`` (jitted once per clip setting)."""
        key = self._key
        fn = self._steps.get(key)
        if fn is None:
            fn = self._steps[key] = self._make_step()
        for metric in self.model.metrics:  # fit's running means, reset: this step's values
            metric.reset_state()
        (loss, norm, grad_state, weight_state, applied), state = fn(self._state(), (x, y, sw))
        # reached stateless_apply (known once traced), and did not skip the step
        recorded = self._records.setdefault(key, self._recorded) and bool(applied)
        self._assign(state)
        return StepResult(float(loss), float(norm) if recorded else None,
                          np.asarray(grad_state) if recorded else None,
                          np.asarray(weight_state))

    @property
    def traces(self) -> int:
        """How many training-step traces this trainer made (one per clip setting)."""
        return len(self._steps)

    # -- the step ----------------------------------------------------------------------

    def _jit(self) -> bool:
        return bool(getattr(self.model, "jit_compile", True))

    def _state(self) -> tuple[list[Any], ...]:
        model = self.model
        return ([v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                [v.value for v in self.optimizer.variables],
                [v.value for v in model.metrics_variables])

    def _assign(self, state: tuple[list[Any], ...]) -> None:
        model = self.model
        groups = (model.trainable_variables, model.non_trainable_variables,
                  self.optimizer.variables, model.metrics_variables)
        for variables, values in zip(groups, state, strict=True):
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

    def _make_step(self) -> Callable[..., Any]:
        model = self.model
        n = len(self.tvars)

        def train_step(state: Any, data: Any) -> Any:
            self._captured = None
            logs, state = model.train_step(state, data)
            loss = logs.get("loss") if isinstance(logs, dict) else None
            if loss is None:
                raise ValueError("the model's train_step must return a dict with a 'loss' "
                                 "entry (as Keras's does)")
            captured, self._captured = self._captured, None
            self._recorded = captured is not None
            norm, grad_state, applied = captured if captured is not None else (
                jnp.zeros([], jnp.float32), jnp.zeros([n], jnp.int32), jnp.asarray(False))
            weight_state = norm_and_states(list(state[0]))[1]
            return (jnp.asarray(loss, jnp.float32), norm, grad_state, weight_state,
                    applied), state

        return jax.jit(train_step, donate_argnums=0) if self._jit() else train_step

    def _hook(self, optimizer: Any) -> None:
        """Put the measuring ``stateless_apply`` on the optimizer instance (the outer
        one: a ``LossScaleOptimizer`` applies inside ``ops.cond``, out of which no traced
        value can be carried)."""
        original = optimizer.stateless_apply
        scale_at = self._scale_index()

        def stateless_apply(optimizer_variables: Any, grads: Any,
                            trainable_variables: Any) -> Any:
            grads = list(grads)
            if grads and all(g is not None for g in grads):
                applied = jnp.asarray(True)
                if scale_at is None:
                    norm, states = norm_and_states(grads)
                else:  # unscaled, as the inner optimizer receives them
                    scale = jnp.asarray(optimizer_variables[scale_at], jnp.float32)
                    norm, states = norm_and_states(grads, scale)
                    applied = jnp.all(states == 0)  # else Keras skips the step
                    states = jnp.zeros_like(states)
                self._captured = (norm, states, applied)
            return original(optimizer_variables, grads, trainable_variables)

        optimizer.stateless_apply = stateless_apply

    def _scale_index(self) -> int | None:
        """Where a ``LossScaleOptimizer``'s dynamic scale is among its variables."""
        scale = getattr(self.optimizer, "dynamic_scale", None)
        if scale is None:
            return None
        return next(i for i, v in enumerate(self.optimizer.variables) if v is scale)

    # -- per-class gradient norms ------------------------------------------------------

    def _grad_norm(self, x: Any, y: Any, sw: Any) -> float:
        """Global gradient norm of the loss under given sample weights; stateless, so
        nothing (BatchNorm statistics, seed states) changes."""
        if self._grad_norm_fn is None:
            model, scale_at = self.model, self._scale_index()

            def grad_norm(trainable: Any, non_trainable: Any, metrics: Any, optimizer: Any,
                          x: Any, y: Any, sw: Any) -> Any:
                def loss(values: Any) -> Any:
                    return model.compute_loss_and_updates(
                        values, non_trainable, metrics, x, y, sw, training=True,
                        optimizer_variables=optimizer)[0]

                scale = (None if scale_at is None  # the loss is scaled for float16
                         else jnp.asarray(optimizer[scale_at], jnp.float32))
                return norm_and_states(jax.grad(loss)(trainable), scale)[0]

            self._grad_norm_fn = jax.jit(grad_norm) if self._jit() else grad_norm
        trainable, non_trainable, optimizer, metrics = self._state()
        return float(self._grad_norm_fn(trainable, non_trainable, metrics, optimizer,
                                        x, y, sw))


def norm_and_states(tensors: list[Any], divisor: Any = None) -> tuple[Any, Any]:
    """(global norm, finiteness per tensor) of ``tensors`` (in float32, each divided by
    ``divisor`` when given: a loss scale), traced: the plain norm when every sum of
    squares is finite, else one scaled by the largest magnitude (finite gradients whose
    squares overflow float32 still get their norm)."""
    values = [jnp.asarray(t, jnp.float32) for t in tensors]
    if divisor is not None:
        values = [v / divisor for v in values]
    sums = jnp.stack([jnp.sum(jnp.square(v)) for v in values])
    plain = jnp.sqrt(jnp.sum(sums))
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(v)) for v in values]))
    safe = jnp.where(scale > 0, scale, 1.0)
    scaled = safe * jnp.sqrt(sum(jnp.sum(jnp.square(v / safe)) for v in values))
    norm = jnp.where(jnp.all(jnp.isfinite(sums)), plain, scaled)
    return norm, jnp.stack([finiteness(v) for v in values])


def finiteness(tensor: Any) -> Any:
    """0 when all values are finite, else 1 for a NaN, 2 for +inf, 3 for -inf (first wins)."""
    inf = jnp.isinf(tensor)
    return jnp.where(jnp.any(jnp.isnan(tensor)), 1,
                     jnp.where(jnp.any(inf & (tensor > 0)), 2,
                               jnp.where(jnp.any(inf & (tensor < 0)), 3, 0))).astype(jnp.int32)


# -- around the step ---------------------------------------------------------------------


def framework_version() -> str:
    return str(jax.__version__)


def configure(threads: int | None, gpu_memory_budget: int | None) -> list[dict[str, Any]]:
    """The devices JAX sees. The memory cap is set before the import
    (``prepare_environment``); XLA's CPU threads cannot be set after it."""
    del threads, gpu_memory_budget
    devices = [{"type": "CPU", "name": "CPU:0"}]
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    for i, gpu in enumerate(gpus):
        devices.append({"type": "GPU", "name": f"GPU:{i}", "model": gpu.device_kind})
    return devices


def oom_device(exc: BaseException) -> str | None:
    """XLA's RESOURCE_EXHAUSTED names no device: it is the GPU's when JAX computes there."""
    del exc
    return "GPU" if jax.default_backend() == "gpu" else None


def _gpu() -> Any | None:
    gpus = [d for d in jax.local_devices() if d.platform == "gpu"]
    return gpus[0] if gpus else None


def reset_peak_gpu() -> None:
    """XLA's allocator keeps no resettable peak: ``peak_gpu_bytes`` is the worker's."""


def peak_gpu_bytes() -> int | None:
    gpu = _gpu()
    stats = gpu.memory_stats() if gpu is not None else None
    if not stats:
        return None
    return int(stats.get("peak_bytes_in_use", stats.get("bytes_in_use", 0)))
