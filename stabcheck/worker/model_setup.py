"""A built model made ready for its probes, inside a worker (imports Keras and its backend).

:func:`prepare_model` resolves what every probe of the model shares (the loss, the
optimizer and the baseline learning rate: a flag, then what the model was compiled with,
then a default from the labels and the output layer) and keeps the model's starting
variables on disk; :class:`SeedStates` keeps its starting state under another seed;
:func:`trainer_for` builds and compiles the backend's trainer of a loss and an
accumulation (the focal loss's alpha from the class frequencies), once per worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stabcheck.protocol.dataset import Dataset
from stabcheck.system.procfs import TrainingPeak
from stabcheck.worker import backends
from stabcheck.worker.backends.base import InitialState, overrides_train_step

_backend = backends.current()

_DEFAULT_LOSS = {
    "binary": "binary_crossentropy",
    "onehot": "categorical_crossentropy",
    "sparse": "sparse_categorical_crossentropy",
    "continuous": "mse",  # a regression target (Keras's mean squared error)
}


@dataclass
class ModelSetup:
    """A built model and what every probe of it shares."""

    model: Any
    initial: InitialState  # the model's starting variables, on disk
    state_dir: Path  # where the trainers keep their optimizers' starting state
    loss: Any  # a Keras loss (name or object); None: the model's compiled loss as it is
    loss_name: str
    optimizer_class: type
    optimizer_config: dict[str, Any]
    baseline_lr: float
    describe: dict[str, Any]
    jit_compile: Any = "auto"
    trainers: dict[tuple[str, int], Any] = field(default_factory=dict)
    active: Any = None  # the trainer the model is compiled for now
    peaks: TrainingPeak = field(default_factory=TrainingPeak)  # evaluations kept out


def prepare_model(
    model: Any, dataset: Dataset, loss_flag: str | None, optimizer_flag: str | None,
    state_dir: Path,
) -> ModelSetup:
    """Resolve loss, optimizer and baseline learning rate; keep the initial state.

    Precedence: a flag, then what the model was compiled with, then the default
    chosen from the labels and the output layer. The model's starting variables
    (weights, BatchNorm statistics, seed states) go to files in ``state_dir``.
    """
    _backend.check_model(model)  # what the backend cannot probe as fit trains it
    ensure_built(model, dataset)
    output_units = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else None
    compiled = bool(getattr(model, "compiled", False)) and getattr(model, "loss", None) is not None
    if loss_flag:
        loss, source = keras.losses.get(loss_flag), "flag"
        loss_name = loss_flag
    elif compiled:
        loss, source = model.loss, "compiled"
        loss_name = _loss_name(loss)
    elif dataset.task == "regression":
        loss_name = _DEFAULT_LOSS["continuous"]
        loss, source = keras.losses.get(loss_name), "default"
    else:
        key = "binary" if output_units == 1 else dataset.label_format
        loss_name = _DEFAULT_LOSS["onehot" if dataset.label_format == "onehot" else key]
        loss, source = keras.losses.get(loss_name), "default"
    if optimizer_flag:
        opt = keras.optimizers.get(optimizer_flag)
        opt_source = "flag"
    elif getattr(model, "optimizer", None) is not None and compiled:
        opt, opt_source = model.optimizer, "compiled"
        # Mixed precision: compile wrapped it; the trainer wraps its own copy again.
        opt = getattr(opt, "inner_optimizer", opt)
    else:
        opt, opt_source = keras.optimizers.get("adam"), "default"
    config = opt.get_config()
    baseline_lr = _initial_lr(config.get("learning_rate"))
    outputs = getattr(model, "outputs", None) or []
    custom_step = overrides_train_step(model)
    describe = {
        "name": model.name,
        "n_params": int(model.count_params()),
        "weight_bytes": sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                            for v in model.variables),
        "n_outputs": len(outputs),
        "output_units": output_units,
        "output_activation": _output_activation(model),
        "loss": loss_name,
        "loss_source": source,
        "from_logits": bool(getattr(loss, "get_config", lambda: {})().get("from_logits", False))
        if not isinstance(loss, str)
        else False,
        "loss_weights": _compiled_loss_weights(model) if compiled else None,
        "optimizer": type(opt).__name__.lower(),
        "optimizer_source": opt_source,
        "baseline_lr": baseline_lr,
        "input_shape": _input_shape(model),
        "train_step": "model" if custom_step else "keras",
        "dtype_policy": model.dtype_policy.name,
    }
    keep_compiled = custom_step and compiled and source == "compiled"
    return ModelSetup(
        model=model,
        initial=InitialState(model.variables, state_dir),
        state_dir=state_dir,
        loss=None if keep_compiled else loss,
        loss_name=loss_name,
        optimizer_class=type(opt),
        optimizer_config=config,
        baseline_lr=baseline_lr,
        describe=describe,
        jit_compile=getattr(model, "jit_compile", "auto") if compiled else "auto",
    )


class SeedStates:
    """The model's starting state under each seed a probe asks for.

    The worker's model was built under the run's seed. A probe under another seed (a
    finalist's re-probe) starts from the variables a model built under that seed would
    have: the model is built again under it (seeded as ``keras.utils.set_random_seed``
    seeds it, ``_seed_the_build``; then the same build as the worker's first), its values
    are kept (``InitialState``, on disk) to be restored into the worker's model, and the
    copy is dropped. The trained model, its traced step and its trainers stay the same,
    so a seed costs a model build, not a framework import and a trace; the values are
    those a fresh worker under that seed would start from (same seed, same build, same
    order of random draws).
    """

    def __init__(self, setup: ModelSetup, dataset: Dataset, build: Callable[[], Any],
                 seed: int) -> None:
        self._setup = setup
        self._dataset = dataset
        self._build = build
        self._states: dict[int, InitialState] = {seed: setup.initial}

    def initial(self, seed: int) -> InitialState:
        """The starting state under ``seed`` (built on first use)."""
        if seed not in self._states:
            import gc

            _seed_the_build(seed)
            twin = self._build()
            ensure_built(twin, self._dataset)
            self._states[seed] = InitialState(self._setup.model.variables,
                                              self._setup.state_dir, values_of=twin.variables)
            del twin
            # The twin's cycles (layers and their model) are young: a collection of
            # generations 0 and 1 frees its variables in under a millisecond, where a
            # full collection walks TensorFlow's heap (about 0.2 s a seed).
            gc.collect(1)
        return self._states[seed]


def _seed_the_build(seed: int) -> None:
    """Seed what a model build under ``seed`` draws from, as ``keras.utils.set_random_seed``
    does, except TensorFlow's global seed under TensorFlow: Keras's layers draw their
    initial values from Python's ``random`` (through Keras's global ``SeedGenerator``) and
    NumPy, never from it, while setting it makes TensorFlow instantiate every traced
    function again (measured: 0.2 s on the next step of a small CNN, each seed)."""
    if keras.backend.backend() != "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
    except ImportError:  # another Keras layout: the public call, at its cost
        keras.utils.set_random_seed(seed)
        return
    import random

    random.seed(seed)
    np.random.seed(seed)
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


def ensure_built(model: Any, dataset: Dataset) -> None:
    """Build a model that is not built yet by calling it on one training row."""
    if not model.built:
        model(dataset.x_train[:1])


def trainer_for(
    setup: ModelSetup, dataset: Dataset, focal: bool, accumulation_steps: int
) -> tuple[Any, np.ndarray]:
    """The worker's trainer for this loss and accumulation, built on first use (its
    trace), compiled for the shared model, and the labels in the form its loss takes."""
    key = ("focal" if focal else "loss", accumulation_steps)
    if key not in setup.trainers:
        loss, labels = _focal_loss(setup, dataset) if focal else (setup.loss, dataset.y_train)
        config = dict(setup.optimizer_config)
        config.update(clipnorm=None, clipvalue=None, global_clipnorm=None)
        config.pop("name", None)
        if accumulation_steps > 1:
            config["gradient_accumulation_steps"] = accumulation_steps
        trainer = _backend.Trainer(setup.model, loss, setup.optimizer_class.from_config(config),
                               setup.state_dir, jit_compile=setup.jit_compile)
        setup.trainers[key] = (trainer, labels)
        setup.active = trainer
    trainer, labels = setup.trainers[key]
    if setup.active is not trainer:
        trainer.compile()
        setup.active = trainer
    return trainer, labels


def _focal_alpha(counts: Any, binary: bool) -> float | list[float]:
    """Focal cross-entropy's alpha from the class frequencies.

    Binary (``BinaryFocalCrossentropy``, alpha weighs class 1 and 1 - alpha class 0):
    the share of class 0, so the rarer class gets the larger weight. Multi-class
    (``CategoricalFocalCrossentropy``): the balanced weights, as Keras's docs suggest
    ("alpha may be set by inverse class frequency").
    """
    n = np.asarray(counts, dtype=np.float64)
    if binary:
        return float(n[0] / n.sum())
    return (n.sum() / (len(n) * np.maximum(n, 1.0))).tolist()


def _focal_loss(setup: ModelSetup, dataset: Dataset) -> tuple[Any, np.ndarray]:
    """Focal cross-entropy (gamma 2) with alpha from the class frequencies, and the
    labels in the form it takes (one-hot for the categorical one)."""
    counts = np.bincount(dataset.c_train, minlength=dataset.n_classes)
    from_logits = bool(setup.describe["from_logits"])
    if setup.describe["output_units"] == 1:
        alpha = _focal_alpha(counts, binary=True)
        loss = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=alpha, gamma=2.0, from_logits=from_logits)
        return loss, dataset.y_train.astype(np.float32)
    alpha = _focal_alpha(counts, binary=False)
    loss = keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=2.0,
                                                     from_logits=from_logits)
    if dataset.label_format == "onehot":
        return loss, dataset.y_train
    return loss, np.eye(dataset.n_classes, dtype=np.float32)[dataset.c_train]


def _input_shape(model: Any) -> list[int | None] | None:
    """One sample's input shape (None for a free dimension), or None when unknown or
    when the model takes several inputs."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return None
    try:
        return [None if d is None else int(d) for d in inputs[0].shape[1:]]
    except (TypeError, ValueError):
        return None


def _compiled_loss_weights(model: Any) -> Any:
    """``compile(loss_weights=...)`` as the model was compiled (JSON-safe), or None."""
    try:
        value = (model.get_compile_config() or {}).get("loss_weights")
    except Exception:  # an older or custom model without a compile config
        return None
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return value if isinstance(value, (list, float, int)) else None


def _initial_lr(value: Any) -> float:
    if isinstance(value, dict):  # a serialized schedule
        config = value.get("config", {})
        return float(config.get("initial_learning_rate", config.get("learning_rate", 1e-3)))
    return float(value)


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    return str(name or type(loss).__name__)


def _output_activation(model: Any) -> str | None:
    layer = model.layers[-1] if model.layers else None
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)
