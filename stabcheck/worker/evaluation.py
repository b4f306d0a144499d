"""A probe's held-out evaluation, inside a worker (imports Keras).

Between two segments of training the worker predicts the held-out split in inference
mode and scores it (``stabcheck.worker.metrics``); a model with BatchNormalization layers
is scored with batch statistics too, and how warmed up its moving averages are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from stabcheck.protocol.dataset import Dataset
from stabcheck.worker.model_setup import ModelSetup


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
