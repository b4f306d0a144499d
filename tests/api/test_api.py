"""``stabcheck.probe`` from a script: arrays, a ``tf.data.Dataset``, a ``PyDataset``, and a
model with a custom layer, loss and Lambda function defined in the script itself.

Each run is a fresh interpreter (the test process never imports TensorFlow): one probes
arrays with a model spec and checks that neither ``import stabcheck`` nor the probe
imports a framework; one builds a Keras model with a custom layer and a custom loss in the
script and probes it on a ``tf.data.Dataset`` (with a held-out dataset) and on a
``PyDataset``. Every JSON result is validated against the schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

import stabcheck
from stabcheck.errors import InputError, StabcheckError
from stabcheck.report.json import load_schema

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")

ARRAYS = f'''
import hashlib, json, sys
import numpy as np
with np.load({str(resources.files("stabcheck.inputs") / "datasets" / "breast_cancer.npz")!r}) as d:
    x, y = d["x"], d["y"]
digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
frameworks = {FRAMEWORKS!r}
before = [m for m in frameworks if m in sys.modules]
import stabcheck
imported = [m for m in frameworks if m in sys.modules]
result = stabcheck.probe("builtin:mlp", x, y, optimizer="sgd", class_weight="x100", lr=1.0,
                         clip=["none", "global_norm=1.0"], steps=40, seeds=1, workers=1)
rec = result.recommended
result.write_json("result.json")
stabcheck.memory("builtin:mlp", x, y, batch_size=[16, 64], lr=1e-3, progress=False).write_json(
    "memory.json")
try:  # a model the worker cannot build: the call raises the cause, in one line
    stabcheck.probe({str(Path(__file__).parent.parent / "fixtures" / "user_models.py")!r}
                    + ":raises", x, y, class_weight="none", lr=1e-3, steps=5, seeds=1,
                    workers=1, progress=False)
except stabcheck.errors.InputError as exc:
    broken = str(exc)
json.dump({{
    "broken": broken,
    "before": before, "imported": imported,
    "after": [m for m in frameworks if m in sys.modules],
    "unchanged": hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest() == digest,
    "failures": [r.probe.id for r in result.failures],
    "compile": rec.compile,
    "fit": {{**rec.fit, "class_weight": sorted(rec.fit["class_weight"].items())}},
    "repr": repr(result), "text": str(result), "html": result._repr_html_()[:40],
    "source": result.dataset.source,
    "is_run_report": isinstance(result, stabcheck.results.RunReport),
}}, open("facts.json", "w"))
'''

KERAS = '''
import json
import numpy as np
import keras
import tensorflow as tf
from keras import layers
import stabcheck

OFFSET = 0.5

class Shift(layers.Layer):
    """A custom layer of this script: the workers rebuild it from its source."""

    def __init__(self, offset=OFFSET, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}

def weighted_bce(y_true, y_pred):
    return keras.losses.binary_crossentropy(y_true, y_pred) * 1.0

def halve(t):
    return t * 0.5

rng = np.random.default_rng(0)
def arrays(n):
    y = (rng.random(n) < 0.25).astype("int64")
    return (rng.normal(size=(n, 8)) + y[:, None] * 1.5).astype("float32"), y

x, y = arrays(600)
xv, yv = arrays(200)
model = keras.Sequential([keras.Input((8,)), Shift(), layers.Lambda(halve),
                          layers.Dense(16, activation="relu"),
                          layers.Dense(1, activation="sigmoid")], name="shifted")
model.compile(optimizer="adam", loss=weighted_bce)
weights = [w.copy() for w in model.get_weights()]

train = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
held = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(64)
first = stabcheck.probe(model, train, validation_data=held, class_weight=["none", "balanced"],
                        lr=1e-3, steps=5, seeds=1, workers=1, max_samples=500,
                        progress=False)
first.write_json("tf_data.json")

class Batches(keras.utils.PyDataset):
    def __len__(self):
        return 10

    def __getitem__(self, index):
        return x[index * 60:(index + 1) * 60], y[index * 60:(index + 1) * 60]

second = stabcheck.probe(model, Batches(), class_weight="none", lr=1e-3, steps=5, seeds=1,
                         workers=1, progress=False)
second.write_json("py_dataset.json")
lambda_model = keras.Sequential([keras.Input((8,)), layers.Lambda(lambda t: t * 2, name="doubled"),
                                 layers.Dense(1, activation="sigmoid")])
try:
    stabcheck.probe(lambda_model, x, y)
except stabcheck.errors.InputError as exc:
    refused = str(exc)
json.dump({
    "refused": refused,
    "weights_unchanged": all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())),
    "loss_unchanged": model.loss is weighted_bce,
    "sources": [first.dataset.source, second.dataset.source],
    "models": [first.config["model"], second.config["model"]],
}, open("facts.json", "w"))
'''


def _run_script(folder: Path, code: str, timeout: int) -> tuple[dict, dict[str, dict]]:
    """Run ``code`` as a script in ``folder``: (its facts, its JSON results by file)."""
    (folder / "script.py").write_text(code)
    done = subprocess.run([sys.executable, "script.py"], cwd=folder, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    facts = json.loads((folder / "facts.json").read_text())
    validator = Draft202012Validator(load_schema())
    results = {}
    for path in folder.glob("*.json"):
        if path.name != "facts.json":
            results[path.name] = json.loads(path.read_text())
            validator.validate(results[path.name])
    return facts, results


@pytest.fixture(scope="module")
def arrays_run(tmp_path_factory):
    return _run_script(tmp_path_factory.mktemp("arrays"), ARRAYS, 180)


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    return _run_script(tmp_path_factory.mktemp("keras"), KERAS, 240)


@pytest.mark.e2e
def test_probe_on_arrays_imports_no_framework(arrays_run):
    facts, results = arrays_run
    assert facts["before"] == facts["imported"] == facts["after"] == []  # probe and memory
    assert facts["unchanged"]  # the user's arrays are only read
    assert facts["is_run_report"] and facts["source"] == "arrays x (569, 30) float32, y (569,)"
    probes = {p["id"]: p for p in results["result.json"]["probes"]}
    assert probes["cw=x100,lr=1,clip=none,bs=32"]["category"] == "numerical"
    assert probes["cw=x100,lr=1,clip=global_norm=1,bs=32"]["outcome"] == "stable"


@pytest.mark.e2e
def test_memory_measures_each_batch_size(arrays_run):
    _, results = arrays_run
    memory = results["memory.json"]["memory"]
    points = {p["batch_size"]: p for p in memory["points"]}
    assert {16, 64} <= set(points) and all(p["peak_bytes"] > 0 for p in points.values())
    ids = [p["id"] for p in results["memory.json"]["probes"]]
    assert [i for i in ids if i.startswith("memory:")] == [
        "memory:cw=none,lr=0.001,clip=none,bs=16", "memory:cw=none,lr=0.001,clip=none,bs=64"]


@pytest.mark.e2e
def test_the_result_answers_in_compile_and_fit_arguments(arrays_run):
    facts, results = arrays_run
    assert facts["failures"] == ["cw=x100,lr=1,clip=none,bs=32"]
    assert facts["compile"] == {"optimizer": {"class_name": "sgd", "config": {
        "learning_rate": 1.0, "global_clipnorm": 1.0}}}
    weights = results["result.json"]["class_weight_strategies"]["x100"]
    assert facts["fit"] == {"batch_size": 32,
                            "class_weight": [[0, weights["0"]], [1, weights["1"]]]}
    assert facts["repr"] == ("<stabcheck Result: 2 probes, 1 failed (1 numerical); "
                             "recommended cw=x100,lr=1,clip=global_norm=1,bs=32>")
    assert "probe report" in facts["text"] and "Verdicts" in facts["text"]
    assert facts["html"].startswith("<iframe srcdoc=")


@pytest.mark.e2e
def test_a_model_the_worker_cannot_build_raises_its_cause_in_one_line(arrays_run):
    facts, _ = arrays_run  # and the script's stderr held no traceback (_run_script)
    assert facts["broken"].startswith("cannot build the model '")
    assert facts["broken"].endswith("user_models.py:raises': RuntimeError: this factory is "
                                    "broken on purpose")
    assert "\n" not in facts["broken"]


@pytest.mark.slow  # a custom layer: the notebook test; tf.data: tests/inputs/test_datafn.py
@pytest.mark.e2e
def test_probe_of_a_model_with_a_custom_layer_on_tf_data_and_a_py_dataset(keras_run):
    facts, results = keras_run
    tf_data, py_data = results["tf_data.json"], results["py_dataset.json"]
    for data in (tf_data, py_data):
        # It trained (5 steps judge no learning: a learning verdict is no matter here).
        assert {p["category"] for p in data["probes"]} <= {"ok", "learning"}, data["probes"]
        assert all(p["steps_completed"] >= 5 for p in data["probes"])
        assert data["probes"][0]["settings"]["loss"] == "weighted_bce"
    # At most max_samples=500 rows of the dataset; the held-out dataset is the held-out.
    assert tf_data["dataset"]["n_samples"] == 500 and tf_data["dataset"]["n_holdout"] == 200
    assert py_data["dataset"]["n_samples"] + py_data["dataset"]["n_holdout"] == 600
    assert facts["sources"] == ["_BatchDataset (the first 500 samples)",
                                "Batches (600 samples)"]
    assert facts["models"] == ["in-memory model 'shifted'"] * 2
    assert facts["weights_unchanged"] and facts["loss_unchanged"]
    assert facts["refused"].startswith("the model's layer 'doubled' wraps a Python lambda, "
                                       "which Keras loads only with safe_mode=False")


# ----------------------------------------------------------------- bad input, no process

X = np.zeros((10, 3), dtype=np.float32)
Y = np.arange(10) % 2


@pytest.mark.parametrize(("model", "x", "y", "kwargs", "message"), [
    (object(), X, Y, {}, "model must be a Keras 3 model (keras.Model), a .keras/.h5 file"),
    ("builtin:mlp", X, None, {}, "y is missing: x is ndarray"),
    ("builtin:mlp", "data.npz", Y, {}, "x is a data spec"),
    ("builtin:mlp", None, None, {}, "no data: pass x and y"),
    ("builtin:mlp", iter([(X, Y)]), Y, {}, "x is a dataset, which brings its own targets"),
    ("builtin:mlp", X, Y, {"validation_data": (X, Y, X)}, "validation_data must be (x_val, "),
    ("builtin:mlp", X, [object()] * 10, {}, "x, y: y holds object values"),
    ("builtin:mlp", X, Y, {"class_weight": [{0: 1}, {1: 2}]}, "one dict of label -> weight"),
    # the caller's own keyword, never the config file's [custom_class_weight]
    ("builtin:mlp", X, Y, {"class_weight": {1: -2.0}},
     "class_weight[1] must be a positive weight, got -2.0"),
    ("builtin:mlp", X, Y, {"class_weight": {7: 2.0}}, "class_weight key '7' is not a label "
                                                      "of the data (labels: 0, 1)"),
    ("builtin:mlp", X, Y, {"class_weight": "custom"}, "class_weight 'custom' needs a dict of "
                                                      "label -> weight"),
    ("builtin:mlp", X, Y, {"lr": -1}, "lr must be positive"),
    (object(), iter([]), None, {"max_samples": 0}, "max_samples must be a positive integer"),
])
def test_bad_input_raises_one_line_before_any_process(model, x, y, kwargs, message):
    with pytest.raises(StabcheckError) as caught:
        stabcheck.probe(model, x, y, **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert "custom_class_weight" not in str(caught.value)


@pytest.mark.e2e
def test_stabcheck_exports_probe_and_memory_lazily():
    """``import stabcheck`` imports no part; ``stabcheck.memory`` is the API's ``memory``
    function (an ordinary one: no module of that name), whatever was imported before."""
    code = ("import sys, stabcheck; print('stabcheck.api' in sys.modules, "
            "'stabcheck.memory' in sys.modules, callable(stabcheck.probe), "
            "'stabcheck.api' in sys.modules, callable(stabcheck.memory), "
            "stabcheck.system.cgroup.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False", "True", "True", "True",
                                   "stabcheck.system.cgroup"], done.stderr
    assert issubclass(InputError, StabcheckError)
