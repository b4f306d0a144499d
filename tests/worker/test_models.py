"""Custom Keras classes and the user's own modules, from the outside: a ``.keras`` file
with a registered custom layer, and model factories that import their neighbours, probed
from another working folder (real workers, real Keras)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e  # every test here starts processes

STABCHECK = [sys.executable, "-m", "stabcheck"]
# One probe, no re-probes of it under more seeds (each seed is a worker more).
QUICK = ["--class-weight", "none", "--lr", "0.01", "--steps", "3", "--seeds", "1"]

_LAYERS = textwrap.dedent("""
    import keras

    @keras.saving.register_keras_serializable(package="MyLayers")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=0.5, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}
""")

_SAVE = textwrap.dedent("""
    import sys, keras
    import mylayers
    inputs = keras.Input(shape=(4,))
    x = mylayers.Scale()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    keras.Model(inputs, outputs).save(sys.argv[1])
""")


def _env() -> dict[str, str]:
    """The environment without PYTHONPATH: nothing of the user's is importable by it."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=_env(),
                          timeout=180)


def _data(path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    np.savez(path, x=(rng.normal(size=(80, 4)) + y[:, None]).astype("float32"), y=y)
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """lib/mylayers.py (a registered layer), models/scaled.keras saved with it, data.npz,
    and elsewhere/, the folder the probes run from."""
    root = tmp_path_factory.mktemp("project")
    (root / "lib").mkdir()
    (root / "lib" / "mylayers.py").write_text(_LAYERS)
    (root / "models").mkdir()
    (root / "elsewhere").mkdir()
    subprocess.run([sys.executable, "-c", _SAVE, str(root / "models" / "scaled.keras")],
                   check=True, capture_output=True, cwd=root / "lib",
                   env={**_env(), "PYTHONPATH": str(root / "lib"), "KERAS_BACKEND": "tensorflow",
                        "TF_CPP_MIN_LOG_LEVEL": "3"})
    _data(root / "data.npz")
    return root


def test_a_registered_custom_layer_loads_with_custom_objects(project: Path):
    model = "../models/scaled.keras"
    without = run([*STABCHECK, "probe", "--model", model, "--data", "../data.npz", *QUICK],
                  cwd=project / "elsewhere")
    assert without.returncode == 2, without.stdout + without.stderr
    (line,) = without.stderr.strip().splitlines()
    assert line.startswith("stabcheck: error: cannot build the model")
    assert "'Scale'" in line and "--custom-objects mylayers" in line
    assert "Traceback" not in without.stderr

    done = run([*STABCHECK, "probe", "--model", model, "--data", "../data.npz", *QUICK,
                "--custom-objects", "../lib/mylayers.py", "--json", "r.json"],
               cwd=project / "elsewhere")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 stable" in done.stdout or "1 probe" in done.stdout


@pytest.mark.slow  # custom objects: the registered custom layer above
def test_custom_objects_in_a_config_are_modules_beside_it(project: Path):
    config = project / "lib" / "stabcheck.toml"
    config.write_text('model = "../models/scaled.keras"\ndata = "../data.npz"\n'
                      'custom_objects = ["mylayers"]\nclass_weight = ["none"]\nlr = [0.01]\n'
                      "steps = 3\nseeds = 1\n")
    done = run([*STABCHECK, "probe", str(config)], cwd=project / "elsewhere")
    assert done.returncode == 0, done.stdout + done.stderr
    missing = run([*STABCHECK, "probe", str(config), "--custom-objects", "nosuch.layers"],
                  cwd=project / "elsewhere")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "--custom-objects nosuch.layers: no module 'nosuch.layers'" in missing.stderr


_HELPERS = "HIDDEN = 8\n"
_FACTORY = textwrap.dedent("""
    import keras
    from helpers import HIDDEN  # a sibling module, not installed anywhere

    def build():
        inputs = keras.Input(shape=(4,))
        x = keras.layers.Dense(HIDDEN, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
""")


@pytest.fixture(scope="module")
def factories(tmp_path_factory) -> Path:
    """proj/ with helpers.py, factory.py (imports helpers) and mypkg/nets.py (too)."""
    root = tmp_path_factory.mktemp("factories")
    proj = root / "proj"
    (proj / "mypkg").mkdir(parents=True)
    (proj / "helpers.py").write_text(_HELPERS)
    (proj / "factory.py").write_text(_FACTORY)
    (proj / "mypkg" / "__init__.py").write_text("")
    (proj / "mypkg" / "nets.py").write_text(_FACTORY)
    (root / "elsewhere").mkdir()
    _data(proj / "data.npz")
    return root


def test_factories_import_their_neighbours_from_another_folder(factories: Path):
    proj = factories / "proj"
    by_file = run([*STABCHECK, "probe", "--model", "../proj/factory.py:build", "--data",
                   "../proj/data.npz", *QUICK], cwd=factories / "elsewhere")
    assert by_file.returncode == 0, by_file.stdout + by_file.stderr
    config = proj / "stabcheck.toml"
    config.write_text('model = "mypkg.nets:build"\ndata = "data.npz"\nclass_weight = ["none"]\n'
                      "lr = [0.01]\nsteps = 3\nseeds = 1\n")
    by_module = run([*STABCHECK, "probe", str(config)], cwd=factories / "elsewhere")
    assert by_module.returncode == 0, by_module.stdout + by_module.stderr


@pytest.mark.slow  # module factories: the test above
def test_a_module_factory_in_the_current_folder_needs_no_pythonpath(factories: Path):
    """The console script's sys.path holds its own folder, not the current one."""
    script = Path(sys.executable).with_name("stabcheck")
    if not script.exists():
        pytest.skip("no stabcheck console script next to this interpreter")
    done = run([str(script), "probe", "--model", "mypkg.nets:build", "--data", "data.npz",
                *QUICK], cwd=factories / "proj")
    assert done.returncode == 0, done.stdout + done.stderr
