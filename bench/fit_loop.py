"""Baseline: what users do today without isolation, a plain ``model.fit`` loop in one process.

Imports TensorFlow/Keras once (timed), then for every setting of the grid builds a fresh
``stabcheck.worker.templates.build("cnn", ...)``, compiles it with Adam (the setting's learning rate
and clipping) and sparse categorical cross-entropy, and fits ``--steps`` batches of 32 with
the setting's ``class_weight``, on stabcheck's own training sample and batch order.

With ``--only INDEX`` it fits that one setting (the fresh-process-per-setting baseline).
Writes its figures as JSON to ``--out``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402, F401

IMPORT_S = time.perf_counter() - _T0

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import common  # noqa: E402
import numpy as np  # noqa: E402

STEADY_SKIP = 10  # batches left out of the steady-state step time (tracing, warm-up)


class StepTimer(keras.callbacks.Callback):
    """perf_counter at the start and end of every training batch.

    Overriding ``on_train_batch_end`` makes Keras call the batch-end hooks synchronously
    (it dispatches them on a thread otherwise); the cost is one scalar read per step,
    the same read stabcheck does per step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.begin: list[float] = []
        self.end: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.begin.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
        self.end.append(time.perf_counter())
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def fit_one(setting: common.Setting, x, y, input_shape, n_classes, class_weight, steps) -> dict:
    from stabcheck.worker import templates

    t0 = time.perf_counter()
    keras.utils.set_random_seed(common.SEED)  # every probe starts from the same weights
    model = templates.build(common.MODEL, input_shape, n_classes)
    optimizer = keras.optimizers.Adam(learning_rate=setting.lr, **common.clip_kwargs(setting.clip))
    model.compile(optimizer=optimizer, loss=common.LOSS)
    t_built = time.perf_counter()
    timer = StepTimer()
    model.fit(x, y, batch_size=common.BATCH_SIZE, epochs=1, shuffle=False,
              class_weight=class_weight, verbose=0, callbacks=[timer])
    t_done = time.perf_counter()

    durations = [e - b for b, e in zip(timer.begin, timer.end, strict=True)]
    steady = durations[STEADY_SKIP:] or durations
    between = np.diff(timer.begin).tolist()  # begin-to-begin: includes fit's loop overhead
    steady_step = statistics.median(steady)
    return {
        "label": setting.label,
        "class_weight": setting.class_weight,
        "lr": setting.lr,
        "clip": setting.clip,
        "total_s": t_done - t0,
        "build_compile_s": t_built - t0,
        "fit_s": t_done - t_built,
        "steps": len(durations),
        "first_step_s": durations[0] if durations else None,
        "steady_step_s": steady_step,
        "steady_step_between_begins_s": (
            statistics.median(between[STEADY_SKIP:]) if len(between) > STEADY_SKIP else None),
        "steady_steps_s": steady_step * steps,  # the floor's share of this probe
        "sum_step_s": sum(durations),
        "final_loss": timer.losses[-1] if timer.losses else None,
        "finite": bool(timer.losses) and all(math.isfinite(v) for v in timer.losses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", type=int, default=None, help="fit only this setting index")
    parser.add_argument("--steps", type=int, default=common.STEPS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    dataset = common.load()
    weights = common.class_weight_dicts(dataset)
    x, y, order_source = common.ordered_rows(dataset, args.steps)
    input_shape = tuple(int(d) for d in dataset.x_train.shape[1:])
    settings = common.grid()
    if args.only is not None:
        settings = [settings[args.only]]
    prep_s = time.perf_counter() - t0

    t_loop = time.perf_counter()
    probes = [fit_one(s, x, y, input_shape, dataset.n_classes, weights[s.class_weight],
                      args.steps) for s in settings]
    loop_s = time.perf_counter() - t_loop

    result = {
        "import_s": IMPORT_S,
        "prep_s": prep_s,
        "loop_s": loop_s,
        "n_probes": len(probes),
        "steps": args.steps,
        "batch_order": order_source,
        "n_train": int(len(dataset.x_train)),
        "steady_skip": STEADY_SKIP,
        "sum_steady_steps_s": sum(p["steady_steps_s"] for p in probes),
        "median_steady_step_s": statistics.median(p["steady_step_s"] for p in probes),
        "probes": probes,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    sys.stdout.write(f"fit loop: {len(probes)} probes, import {IMPORT_S:.2f}s, "
                     f"loop {loop_s:.2f}s\n")


if __name__ == "__main__":
    main()
