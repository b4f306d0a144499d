"""Baseline: KerasTuner's ``GridSearch`` over the same grid (what many users reach for).

A ``keras_tuner.HyperModel`` whose ``build(hp)`` makes stabcheck's built-in CNN, compiled with
Adam at ``hp.Choice("lr")`` and ``hp.Choice("clip")``, and whose ``fit`` passes the
``class_weight`` of ``hp.Choice("cw")``: 18 trials of ``--steps`` batches of 32 on stabcheck's
training sample and batch order, objective "loss", in a fresh temporary directory.
Writes its figures as JSON to ``--out``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import tensorflow as tf  # noqa: E402, F401

IMPORT_S = time.perf_counter() - _T0

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import common  # noqa: E402


def _tensorboard_stub() -> str:
    """KerasTuner 1.4 imports ``tensorboard.plugins.hparams.api`` in every trial on the
    TensorFlow backend, and uses it only when a ``TensorBoard`` callback is given (none
    here). TensorFlow 2.21 no longer installs TensorBoard; without it, every trial fails.
    Where it is missing, an empty stand-in module is registered: that spares KerasTuner
    the import of the real one, so the stand-in can only make this baseline faster."""
    try:
        import tensorboard.plugins.hparams.api  # noqa: F401
        return "installed"
    except ImportError:
        import types

        for name in ("tensorboard", "tensorboard.plugins", "tensorboard.plugins.hparams",
                     "tensorboard.plugins.hparams.api"):
            sys.modules.setdefault(name, types.ModuleType(name))
        return "not installed: empty stand-in module (no TensorBoard callback is used)"


class ProbeGrid(kt.HyperModel):
    def __init__(self, input_shape, n_classes, class_weights) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.n_classes = n_classes
        self.class_weights = class_weights

    def build(self, hp):
        from stabcheck.worker import templates

        lr = hp.Choice("lr", list(common.LRS))
        clip = hp.Choice("clip", list(common.CLIPS))
        keras.utils.set_random_seed(common.SEED)  # as the fit loop: same initial weights
        model = templates.build(common.MODEL, self.input_shape, self.n_classes)
        optimizer = keras.optimizers.Adam(learning_rate=lr, **common.clip_kwargs(clip))
        model.compile(optimizer=optimizer, loss=common.LOSS)
        return model

    def fit(self, hp, model, *args, **kwargs):
        cw = hp.Choice("cw", list(common.CLASS_WEIGHTS))
        return model.fit(*args, batch_size=common.BATCH_SIZE, epochs=1, shuffle=False,
                         class_weight=self.class_weights[cw], **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=common.STEPS)
    args = parser.parse_args()

    tensorboard = _tensorboard_stub()
    t0 = time.perf_counter()
    dataset = common.load()
    weights = common.class_weight_dicts(dataset)
    x, y, order_source = common.ordered_rows(dataset, args.steps)
    input_shape = tuple(int(d) for d in dataset.x_train.shape[1:])
    n_grid = len(common.grid())
    prep_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="stabcheck-bench-kt-") as tmp:
        t_search = time.perf_counter()
        tuner = kt.GridSearch(
            ProbeGrid(input_shape, dataset.n_classes, weights),
            objective="loss",
            max_trials=n_grid,
            seed=common.SEED,
            directory=tmp,
            project_name="bench",
            overwrite=True,
        )
        tuner.search(x, y, verbose=0)
        search_s = time.perf_counter() - t_search
        trials = tuner.oracle.get_best_trials(num_trials=10 * n_grid)
        combos = sorted({(t.hyperparameters.get("cw"), t.hyperparameters.get("lr"),
                          t.hyperparameters.get("clip")) for t in trials})

    result = {
        "import_s": IMPORT_S,
        "prep_s": prep_s,
        "search_s": search_s,
        "n_trials": len(trials),
        "n_distinct_settings": len(combos),
        "settings": [list(c) for c in combos],
        "steps": args.steps,
        "batch_order": order_source,
        "keras_tuner_version": kt.__version__,
        "tensorboard": tensorboard,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    sys.stdout.write(f"KerasTuner GridSearch: {len(trials)} trials ({len(combos)} distinct), "
                     f"import {IMPORT_S:.2f}s, search {search_s:.2f}s\n")


if __name__ == "__main__":
    main()
