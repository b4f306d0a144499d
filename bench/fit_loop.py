"""Baseline: what users do today without isolation, a plain ``model.fit`` loop in one process.

Imports TensorFlow/Keras once (timed), then for every setting of the grid ``--grid``
(``common.grids()``), in stabcheck's order, builds a fresh model (the grid's builtin
template, ``stabcheck.worker.templates.build``, or its ``bench/apps.py`` factory, after
``keras.utils.set_random_seed``), compiles it with Adam (the setting's learning rate and
clipping) and sparse categorical cross-entropy, and fits ``--steps`` batches of the
setting's batch size with the setting's ``class_weight``, on stabcheck's own training
sample and batch order. A batch size above the training sample is what ``fit`` makes of
it on the user's data: stabcheck caps it at the rows of the user's whole data set (its
``batch_rows``: training sample + held-out split, 11,018 for the demo) and so does this
loop, with ``fit(x_all, y_all, batch_size=B, epochs=steps, shuffle=True)`` on those rows
(one step an epoch, every row, a fresh order each), not on a laid-out copy of 60 such
batches, which would add its own memory to the loop's.

With ``--only INDEX`` it fits that one setting (the fresh-process-per-setting baseline).
Before each setting it appends ``{"start": INDEX, ...}`` to ``--progress`` (JSON lines)
and after it the setting's figures, so that a loop the kernel kills (a memory budget)
leaves what it did. Writes its figures as JSON to ``--out`` when it ends.
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
import os  # noqa: E402
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


def build_model(g: common.Grid, input_shape, n_classes):
    """A fresh, uncompiled-or-compiled model of the grid (the caller compiles it)."""
    if g.model.startswith("builtin:"):
        from stabcheck.worker import templates

        return templates.build(g.model.split(":", 1)[1], input_shape, n_classes)
    import apps

    return getattr(apps, g.model.split(":", 1)[1])()


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _all_rows(dataset):
    """The user's whole data set (training sample + held-out split) when that is what
    stabcheck caps a batch at (``batch_rows``); else the training sample."""
    n = len(dataset.x_train)
    cap = int(getattr(dataset, "batch_rows", n))
    if cap == n + len(dataset.x_val):
        return (np.concatenate([dataset.x_train, dataset.x_val]),
                np.concatenate([dataset.y_train, dataset.y_val]))
    return dataset.x_train, dataset.y_train


def fit_one(g: common.Grid, setting: common.Setting, dataset, class_weight, steps: int,
            rows: dict) -> dict:
    n = len(dataset.x_train)
    t0 = time.perf_counter()
    rss_before = _rss_bytes()
    keras.utils.set_random_seed(common.SEED)  # every probe starts from the same weights
    model = build_model(g, tuple(int(d) for d in dataset.x_train.shape[1:]), dataset.n_classes)
    optimizer = keras.optimizers.Adam(learning_rate=setting.lr, **common.clip_kwargs(setting.clip))
    model.compile(optimizer=optimizer, loss=common.LOSS)
    t_built = time.perf_counter()
    timer = StepTimer()
    if setting.batch_size <= n:
        if setting.batch_size not in rows:
            rows[setting.batch_size] = common.ordered_rows(dataset, steps, setting.batch_size)
        x, y, _ = rows[setting.batch_size]
        model.fit(x, y, batch_size=setting.batch_size, epochs=1, shuffle=False,
                  class_weight=class_weight, verbose=0, callbacks=[timer])
    else:  # fit caps a batch at the data: one step an epoch, on all the user's rows
        if "all" not in rows:
            rows["all"] = _all_rows(dataset)
        x, y = rows["all"]
        model.fit(x, y, batch_size=setting.batch_size, epochs=steps, shuffle=True,
                  class_weight=class_weight, verbose=0, callbacks=[timer])
    t_done = time.perf_counter()
    trained = min(setting.batch_size, len(rows["all"][0]) if "all" in rows else n)

    durations = [e - b for b, e in zip(timer.begin, timer.end, strict=True)]
    steady = durations[STEADY_SKIP:] or durations
    between = np.diff(timer.begin).tolist()  # begin-to-begin: includes fit's loop overhead
    steady_step = statistics.median(steady)
    return {
        "label": setting.label,
        "class_weight": setting.class_weight,
        "lr": setting.lr,
        "clip": setting.clip,
        "batch_size": setting.batch_size,
        "trained_batch_size": trained,
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
        "rss_before_bytes": rss_before,
    }


class Progress:
    """JSON lines appended with one ``write`` each (what a SIGKILL leaves is whole lines)."""

    def __init__(self, path: str | None) -> None:
        self.fd = (os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                   if path else None)

    def add(self, record: dict) -> None:
        if self.fd is not None:
            os.write(self.fd, (json.dumps(record) + "\n").encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--grid", default="small", help="small, demo or apps")
    parser.add_argument("--data", default=None, help="the apps grid's .npz")
    parser.add_argument("--only", type=int, default=None, help="fit only this setting index")
    parser.add_argument("--steps", type=int, default=None, help="default: the grid's")
    parser.add_argument("--progress", default=None, help="JSON lines, one per setting")
    args = parser.parse_args()

    t0 = time.perf_counter()
    g = common.grids()[args.grid]
    steps = args.steps or g.steps
    dataset = common.load(g, args.data)
    weights = common.class_weight_dicts(dataset, g.class_weights)
    settings = list(enumerate(g.settings()))
    if args.only is not None:
        settings = [settings[args.only]]
    rows: dict = {}
    progress = Progress(args.progress)
    prep_s = time.perf_counter() - t0
    progress.add({"begin": g.key, "import_s": IMPORT_S, "prep_s": prep_s,
                  "n_train": int(len(dataset.x_train)),
                  "batch_rows": int(getattr(dataset, "batch_rows", len(dataset.x_train)))})

    t_loop = time.perf_counter()
    probes = []
    for index, setting in settings:
        progress.add({"start": index, "label": setting.label,
                      "t": time.perf_counter() - t_loop, "rss_bytes": _rss_bytes()})
        probe = fit_one(g, setting, dataset, weights[setting.class_weight], steps, rows)
        probe["index"] = index
        probes.append(probe)
        progress.add({"done": index, "probe": probe, "t": time.perf_counter() - t_loop})
    loop_s = time.perf_counter() - t_loop

    result = {
        "grid": g.key,
        "import_s": IMPORT_S,
        "prep_s": prep_s,
        "loop_s": loop_s,
        "n_probes": len(probes),
        "steps": steps,
        "batch_order": next((r[2] for k, r in rows.items() if k != "all"), None),
        "n_train": int(len(dataset.x_train)),
        "batch_rows": int(getattr(dataset, "batch_rows", len(dataset.x_train))),
        "steady_skip": STEADY_SKIP,
        "sum_steady_steps_s": sum(p["steady_steps_s"] for p in probes),
        "median_steady_step_s": statistics.median(p["steady_step_s"] for p in probes),
        "probes": probes,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    sys.stdout.write(f"fit loop ({g.key}): {len(probes)} probes, import {IMPORT_S:.2f}s, "
                     f"loop {loop_s:.2f}s\n")


if __name__ == "__main__":
    main()
