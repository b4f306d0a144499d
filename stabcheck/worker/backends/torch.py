"""The PyTorch backend: Keras's eager torch ``train_step``, watched.

A probe runs what ``model.fit`` runs under PyTorch for one batch (``jit_compile="auto"``
is eager there): ``model.train_step(data)`` (the forward pass, ``loss.backward()``, then
``optimizer.apply`` under ``torch.no_grad``), the model in training mode, or the model's
own ``train_step``. stabcheck adds nothing to the mathematics; it hooks ``apply`` of the
optimizer instance, which records the gradients' global norm and whether each is finite
and hands them on unchanged. The probe's clipping is Keras's own: ``clipnorm`` /
``clipvalue`` / ``global_clipnorm`` are set on the optimizer instance (eager: no trace
to share, ``traces`` is 0).

Norms are per-tensor ``vector_norm``s in float32 (a reduction, no temporary the size of a
gradient); only when one is not finite do the exact per-tensor checks run. GPU memory:
``set_per_process_memory_fraction`` caps the caching allocator at the budget's share of
the card; the peak is ``max_memory_allocated``. Worker only: imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import torch

from stabcheck.worker.backends.base import (
    InitialState,
    StepResult,
    TrainerBase,
    keep_tensorflow_out,
    per_variable,
    received,
)

keep_tensorflow_out()


def check_model(model: Any) -> None:
    """Every Keras model trains under PyTorch as ``fit`` trains it: nothing to refuse."""


class Trainer(TrainerBase):
    """One compiled model with its optimizer, eager training step and reset (the
    arguments are ``TrainerBase``'s; the step runs eagerly whatever ``jit_compile``)."""

    def __init__(self, model: Any, loss: Any, optimizer: Any, state_dir: Path,
                 jit_compile: Any = "auto") -> None:
        super().__init__(model, loss, optimizer, state_dir, jit_compile)
        self._captured: tuple[float, np.ndarray] | None = None
        self.per_mode = False
        self.traces = 0
        self._hook(self._inner)
        self.grad_norm = None if self.custom_step else self._grad_norm
        # Layers without a seed (Dropout()) draw from torch's global generator: every
        # probe starts from the same draws, as under TensorFlow and JAX, whose seed states
        # are the model's variables.
        self._rng = _rng_state()

    # -- per probe ---------------------------------------------------------------------

    def activate(self, initial: InitialState, learning_rate: float,
                 clip_kind: str | None, clip_value: float | None) -> None:
        """Start a probe from scratch: initial model and optimizer state, the global
        generator's state, lr and clip."""
        self._restart(initial, learning_rate)
        _set_rng_state(self._rng)
        self._set_keras_clipping(clip_kind, clip_value)

    def step(self, x: Any, y: Any, sw: Any) -> StepResult:
        """One step of the model's ``train_step`` (Keras's, or the model's own)."""
        model = self.model
        model.train()  # torch's training mode, as fit sets it
        for metric in model.metrics:  # fit's running means, reset: this step's values
            metric.reset_state()
        self._captured = None
        convert = keras.ops.convert_to_tensor
        logs = model.train_step((convert(x), convert(y), convert(sw)))
        loss = logs.get("loss") if isinstance(logs, dict) else None
        if loss is None:
            raise ValueError(
                "the model's train_step must return a dict with a 'loss' entry (as "
                f"Keras's does); it returned {type(logs).__name__} "
                f"{sorted(logs) if isinstance(logs, dict) else ''}")
        with torch.no_grad():
            weight_state = norm_and_states([v.value for v in self.tvars])[1]
        captured, self._captured = self._captured, None
        return StepResult(float(loss), None if captured is None else captured[0],
                          None if captured is None else captured[1], weight_state)

    # -- the hook ----------------------------------------------------------------------

    def _hook(self, optimizer: Any) -> None:
        """Put the measuring ``apply`` on the optimizer instance."""
        original_apply = optimizer.apply
        index = {id(v): i for i, v in enumerate(self.tvars)}

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            grads = list(grads)
            present = received(optimizer, grads, trainable_variables)
            if present:
                with torch.no_grad():
                    norm, per_tensor = norm_and_states([g for g, _ in present])
                full = np.array(per_variable(present, per_tensor, index, 0), np.int32)
                self._captured = (norm, full)
            return original_apply(grads, trainable_variables)

        optimizer.apply = apply

    # -- per-class gradient norms ------------------------------------------------------

    def _grad_norm(self, x: Any, y: Any, sw: Any) -> float:
        """Global gradient norm of the loss under given sample weights, leaving every
        variable as it was (BatchNorm statistics and seed states are restored)."""
        model = self.model
        saved = [(v, v.value.detach().clone()) for v in model.non_trainable_variables]
        convert = keras.ops.convert_to_tensor
        x, y, sw = convert(x), convert(y), convert(sw)
        try:
            model.train()
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw,
                                      training=True)
            grads = torch.autograd.grad(loss, [v.value for v in self.tvars],
                                        allow_unused=True)
            present = [g for g in grads if g is not None]
            with torch.no_grad():
                return norm_and_states(present)[0] if present else 0.0
        finally:
            for variable, value in saved:
                variable.assign(value)


def _rng_state() -> tuple[Any, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Any, Any]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def norm_and_states(tensors: list[Any]) -> tuple[float, np.ndarray]:
    """(global norm, finiteness per tensor: ``finiteness``) of ``tensors``.

    The cheap path: one float32 norm per tensor; when all are finite, so is every value
    (the global norm is the norm of the norms: no squares to overflow). Otherwise each
    tensor's exact finiteness.
    """
    norms = torch.stack([torch.linalg.vector_norm(t, dtype=torch.float32) for t in tensors])
    norm = float(torch.linalg.vector_norm(norms))
    if bool(torch.isfinite(norms).all()):
        return norm, np.zeros(len(tensors), np.int32)
    return norm, np.array([finiteness(t) for t in tensors], np.int32)


def finiteness(tensor: Any) -> int:
    """0 when all values are finite, else 1 for a NaN, 2 for +inf, 3 for -inf (first wins)."""
    if bool(torch.isnan(tensor).any()):
        return 1
    inf = torch.isinf(tensor)
    if bool((inf & (tensor > 0)).any()):
        return 2
    return 3 if bool((inf & (tensor < 0)).any()) else 0


# -- around the step ---------------------------------------------------------------------


def framework_version() -> str:
    return str(torch.__version__)


def configure(threads: int | None, gpu_memory_budget: int | None) -> list[dict[str, Any]]:
    """Threads (parallel workers share the cores) and the GPU cap: the caching
    allocator may hold at most ``gpu_memory_budget`` of the first GPU; the devices."""
    if threads:
        torch.set_num_threads(int(threads))
    devices = [{"type": "CPU", "name": "CPU:0"}]
    if not torch.cuda.is_available():
        return devices
    if gpu_memory_budget:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, gpu_memory_budget / total), 0)
    for i in range(torch.cuda.device_count()):
        devices.append({"type": "GPU", "name": f"GPU:{i}",
                        "model": torch.cuda.get_device_name(i)})
    return devices


def oom_device(exc: BaseException) -> str | None:
    """``torch.OutOfMemoryError`` is the CUDA caching allocator's (a failed host
    allocation raises a plain ``RuntimeError``)."""
    return "GPU" if isinstance(exc, torch.OutOfMemoryError) else None


def reset_peak_gpu() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gpu_bytes() -> int | None:
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.max_memory_allocated())
