"""One probe's training loop, inside a worker (imports Keras and its backend).

:func:`run_probe` trains a probe on its shuffled batches (:func:`batch_indices`) up to
each rung, evaluates it there on the held-out split (``stabcheck.worker.evaluation``) and
asks whether to train on; it emits what each step measured and stops early once the loss
has blown up (:func:`watch_divergence`) or at the first non-finite value.

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
from typing import Any

import numpy as np

from stabcheck.protocol.dataset import Dataset
from stabcheck.protocol.messages import FromWorker
from stabcheck.protocol.vocabulary import is_focal, is_normalized, parse_clip
from stabcheck.results import Probe
from stabcheck.worker import backends
from stabcheck.worker.backends.base import InitialState
from stabcheck.worker.evaluation import evaluate
from stabcheck.worker.model_setup import ModelSetup, trainer_for

_backend = backends.current()


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
    trainer, y_train = trainer_for(setup, dataset, is_focal(strategy), settings.accumulation_steps)
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
    batches = batch_indices(len(dataset.x_train), batch_size, probe.first_stop, seed)
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
            batches = batch_indices(len(dataset.x_train), batch_size, target, seed)
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


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
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
