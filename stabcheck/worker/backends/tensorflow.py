"""The TensorFlow backend: the model's own ``train_step``, traced once, watched.

A probe runs exactly what ``model.fit`` runs for one batch: ``model.train_step`` (Keras's,
or the one the user's model overrides) inside one ``tf.function``, with ``jit_compile``
as ``compile`` resolved it. stabcheck adds nothing to the mathematics; it hooks two
methods of the optimizer instance that every ``train_step`` reaches:

- ``apply`` (reached from ``apply_gradients`` too) records the gradients' global norm and
  whether each is finite, then hands them on unchanged. Behind a ``LossScaleOptimizer``
  the hook sits on the inner optimizer, so it sees the unscaled gradients of the steps
  that are applied (a skipped, overflowing mixed-precision step is not a failure);
- ``_clip_gradients``, where Keras clips (after unscaling and gradient accumulation),
  clips with the probe's mode and threshold, calling Keras's own clipping functions.

So that one trace serves every probe of a worker, the learning rate is the optimizer's
variable and the clip threshold a variable; the clip mode is a variable too, and every
mode one formula without control flow (``_any_clip``), bit for bit Keras's clipping.
Where a model has sparse gradients (``IndexedSlices``, e.g. from an ``Embedding``),
Keras's modes do not all return the same structure, so the step is traced once per clip
mode instead, each trace Keras's own clipping of that mode.

The norm and the finiteness checks are sums of squares per tensor (``tf.nn.l2_loss``, no
temporary the size of a gradient); only when a sum is not finite does the exact
per-tensor check run. Between probes the model's variables (weights, BatchNorm
statistics, random-seed states) and the optimizer's are restored from an
``InitialState`` kept on disk, not in memory.

Around the step: GPU memory growth or a hard cap (a logical device of the budget's size),
the allocator's peak, check-numerics. Worker only: imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras.src.optimizers.base_optimizer import clip_by_global_norm
from keras.src.optimizers.base_optimizer import global_norm as keras_global_norm

from stabcheck.worker.backends.base import (
    InitialState,
    StepResult,
    TrainerBase,
    per_variable,
    received,
)

CLIP_MODES = {None: 0, "norm": 1, "value": 2, "global_norm": 3}


def check_model(model: Any) -> None:
    """Every Keras model trains under TensorFlow as ``fit`` trains it: nothing to refuse."""


class Trainer(TrainerBase):
    """One compiled model with its optimizer, traced training step and reset (the
    arguments are ``TrainerBase``'s)."""

    def __init__(self, model: Any, loss: Any, optimizer: Any, state_dir: Path,
                 jit_compile: Any = "auto") -> None:
        super().__init__(model, loss, optimizer, state_dir, jit_compile)
        self._clip_mode = tf.Variable(0, dtype=tf.int32, trainable=False)
        self._clip_value = tf.Variable(1.0, dtype=tf.float32, trainable=False)
        self._gnorm = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        self._gstate = tf.Variable(tf.zeros([len(self.tvars)], tf.int32), trainable=False)
        self._recorded = tf.Variable(0, dtype=tf.int32, trainable=False)
        self._kind: str | None = None  # the clip mode of the probe being trained
        self.per_mode = False  # sparse gradients: one trace per clip mode
        self._hook(self._inner)
        self._steps: dict[str, Callable[..., Any]] = {}
        self.grad_norm = None if self.custom_step else self._make_grad_norm()

    # -- per probe ---------------------------------------------------------------------

    def activate(self, initial: InitialState, learning_rate: float,
                 clip_kind: str | None, clip_value: float | None) -> None:
        """Start a probe from scratch: initial model and optimizer state, lr and clip."""
        self._restart(initial, learning_rate)
        self._kind = clip_kind
        self._clip_mode.assign(CLIP_MODES[clip_kind])
        self._clip_value.assign(1.0 if clip_value is None else clip_value)

    def step(self, x: Any, y: Any, sw: Any) -> StepResult:
        """One training step, traced once (per clip mode with sparse gradients)."""
        key = str(self._kind) if self.per_mode else "any"
        fn = self._steps.get(key)
        if fn is None:
            fn = self._steps[key] = self._make_step()
        loss, gnorm, recorded, grad_state, weight_state = fn(x, y, sw)
        if self.per_mode and key == "any":  # found sparse gradients while tracing
            self._steps[str(self._kind)] = self._steps.pop("any")
        # ``recorded`` is 0 when the step did not reach ``optimizer.apply``
        seen = bool(int(recorded))
        return StepResult(float(loss), float(gnorm) if seen else None,
                          grad_state.numpy() if seen else None, weight_state.numpy())

    @property
    def traces(self) -> int:
        """How many training-step traces this trainer made (one per clip mode at most)."""
        return len(self._steps)

    # -- the step ----------------------------------------------------------------------

    def _jit(self) -> bool:
        return bool(getattr(self.model, "jit_compile", False))

    def _make_step(self) -> Callable[..., Any]:
        model = self.model

        # Not converted by AutoGraph, as Keras's own step is not (``one_step_on_data`` in
        # keras/src/backend/tensorflow/trainer.py): the same graph as fit's, and a trace
        # about 1 s shorter on a small CNN.
        @tf.function(reduce_retracing=True, jit_compile=self._jit())
        @tf.autograph.experimental.do_not_convert
        def train_step(x: Any, y: Any, sw: Any) -> Any:
            for metric in model.metrics:  # fit's running means, reset: this step's values
                metric.reset_state()
            self._recorded.assign(0)
            logs = model.train_step((x, y, sw))
            loss = logs.get("loss") if isinstance(logs, dict) else None
            if loss is None:
                raise ValueError(
                    "the model's train_step must return a dict with a 'loss' entry (as "
                    f"Keras's does); it returned {type(logs).__name__} "
                    f"{sorted(logs) if isinstance(logs, dict) else ''}")
            weight_state = states(self.tvars)
            return (tf.cast(loss, tf.float32), self._gnorm.read_value(),
                    self._recorded.read_value(), self._gstate.read_value(), weight_state)

        return train_step

    def _hook(self, optimizer: Any) -> None:
        """Put the measuring ``apply`` and the probe's ``_clip_gradients`` on the instance."""
        original_apply = optimizer.apply
        index = {id(v): i for i, v in enumerate(self.tvars)}

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            grads = list(grads)
            present = received(optimizer, grads, trainable_variables)
            if present:
                norm, per_tensor = norm_and_states([g for g, _ in present])
                full = per_variable(present, per_tensor, index, tf.constant(0, tf.int32))
                self._gnorm.assign(norm)
                if full:
                    self._gstate.assign(tf.stack(full))
                self._recorded.assign(1)
            return original_apply(grads, trainable_variables)

        def clip_gradients(grads: list[Any]) -> list[Any]:
            if self.per_mode or any(isinstance(g, tf.IndexedSlices) for g in grads):
                self.per_mode = True
                return _clip(grads, self._kind, self._clip_value)
            return _any_clip(grads, self._clip_mode.read_value(), self._clip_value)

        optimizer.apply = apply
        optimizer._clip_gradients = clip_gradients

    # -- per-class gradient norms ------------------------------------------------------

    def _make_grad_norm(self) -> Callable[..., Any]:
        """Global gradient norm of the loss under given sample weights, leaving every
        variable as it was (BatchNorm statistics and seed states are restored), so the
        measurement does not change the training that follows."""
        model, tvars = self.model, self.tvars

        @tf.function(reduce_retracing=True, jit_compile=self._jit())
        @tf.autograph.experimental.do_not_convert
        def grad_norm(x: Any, y: Any, sw: Any) -> Any:
            saved = [(v, tf.identity(v)) for v in model.non_trainable_variables]
            # Mixed precision: differentiate the scaled loss, as train_step does, and
            # unscale the norm.
            scale = getattr(self.optimizer, "dynamic_scale", None)
            with tf.GradientTape() as tape:
                y_pred = model(x, training=True)
                loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw,
                                          training=True)
                if scale is not None:
                    loss = loss * tf.cast(scale, loss.dtype)
            grads = [g for g in tape.gradient(loss, tvars) if g is not None]
            norm = norm_and_states(grads)[0] if grads else tf.constant(0.0)
            if scale is not None:
                norm = norm / tf.cast(scale, tf.float32)
            with tf.control_dependencies([norm]):
                for variable, value in saved:
                    variable.assign(value)
            return tf.identity(norm)

        return grad_norm


def _clip(grads: list[Any], kind: str | None, threshold: Any) -> list[Any]:
    """Keras's clipping of ``kind`` (TensorFlow backend) with a variable threshold."""
    if kind == "norm":  # keras.src.backend.tensorflow.optimizer._clip_by_norm
        return [tf.clip_by_norm(g, threshold) for g in grads]
    if kind == "value":  # BaseOptimizer._clip_gradients
        return [keras.ops.clip(g, -threshold, threshold) for g in grads]
    if kind == "global_norm":
        return clip_by_global_norm(grads, threshold)
    return list(grads)


def _any_clip(grads: list[Any], mode: Any, threshold: Any) -> list[Any]:
    """Keras's clipping of the mode ``mode`` (a tensor: ``CLIP_MODES``), without control
    flow: every gradient becomes ``clip_by_value(g * a / b, -v, v)`` with scalars that
    make it, bit for bit, Keras's clipping of that mode (finite values; a NaN stays NaN):

    - none: a = b = 1, v = inf;
    - norm (``tf.clip_by_norm``): a = threshold, b = max(||g||, threshold), v = inf;
    - value: a = b = 1, v = threshold;
    - global_norm (Keras's ``clip_by_global_norm``): a = its scale, b = 1, v = inf.

    A ``tf.switch_case`` over the four clipped lists did the same, but kept the whole
    gradient list alive beside its outputs (measured: +180 MiB on ResNet50 at batch 16,
    the model's gradients twice over).
    """
    is_norm = tf.equal(mode, CLIP_MODES["norm"])
    is_value = tf.equal(mode, CLIP_MODES["value"])
    is_global = tf.equal(mode, CLIP_MODES["global_norm"])
    # keras.src.optimizers.base_optimizer.clip_by_global_norm, its scale
    use_norm = keras_global_norm(grads)
    scale = threshold * keras.ops.minimum(1.0 / use_norm, 1.0 / threshold)
    scale = scale + (use_norm - use_norm)
    out = []
    for g in grads:
        dtype = g.dtype
        c = tf.cast(tf.maximum(threshold, 0), dtype)
        one = tf.ones([], dtype)
        inf = tf.constant(float("inf"), dtype)
        # tf.clip_by_norm's norm, as it computes it
        l2sum = tf.reduce_sum(g * g, keepdims=True)
        pred = l2sum > 0
        l2norm = tf.where(pred, tf.sqrt(tf.where(pred, l2sum, tf.ones_like(l2sum))), l2sum)
        a = tf.where(is_norm, c, tf.where(is_global, tf.cast(scale, dtype), one))
        b = tf.where(is_norm, tf.maximum(l2norm, c), one)
        v = tf.where(is_value, c, inf)
        out.append(tf.clip_by_value((g * a) / b, -v, v))
    return out


def _square_sum(tensor: Any) -> Any:
    """Sum of squares in float32, without a temporary the size of the tensor; for sparse
    gradients, of the dense gradient they stand for (rows of repeated indices summed)."""
    if isinstance(tensor, tf.IndexedSlices):
        unique, position = tf.unique(tensor.indices)
        tensor = tf.math.unsorted_segment_sum(tensor.values, position, tf.size(unique))
    if tensor.dtype != tf.float32 and tensor.dtype.is_floating:
        tensor = tf.cast(tensor, tf.float32)
    return 2.0 * tf.nn.l2_loss(tensor)


def _dense(tensor: Any) -> Any:
    if isinstance(tensor, tf.IndexedSlices):
        return tensor.values
    return tensor


def norm_and_states(tensors: list[Any]) -> tuple[Any, list[Any]]:
    """(global norm, finiteness per tensor) of ``tensors``.

    The cheap path: sums of squares per tensor; when all are finite, so is every value.
    Otherwise (a non-finite value, or squares that overflow float32) the exact path:
    each tensor's finiteness and a norm scaled by the largest magnitude.
    """
    sums = tf.stack([_square_sum(t) for t in tensors])
    finite = tf.reduce_all(tf.math.is_finite(sums))

    def cheap() -> tuple[Any, Any]:
        return tf.sqrt(tf.reduce_sum(sums)), tf.zeros([len(tensors)], tf.int32)

    def exact() -> tuple[Any, Any]:
        dense = [tf.cast(_dense(t), tf.float32) for t in tensors]
        return global_norm(dense), tf.stack([finiteness(t) for t in dense])

    norm, per_tensor = tf.cond(finite, cheap, exact)
    return norm, tf.unstack(per_tensor, num=len(tensors))


def states(tensors: list[Any]) -> Any:
    """Finiteness of each tensor (see ``finiteness``), by the cheap path where it can."""
    if not tensors:
        return tf.zeros([0], tf.int32)
    return tf.stack(norm_and_states(tensors)[1])


def global_norm(tensors: list[Any]) -> Any:
    """sqrt(sum of squares) scaled by the largest magnitude, so that finite gradients
    never overflow float32 on the way (``tf.linalg.global_norm`` squares them first)."""
    scale = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(t)) for t in tensors]))
    safe = tf.where(scale > 0, scale, tf.ones_like(scale))
    total = tf.add_n([tf.reduce_sum(tf.square(t / safe)) for t in tensors])
    return safe * tf.sqrt(total)


def finiteness(tensor: Any) -> Any:
    """0 when all values are finite, else 1 for a NaN, 2 for +inf, 3 for -inf (first wins)."""
    tensor = tf.convert_to_tensor(tensor)
    # No Inf constant in the graph: TensorFlow's check-numerics would flag it.
    nan = tf.reduce_any(tf.math.is_nan(tensor))
    inf = tf.math.is_inf(tensor)
    pos_inf = tf.reduce_any(inf & (tensor > 0))
    neg_inf = tf.reduce_any(inf & (tensor < 0))
    return tf.where(nan, 1, tf.where(pos_inf, 2, tf.where(neg_inf, 3, 0)))


# -- around the step ---------------------------------------------------------------------


def framework_version() -> str:
    return str(tf.__version__)


def configure(threads: int | None, gpu_memory_budget: int | None) -> list[dict[str, Any]]:
    """Threads (parallel workers share the cores) and GPU memory: grown on demand, or
    one logical device capped at ``gpu_memory_budget`` (a smaller card); the devices."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        if gpu_memory_budget:
            # A logical device with a hard limit simulates a smaller card.
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=gpu_memory_budget >> 20)]
            )
        else:
            tf.config.experimental.set_memory_growth(gpu, True)
    devices = [{"type": "CPU", "name": "CPU:0"}]
    for i, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        devices.append({"type": "GPU", "name": f"GPU:{i}",
                        "model": details.get("device_name", gpu.name)})
    return devices


def oom_device(exc: BaseException) -> str | None:
    """TensorFlow's allocator names the device in its message ("... on /device:GPU:0")."""
    del exc
    return None


def enable_check_numerics() -> None:
    """The first op to output an Inf/NaN raises, named (``run.numerics`` reads it)."""
    tf.debugging.enable_check_numerics()


def reset_peak_gpu() -> None:
    if tf.config.list_logical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def peak_gpu_bytes() -> int | None:
    if not tf.config.list_logical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
