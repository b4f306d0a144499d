"""``--data file.py:function`` / ``package.module:function``: the function runs in a child
process; each form it may return loads as data, each mistake is one line (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from stabcheck.config.settings import build_settings
from stabcheck.errors import InputError
from stabcheck.inputs.datafn import is_data_function, load_function_dataset
from stabcheck.report.json import load_schema
from tests.conftest import FIXTURES

ROOT = FIXTURES.parent.parent
FUNCTIONS = FIXTURES / "data_functions.py"


def load(name: str, **sampling):
    sampling.setdefault("max_samples", 300)
    return load_function_dataset(f"{FUNCTIONS}:{name}", search_dirs=(str(ROOT),),
                                 timeout=120, **sampling)


@pytest.mark.parametrize(("spec", "expected"), [
    ("data.py:load", True), ("lib/data.py:make_data", True), ("pkg.data:load", True),
    ("data.npz", False), ("builtin:digits", False), ("data.csv", False),
    ("data.py:", False), ("data.py:not-a-name", False), ("some folder/x:load", False),
])
def test_is_data_function(spec, expected):
    assert is_data_function(spec) is expected


def test_a_config_names_a_function_relative_to_its_folder(tmp_path):
    config = tmp_path / "stabcheck.toml"
    config.write_text('model = "builtin:mlp"\ndata = "data.py:load"\n')
    assert build_settings(config, {}).data == f"{tmp_path / 'data.py'}:load"


@pytest.mark.parametrize(("spec", "message"), [
    ("missing.py:load", "data function missing.py:load: file not found"),
    ("no_such_package.data:load", "module 'no_such_package.data' cannot be imported"),
])
def test_a_missing_file_or_module_is_refused_before_any_process(spec, message):
    with pytest.raises(InputError, match=message):
        load_function_dataset(spec, search_dirs=(), timeout=10)


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "n_samples", "n_total", "n_holdout"), [
    ("pair", 300, 400, 80),  # arrays: the stratified sample caps them
    ("four", 300, 500, 100),  # the function's x_val, y_val are the held-out split
    ("mapping", 300, 400, 80),
    ("tf_dataset", 240, 300, 60),  # a dataset is read for at most max_samples rows
    ("py_dataset", 240, 300, 60),
])
def test_each_form_loads_in_a_child_process(name, n_samples, n_total, n_holdout):
    dataset = load(name)
    summary = dataset.summary()
    assert (summary.n_samples, summary.n_total, summary.n_holdout) == (
        n_samples, n_total, n_holdout)
    assert summary.class_names == ("0", "1") and summary.input_shape == (8,)
    read = " (its first 300 samples: --max-samples)" if name.endswith("dataset") else ""
    assert dataset.source == f"{FUNCTIONS}:{name}{read}"
    assert dataset.x_train.dtype == np.float32
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules


@pytest.mark.e2e
def test_a_module_function_is_found_in_the_search_folders():
    dataset = load_function_dataset("tests.fixtures.data_functions:pair",
                                    search_dirs=(str(ROOT),), timeout=60, max_samples=100)
    assert dataset.summary().n_samples == 100


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "message"), [
    ("text", "data_functions.py:text returned a str; expected one of: (x, y), (x, y, x_val, "
             "y_val), a dict with x, y (x_val, y_val), a tf.data.Dataset, a "
             "keras.utils.PyDataset"),
    ("three", "data_functions.py:three returned a tuple of 3 items; expected (x, y) or "
              "(x, y, x_val, y_val)"),
    ("broken", "data_functions.py:broken raised RuntimeError: the database is down"),
    ("dies", "data_functions.py:dies ended with exit(7) before returning its data"),
    ("absent", "data_functions.py:absent: no function 'absent' there"),
])
def test_each_mistake_is_one_line(name, message):
    with pytest.raises(InputError) as caught:
        load(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def _stabcheck(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stabcheck", "probe", "--model",
                           "builtin:mlp", *args], cwd=folder, capture_output=True, text=True,
                          timeout=240)


@pytest.mark.e2e
def test_the_cli_probes_a_tf_dataset_from_a_function(tmp_path):
    (tmp_path / "load.py").write_text(FUNCTIONS.read_text())
    done = _stabcheck(tmp_path, "--data", "load.py:tf_dataset", "--class-weight", "none",
                      "--lr", "0.001", "--steps", "5", "--seeds", "1", "--workers", "1",
                      "--max-samples", "200", "--fail-on", "numerical,memory,crash,error",
                      "--json", "result.json")
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "result.json").read_text())
    Draft202012Validator(load_schema()).validate(data)
    assert data["dataset"]["source"] == ("load.py:tf_dataset (its first 200 samples: "
                                         "--max-samples)")
    assert data["dataset"]["n_samples"] + data["dataset"]["n_holdout"] == 200
    assert data["probes"][0]["steps_completed"] >= 5


@pytest.mark.e2e
def test_the_cli_reports_a_failing_function_in_one_line(tmp_path):
    (tmp_path / "load.py").write_text(FUNCTIONS.read_text())
    done = _stabcheck(tmp_path, "--data", "load.py:broken")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "stabcheck: error: data function load.py:broken raised RuntimeError: the database "
        "is down"]
