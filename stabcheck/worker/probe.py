"""One probe's training, inside a worker (imports Keras and its backend).

The step is Keras's own ``train_step`` of the backend (``stabcheck.worker.backends``,
the one Keras was imported with): forward pass, ``compute_loss``
with the sample weights that ``fit(class_weight=...)`` would derive, gradients, then
``optimizer.apply`` (which applies ``clipnorm``/``clipvalue``/``global_clipnorm`` the way
Keras does). Around it, it measures what ``fit`` does not show: the pre-clip global
gradient norm, and whether the loss, a gradient or a weight became non-finite, naming
the first variable that did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from stabcheck.memory.procfs import TrainingPeak
from stabcheck.protocol.dataset import Dataset
from stabcheck.protocol.messages import FromWorker
from stabcheck.protocol.vocabulary import is_focal, is_normalized, parse_clip
from stabcheck.results import Probe
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


def run_probe(
    setup: ModelSetup,
    dataset: Dataset,
    probe: Probe,
    class_weights: list[float] | None,
    seed: int,
    emit: Callable[[dict[str, Any]], None],
    early_stop: dict[str, float] | None = None,
    extend: Callable[[int, dict[str, Any]], int | None] | None = None,
    initial: InitialState | None = None,
) -> None:
    """Train one probe, emitting ``step``, ``nonfinite`` and ``done`` messages.

    Args:
        seed: the seed of the batch order (and, with ``initial``, of the starting state).
        initial: the starting state (``SeedStates.initial(seed)``); None: the model's.
        early_stop: ``stabcheck.judge.trend.early_stop_rule``: stop once the median of the last
            ``window`` losses is above ``factor`` x the first step's loss, from step
            ``min_steps`` (decided).
        extend: asked at each rung (the probe's first stop, then wherever it was told to
            train on to) with the steps done and the held-out evaluation there: the step
            to keep training to (the same shuffled epochs, continued), or None to finish.
    """
    settings = probe.settings
    strategy = settings.class_weight
    initial = initial or setup.initial
    trainer, y_train = _trainer(setup, dataset, is_focal(strategy), settings.accumulation_steps)
    clip = parse_clip(settings.clip)
    regression = dataset.task == "regression"
    watched = _watched_classes(dataset) if trainer.grad_norm is not None and not regression \
        else []
    # With classes to measure, the probe starts at learning rate 0 (_start_shares sets
    # its own after measuring): one restore of the initial state fewer.
    trainer.activate(initial, 0.0 if watched else settings.learning_rate,
                     clip.kind, clip.value)
    emit({"type": FromWorker.TRAINER_READY.value})  # the optimizer's state is allocated

    # A regression target has no classes: every row's class index is 0, weight 1.
    weights = np.ones(max(1, dataset.n_classes), dtype=np.float32)
    if class_weights is not None:
        weights = np.asarray(class_weights, dtype=np.float32)
    normalized = is_normalized(strategy)
    # A batch above the user's data is capped as fit caps it (the plan says where).
    batch_size = settings.effective_batch_size or settings.batch_size
    batches = _batch_indices(len(dataset.x_train), batch_size, probe.first_stop, seed)
    # The first batch's class weight against the data's: the untrained model's expected
    # loss is the first step's divided by it (the loss-trend rules' start, here and in
    # stabcheck.judge.trend), not the first step's alone.
    first_weight = first_batch_weight(weights, dataset.c_train, batches[0], normalized)
    seen: list[float] = []
    _backend.reset_peak_gpu()
    setup.peaks.start()

    def train(first: int, last: int) -> bool:
        """Steps ``first``..``last``; False when the probe ended (stopped or non-finite)."""
        for step in range(first, last + 1):
            idx = batches[step - 1]
            x = dataset.x_train[idx]
            y = y_train[idx]
            classes = dataset.c_train[idx]
            sw = weights[classes]  # what fit(class_weight=...) derives per sample
            if normalized:  # the weighted loss divided by the batch's total weight
                sw = sw * (len(sw) / sw.sum())
            if step == 1 and watched:
                emit({"type": FromWorker.CLASS_GRADS.value, "step": step,
                      "norms": _start_shares(trainer, initial, probe, x, y, sw, classes,
                                             watched)})
            result = trainer.step(x, y, sw)
            loss_v = result.loss
            emit({"type": FromWorker.STEP.value, "step": step, "loss": loss_v,
                  "grad_norm": result.grad_norm})
            if early_stop and watch_divergence(loss_v, step, early_stop, seen,
                                               first_weight):
                emit({"type": FromWorker.DONE.value, "holdout": None, "stopped_early": True,
                      "peak_gpu_bytes": _backend.peak_gpu_bytes(),
                      "peak_private_bytes": setup.peaks.training(),
                      "step_info": _step_info(trainer, batch_size, regression, first_weight)})
                return False
            bad = _first_non_finite(loss_v, result.grad_state, result.weight_state,
                                    trainer.tvars)
            if bad is not None:
                where, variable, value = bad
                emit({"type": FromWorker.NONFINITE.value, "step": step, "where": where,
                      "variable": variable,
                      "value": value, "peak_private_bytes": setup.peaks.training(),
                      "step_info": _step_info(trainer, batch_size, regression, first_weight)})
                return False
        return True

    done, target, peak, gpu_peak = 0, probe.first_stop, None, None
    holdout: dict[str, Any] | None = None
    while True:
        if target > len(batches):  # an extension: the same epochs, continued (the first
            # batches are the planned ones: the epochs are drawn in order)
            batches = _batch_indices(len(dataset.x_train), batch_size, target, seed)
        if not train(done + 1, target):
            return
        done = target
        # before evaluation, which is not part of training
        peak = setup.peaks.training()
        gpu_peak = _max_or_none(gpu_peak, _backend.peak_gpu_bytes())
        if probe.measure_only:  # memory is measured; learning is not judged
            holdout = None
            break
        with setup.peaks.evaluating():
            holdout = evaluate(setup.model, dataset, setup, batch_size, done)
        more = extend(done, holdout) if extend is not None else None
        if not more or more <= done:
            break
        target = int(more)
    info = _step_info(trainer, batch_size, regression, first_weight)
    info.update(setup.peaks.evidence())  # what held-out evaluation added, apart
    emit({"type": FromWorker.DONE.value, "holdout": holdout, "peak_gpu_bytes": gpu_peak,
          "peak_private_bytes": peak, "step_info": info})


def _max_or_none(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _step_info(trainer: Any, batch_size: int, regression: bool = False,
               first_weight: float = 1.0) -> dict[str, Any]:
    """Which step ran and what the probe could not measure with it (evidence)."""
    info: dict[str, Any] = {
        "train_step": "model" if trainer.custom_step else "keras",
        "traces": trainer.traces,
        "sparse_gradients": trainer.per_mode,
        "effective_batch_size": batch_size,
        "first_batch_weight": first_weight,
    }
    missing = []
    if trainer.grad_norm is None and not regression:
        missing.append("per-class gradient norms (the model's own train_step)")
    if trainer.custom_step:
        missing.append("the loss is the one the model's train_step returns")
    if missing:
        info["not_measured"] = missing
    return info


def evaluate(model: Any, dataset: Dataset, setup: ModelSetup, batch_size: int,
             steps: int = 0) -> dict[str, Any]:
    """Accuracy, per-class recall and predicted class counts on the held-out split (for a
    regression target: MAE, RMSE and R², ``task`` "regression").

    The model predicts as it will be used (``predict_on_batch``, inference mode), in
    batches no larger than the probe's, so evaluating never needs more memory than
    training did. A model with BatchNormalization layers is also evaluated with batch
    statistics (``training=True``, the same batches; its moving statistics are restored
    afterwards), and ``bn_warmup`` says how much of its moving averages is still the
    initial value after ``steps`` updates (``momentum ** steps``): the classifier does not
    judge the inference-mode predictions of a model that has not warmed them up.
    """
    result = _metrics(dataset, setup, lambda x: model.predict_on_batch(x), batch_size)
    norms = _batch_norm_layers(model) if dataset.task != "regression" else []
    if norms and steps:
        momentum = max(float(layer.momentum) for layer in norms)
        saved = [(v, v.numpy()) for v in model.non_trainable_variables]
        try:
            batch_stats = _metrics(
                dataset, setup,
                lambda x: keras.ops.convert_to_numpy(model(x, training=True)), batch_size)
        finally:
            for variable, value in saved:
                variable.assign(value)
        result["bn_warmup"] = {"layers": len(norms), "momentum": momentum, "steps": steps,
                               "residual": momentum ** steps}
        result["batch_statistics"] = {key: batch_stats[key] for key in (
            "n", "accuracy", "true_counts", "pred_counts", "recall", "macro_f1",
            "balanced_accuracy")}
    return result


def _batch_norm_layers(model: Any) -> list[Any]:
    """The model's BatchNormalization layers (nested ones too)."""
    try:
        layers = list(model._flatten_layers(include_self=False, recursive=True))
    except (AttributeError, TypeError):
        layers = list(getattr(model, "layers", []))
    return [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]


def _metrics(dataset: Dataset, setup: ModelSetup, predict: Callable[[Any], Any],
             batch_size: int) -> dict[str, Any]:
    from stabcheck.worker.metrics import classification_metrics, regression_metrics

    if dataset.task == "regression":
        outputs = [np.asarray(predict(dataset.x_val[start:start + batch_size]))
                   for start in range(0, len(dataset.x_val), batch_size)]
        pred = (np.concatenate([o.reshape(o.shape[0], -1) for o in outputs]) if outputs
                else np.zeros((0, dataset.target_width)))
        return {**regression_metrics(dataset.y_val, pred), "task": "regression"}
    preds, scores, outputs = [], [], []
    for start in range(0, len(dataset.x_val), batch_size):
        out = np.asarray(predict(dataset.x_val[start:start + batch_size]))
        out = out.astype(np.float64)
        if out.ndim == 1 or out.shape[-1] == 1:
            threshold = 0.0 if setup.describe["from_logits"] else 0.5
            scores.append(out.reshape(-1))
            preds.append((out.reshape(-1) > threshold).astype(np.int64))
            outputs.append(out.reshape(-1).astype(np.float32))
        else:
            if out.shape[-1] == 2:
                scores.append(out[:, 1])
            preds.append(np.argmax(out, axis=-1).astype(np.int64))
            outputs.append(out.reshape(out.shape[0], -1).astype(np.float32))
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    score = np.concatenate(scores) if scores and dataset.n_classes == 2 else None
    # every class's score, for how well a class never predicted is already ranked
    ranked = np.concatenate(outputs) if outputs else None
    if ranked is not None and ranked.ndim == 2 and ranked.shape[1] != dataset.n_classes:
        ranked = None  # an output that is not one score per class ranks nothing
    return classification_metrics(dataset.c_val, pred, dataset.n_classes, scores=score,
                                  class_scores=ranked)


def first_batch_weight(weights: np.ndarray, classes: np.ndarray, first: np.ndarray,
                       normalized: bool) -> float:
    """The first batch's mean class weight over the training data's (1.0 without weights,
    or where the loss is divided by the batch's total weight). An untrained model's loss
    is about the same for every sample, so its weighted loss scales with the batch's mean
    weight: a first batch without a rare sample under x100 weights has a loss far below
    the untrained model's expected one, and a loss that is back at the expected level
    reads as a rise of several times."""
    if normalized or len(weights) < 2 or not len(first):
        return 1.0
    mean = float(np.mean(weights[classes]))
    batch = float(np.mean(weights[classes[first]]))
    return batch / mean if mean > 0 and batch > 0 and math.isfinite(batch / mean) else 1.0


def watch_divergence(loss: float, step: int, rule: dict[str, float],
                     seen: list[float], first_weight: float = 1.0) -> bool:
    """True once the probe is decided: from step ``min_steps``, the median of the last
    ``window`` losses is above ``factor`` x the start (the first step's loss over
    ``first_weight``, ``first_batch_weight``: ``stabcheck.judge.trend``'s ``blown_up``
    rule, which the classifier applies too). ``seen`` keeps the first loss and the last
    ``window``."""
    if not math.isfinite(loss):
        return False
    window = int(rule["window"])
    seen.append(loss)
    if len(seen) > window + 1:
        del seen[1]
    if step < rule["min_steps"] or len(seen) < window + 1:
        return False
    start = seen[0] / first_weight
    return start > 0 and float(np.median(seen[1:])) > rule["factor"] * start


def _trainer(
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


def _watched_classes(dataset: Dataset, rare: int = 3, common: int = 2) -> list[int]:
    """The classes whose gradient share is measured: the ``rare`` rarest and the
    ``common`` most common of the training sample (each costs a backward pass)."""
    counts = np.bincount(dataset.c_train, minlength=dataset.n_classes)
    present = [int(c) for c in np.argsort(counts, kind="stable") if counts[c] > 0]
    if len(present) <= rare + common:
        return present
    return present[:rare] + present[-common:]


def _class_grad_norms(
    fn: Callable[..., Any], x: np.ndarray, y: np.ndarray, sw: np.ndarray,
    classes: np.ndarray, watched: list[int],
) -> dict[str, float]:
    """Global gradient norm of the batch's loss restricted to each class's samples.

    The restricted losses add up to the batch loss (the reduction divides by the whole
    batch either way), so the norms compare each class's pull on the weights.
    """
    norms = {}
    for c in watched:
        mask = classes == c
        if mask.any():
            norms[str(c)] = float(fn(x, y, (sw * mask).astype(np.float32)))
    return norms


def _start_shares(
    trainer: Any, initial: InitialState, probe: Probe, x: np.ndarray, y: np.ndarray,
    sw: np.ndarray, classes: np.ndarray, watched: list[int],
) -> dict[str, float]:
    """Each watched class's gradient norm on the first batch, at the initial weights.

    Measured with the probe's own traced step at learning rate 0 (it records the
    pre-clip gradient norm), one class's sample weights at a time; then the initial
    state is restored. A separate gradient function here, before the first step, would
    keep its own kernels' memory beside the step's and raise the peak above fit's
    (measured: +190 MiB on MobileNetV2 at batch 16); the step's own function adds none.
    """
    clip = parse_clip(probe.settings.clip)  # the probe starts at learning rate 0 (run_probe)
    norms = {}
    for c in watched:
        mask = classes == c
        if mask.any():
            gnorm = trainer.step(x, y, (sw * mask).astype(np.float32)).grad_norm
            if gnorm is not None:
                norms[str(c)] = gnorm
    trainer.activate(initial, probe.settings.learning_rate, clip.kind, clip.value)
    if len(norms) < sum(bool((classes == c).any()) for c in watched):  # not recorded
        return _class_grad_norms(trainer.grad_norm, x, y, sw, classes, watched)
    return norms


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


def _batch_indices(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Shuffled epochs, concatenated, cut into ``steps`` batches (repeats if batch > n)."""
    rng = np.random.default_rng(seed)
    needed = batch_size * steps
    epochs = [rng.permutation(n) for _ in range(math.ceil(needed / n))]
    flat = np.concatenate(epochs)[:needed]
    return np.split(flat, steps)


_VALUE_NAMES = {1: "nan", 2: "inf", 3: "-inf"}


def _first_non_finite(
    loss: float, grad_state: np.ndarray | None, weight_state: np.ndarray, tvars: list[Any]
) -> tuple[str, str | None, str] | None:
    """(where, variable, value) of the first non-finite value: loss, then gradients, weights
    (``grad_state`` None: the step's gradients were not seen)."""
    if not math.isfinite(loss):
        return "loss", None, "nan" if math.isnan(loss) else ("inf" if loss > 0 else "-inf")
    for kind, state in (("gradient", grad_state), ("weight", weight_state)):
        if state is None:
            continue
        bad = np.flatnonzero(state)
        if bad.size:
            i = int(bad[0])
            return kind, _variable_name(tvars[i]), _VALUE_NAMES[int(state[i])]
    return None


def _variable_name(variable: Any) -> str:
    return str(getattr(variable, "path", None) or variable.name)


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
