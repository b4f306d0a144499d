"""Trace once, probe many: one compiled training step serves every probe of a worker.

Probes of one worker differ in learning rate, clipping and class weights. All three enter
the traced step as *data*, so the step is traced once and reused:

- the learning rate is the optimizer's own learning-rate variable, assigned per probe;
- clipping is applied before ``optimizer.apply`` from two variables (mode, threshold),
  with exactly the formulas of Keras's ``BaseOptimizer._clip_gradients`` (``clipnorm``
  per variable, ``clipvalue``, ``global_clipnorm``), which is also the first thing
  Keras's ``apply`` does with the gradients, so the update is the one Keras computes;
- class weights arrive as the per-sample weights ``fit(class_weight=...)`` derives.

Between probes the model's weights and the optimizer's variables (step counter, slots)
are restored to the values they had before the first probe. Worker only: imports TF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

CLIP_MODES = {None: 0, "norm": 1, "value": 2, "global_norm": 3}


class ProbeTrainer:
    """A compiled model, optimizer and training step, reset and re-set for each probe.

    Args:
        model: the built Keras model (shared by all trainers of a worker).
        loss: the Keras loss to compile with.
        optimizer: a fresh, unbuilt optimizer without clipping arguments.
    """

    def __init__(self, model: Any, loss: Any, optimizer: Any) -> None:
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.tvars = model.trainable_variables
        optimizer.build(self.tvars)
        self._opt_initial = [np.array(v.numpy()) for v in optimizer.variables]
        self._clip_mode = tf.Variable(0, dtype=tf.int32, trainable=False)
        self._clip_value = tf.Variable(1.0, dtype=tf.float32, trainable=False)
        self.step = self._make_step()
        self.grad_norm = self._make_grad_norm()

    def activate(self, initial_weights: list[np.ndarray], learning_rate: float,
                 clip_kind: str | None, clip_value: float | None) -> None:
        """Make the shared model this trainer's and start a probe from scratch."""
        self.model.compile(optimizer=self.optimizer, loss=self.loss)
        for variable, value in zip(self.model.weights, initial_weights, strict=True):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, self._opt_initial, strict=True):
            variable.assign(value)
        self.optimizer.learning_rate = learning_rate
        self._clip_mode.assign(CLIP_MODES[clip_kind])
        self._clip_value.assign(1.0 if clip_value is None else clip_value)

    def _clip(self, grads: list[Any]) -> list[Any]:
        v = self._clip_value

        def by_norm() -> list[Any]:  # Keras BaseOptimizer._clip_by_norm
            out = []
            for g in grads:
                l2sum = tf.reduce_sum(tf.square(g), keepdims=True)
                pred = l2sum > 0
                l2sum_safe = tf.where(pred, l2sum, tf.ones_like(l2sum))
                l2norm = tf.where(pred, tf.sqrt(l2sum_safe), l2sum)
                out.append((g * v) / tf.maximum(l2norm, v))
            return out

        def by_value() -> list[Any]:
            return [tf.clip_by_value(g, -v, v) for g in grads]

        def by_global_norm() -> list[Any]:  # keras.src.optimizers.base_optimizer
            use_norm = tf.sqrt(tf.reduce_sum(tf.stack([tf.reduce_sum(tf.square(g))
                                                       for g in grads])))
            scale = v * tf.minimum(1.0 / use_norm, 1.0 / v) + (use_norm - use_norm)
            return [g * scale for g in grads]

        branches = [lambda: list(grads), by_norm, by_value, by_global_norm]
        return tf.switch_case(self._clip_mode.read_value(), branches)

    def _loss_and_grads(self, x: Any, y: Any, sw: Any) -> tuple[Any, list[Any]]:
        """Keras's forward pass and ``compute_loss`` (as ``fit``'s train_step), and the
        gradients, zeros where a variable does not take part."""
        with tf.GradientTape() as tape:
            y_pred = self.model(x, training=True)
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw,
                                           training=True)
        grads = tape.gradient(loss, self.tvars)
        return loss, [tf.zeros_like(t) if g is None else g
                      for g, t in zip(grads, self.tvars, strict=True)]

    def _make_step(self) -> Callable[..., Any]:
        optimizer, tvars = self.optimizer, self.tvars

        @tf.function(reduce_retracing=True)
        def train_step(x: Any, y: Any, sw: Any) -> Any:
            loss, grads = self._loss_and_grads(x, y, sw)
            gnorm = global_norm(grads)
            grad_state = states(grads)
            optimizer.apply(self._clip(grads), tvars)
            weight_state = states(tvars)
            return loss, gnorm, grad_state, weight_state

        return train_step

    def _make_grad_norm(self) -> Callable[..., Any]:

        @tf.function(reduce_retracing=True)
        def grad_norm(x: Any, y: Any, sw: Any) -> Any:
            return global_norm(self._loss_and_grads(x, y, sw)[1])

        return grad_norm


def global_norm(tensors: list[Any]) -> Any:
    """sqrt(sum of squares) scaled by the largest magnitude, so that finite gradients
    never overflow float32 on the way (``tf.linalg.global_norm`` squares them first)."""
    scale = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(t)) for t in tensors]))
    safe = tf.where(scale > 0, scale, tf.ones_like(scale))
    total = tf.add_n([tf.reduce_sum(tf.square(t / safe)) for t in tensors])
    return safe * tf.sqrt(total)


def states(tensors: list[Any]) -> Any:
    """``finiteness`` of each tensor, computed only when one of them is not finite (the
    common all-finite case costs one reduction per tensor)."""
    all_finite = tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t))
                                         for t in tensors]))
    return tf.cond(all_finite, lambda: tf.zeros([len(tensors)], tf.int32),
                   lambda: tf.stack([finiteness(t) for t in tensors]))


def finiteness(tensor: Any) -> Any:
    """0 when all values are finite, else 1 for a NaN, 2 for +inf, 3 for -inf (first wins)."""
    tensor = tf.convert_to_tensor(tensor)
    # No Inf constant in the graph: TensorFlow's check-numerics would flag it.
    nan = tf.reduce_any(tf.math.is_nan(tensor))
    inf = tf.math.is_inf(tensor)
    pos_inf = tf.reduce_any(inf & (tensor > 0))
    neg_inf = tf.reduce_any(inf & (tensor < 0))
    return tf.where(nan, 1, tf.where(pos_inf, 2, tf.where(neg_inf, 3, 0)))
