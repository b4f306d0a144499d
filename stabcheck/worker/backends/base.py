"""What every backend's trainer offers the probe loop, and what they share (Keras only).

A ``Trainer`` (one per backend module, a ``TrainerBase``) wraps one compiled model with
its optimizer:

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

from stabcheck.protocol.vocabulary import CLIP_KINDS


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


def received(optimizer: Any, grads: list[Any], trainable_variables: Any) -> list[tuple[Any, Any]]:
    """The (gradient, variable) pairs ``optimizer.apply`` received, None gradients left
    out (a variable the loss does not reach)."""
    variables = list(trainable_variables if trainable_variables is not None
                     else optimizer._trainable_variables)
    return [(g, v) for g, v in zip(grads, variables, strict=False) if g is not None]


def per_variable(pairs: list[tuple[Any, Any]], states: Any, index: dict[int, int],
                 zero: Any) -> list[Any]:
    """``states`` (one per pair) in the order of ``index`` (variable id -> position),
    ``zero`` where a variable received no gradient."""
    full = [zero] * len(index)
    for (_, variable), state in zip(pairs, states, strict=True):
        if id(variable) in index:
            full[index[id(variable)]] = state
    return full


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

    def __init__(self, variables: list[Any], folder: Path,
                 values_of: list[Any] | None = None) -> None:
        """Keep the values of ``variables`` (or, with ``values_of``, of those variables,
        one for each of ``variables``, of the same shape: another instance of the model
        built under another seed) to restore into ``variables``."""
        self._variables = list(variables)
        source = self._variables if values_of is None else list(values_of)
        if len(source) != len(self._variables) or any(
                tuple(a.shape) != tuple(b.shape) for a, b in zip(source, self._variables,
                                                                 strict=True)):
            raise ValueError("the model built under another seed has other variables: "
                             f"{len(source)} against {len(self._variables)}")
        self._values: list[float | int | bool | Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"state-{uuid.uuid4().hex[:12]}"
        for i, variable in enumerate(source):
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


class TrainerBase:
    """What the backends' trainers share: the optimizer (wrapped for mixed float16 as
    ``compile`` wraps it), the model compiled for it, the optimizer built on the model's
    trainable variables with its starting state kept, and the per-probe reset.

    Args:
        model: the built Keras model (shared by all trainers of a worker).
        loss: the loss to compile with, or None to keep the model's compiled loss (a
            model that overrides ``train_step`` may also override ``compile``).
        optimizer: a fresh optimizer without clipping arguments.
        state_dir: where the initial state of the optimizer is kept.
        jit_compile: as ``compile`` takes it.
    """

    def __init__(self, model: Any, loss: Any, optimizer: Any, state_dir: Path,
                 jit_compile: Any = "auto") -> None:
        self.model = model
        self.custom_step = overrides_train_step(model)
        if model.dtype_policy.name == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)  # as compile does
        self.optimizer = optimizer
        self._loss = loss
        self._jit_compile = jit_compile
        self.compile()
        self.tvars = list(model.trainable_variables)
        optimizer.build(self.tvars)
        self._opt_initial = InitialState(optimizer.variables, state_dir)
        # where the gradients arrive unscaled (behind a LossScaleOptimizer: its inner one)
        self._inner = getattr(optimizer, "inner_optimizer", optimizer)

    def compile(self) -> None:
        """Make the shared model this trainer's (its loss and optimizer)."""
        if self._loss is None:
            self.model.optimizer = self.optimizer
            return
        self.model.compile(optimizer=self.optimizer, loss=self._loss,
                           jit_compile=self._jit_compile)

    def _restart(self, initial: InitialState, learning_rate: float) -> None:
        """The initial model and optimizer state, and the probe's learning rate."""
        initial.restore()
        self._opt_initial.restore()
        self.optimizer.learning_rate = learning_rate

    def _set_keras_clipping(self, kind: str | None, value: float | None) -> None:
        """Clip as ``compile`` with ``clipnorm``/``clipvalue``/``global_clipnorm`` would:
        the attribute of ``kind`` on the optimizer instance, the others unset."""
        for name, attribute in CLIP_KINDS.items():
            setattr(self._inner, attribute, value if name == kind else None)
