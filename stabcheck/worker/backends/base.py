"""What every backend's trainer offers the probe loop, and what they share (Keras only).

A ``Trainer`` (one per backend module) wraps one compiled model with its optimizer:

- ``Trainer(model, loss, optimizer, state_dir, jit_compile)``;
- ``compile()``: make the shared model this trainer's (loss and optimizer);
- ``activate(initial, learning_rate, clip_kind, clip_value)``: start a probe from the
  initial state, with its learning rate and clipping;
- ``step(x, y, sw) -> StepResult``: one step of the backend's own Keras ``train_step``;
- ``grad_norm``: ``(x, y, sw) -> float``, the loss's global gradient norm, changing
  nothing; None where the model's own ``train_step`` runs;
- ``custom_step``, ``per_mode``, ``traces``, ``tvars``: what the evidence reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np


@dataclass(frozen=True)
class StepResult:
    """One training step as the probe loop reads it.

    Attributes:
        loss: the loss the step's ``train_step`` returned.
        grad_norm: the pre-clip global gradient norm; None when the step did not reach
            ``optimizer.apply`` (a custom ``train_step`` that updates the weights some
            other way).
        grad_state: per trainable variable, 0 when its gradient is finite, else 1 NaN,
            2 +inf, 3 -inf (``finiteness``); None with ``grad_norm``.
        weight_state: the same for the weights after the step.
    """

    loss: float
    grad_norm: float | None
    grad_state: np.ndarray | None
    weight_state: np.ndarray


def keep_tensorflow_out() -> None:
    """Under JAX or PyTorch, stop Keras importing TensorFlow where it is installed too.

    Keras's ``set_random_seed`` seeds TensorFlow whenever it can import it (for
    ``tf.data`` pipelines, which a probe does not use): measured, 420 MiB of host memory
    and 3.4 s in a JAX worker, which the probe's peak would count as the model's. Keras
    reaches TensorFlow through a lazy module; marking it unavailable keeps it out.
    """
    try:
        from keras.src.utils import module_utils
    except ImportError:  # another Keras layout: TensorFlow may come in, nothing breaks
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and getattr(lazy, "module", None) is None and hasattr(lazy, "_available"):
        lazy._available = False


def overrides_train_step(model: Any) -> bool:
    """Whether the model's class defines its own ``train_step`` (not Keras's)."""
    return type(model).train_step is not keras.Model.train_step


class InitialState:
    """The starting values of a list of variables, restorable between probes.

    A variable whose values are all one number (optimizer slots, counters, biases) is
    kept as that number; the others are written to ``.npy`` files in ``folder``, so that
    what only matters between probes does not sit in memory while a probe trains.
    """

    def __init__(self, variables: list[Any], folder: Path) -> None:
        self._variables = list(variables)
        self._values: list[float | int | bool | Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"state-{uuid.uuid4().hex[:12]}"
        for i, variable in enumerate(self._variables):
            value = np.asarray(variable.numpy())
            if value.size == 0 or np.all(value == value.flat[0]):
                self._values.append(value.flat[0].item() if value.size else 0)
            else:
                path = folder / f"{stem}-{i}.npy"
                np.save(path, value, allow_pickle=False)
                self._values.append(path)
            del value

    def restore(self) -> None:
        """Assign every variable its starting value."""
        for variable, value in zip(self._variables, self._values, strict=True):
            if isinstance(value, Path):
                variable.assign(np.load(value, allow_pickle=False))
            else:
                variable.assign(keras.ops.full(variable.shape, value, dtype=variable.dtype))
