"""Model specs: parsing without a framework, and each kind of model loaded for real."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stabcheck.errors import InputError
from stabcheck.inputs.models import parse_model_spec
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("builtin:mlp", "builtin", "mlp"),
        ("builtin:cnn", "builtin", "cnn"),
        (f"{FIXTURES / 'compiled_models.py'}:sparse_compiled", "file_factory",
         "sparse_compiled"),
        ("tests.fixtures.compiled_models:sparse_compiled", "module_factory", "sparse_compiled"),
    ],
)
def test_parse_model_spec(text, kind, target):
    spec = parse_model_spec(text)
    assert (spec.kind, spec.target) == (kind, target)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("builtin:resnet", "unknown built-in model"),
        ("missing.keras", "model file not found"),
        ("missing.h5", "model file not found"),
        ("missing.py:make", "model file not found"),
        ("no_such_package_xyz.models:make", "cannot be imported"),
        ("model.pt", "cannot tell what model"),
        (f"{FIXTURES / 'compiled_models.py'}:not-a-name", "is not a function name"),
    ],
)
def test_parse_model_spec_rejects(text, message):
    with pytest.raises(InputError, match=message) as info:
        parse_model_spec(text)
    assert info.value.exit_code == 2


_SAVE = textwrap.dedent("""
    import sys, keras
    from keras import layers
    out = sys.argv[1]
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,))
    x = layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
                  loss="sparse_categorical_crossentropy")
    model.save(out + "/compiled.keras")
    model.save(out + "/compiled.h5")
""")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> Path:
    """A compiled model saved as .keras and .h5 (in a subprocess: tests never import TF)."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, "-c", _SAVE, str(out)], check=True, capture_output=True,
                   env={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
                        "PATH": "/usr/bin:/bin"})
    rng = np.random.default_rng(1)
    np.savez(out / "three.npz", x=rng.normal(size=(120, 4)).astype("float32"),
             y=rng.integers(0, 3, 120))
    return out


@pytest.mark.parametrize(
    "name", ["compiled.keras", pytest.param("compiled.h5", marks=pytest.mark.slow)])
def test_saved_compiled_model_brings_loss_optimizer_and_baseline_lr(saved_models, probe_run,
                                                                    name):
    report, _, _ = probe_run(model=str(saved_models / name), data=str(saved_models / "three.npz"),
                             class_weight=["none"], steps=3)
    settings = [r.probe.settings for r in report.results]
    assert [s.learning_rate for s in settings] == [0.005, 0.05, 0.5]  # baseline x 0.1, 1, 10
    assert {s.optimizer for s in settings} == {"sgd"}
    assert {s.loss for s in settings} == {"sparse_categorical_crossentropy"}
    assert report.config["model_info"]["loss_source"] == "compiled"


def test_flags_override_what_the_model_was_compiled_with(saved_models, probe_run):
    report, _, _ = probe_run(model=str(saved_models / "compiled.keras"),
                             data=str(saved_models / "three.npz"), class_weight=["none"],
                             optimizer="adam", steps=3)
    settings = [r.probe.settings for r in report.results]
    assert {s.optimizer for s in settings} == {"adam"}
    assert [s.learning_rate for s in settings] == [0.0001, 0.001, 0.01]  # Adam's default


@pytest.mark.slow  # module factories: tests/worker/test_models.py
def test_module_factory_is_imported_in_the_worker(saved_models, probe_run):
    report, _, _ = probe_run(model="tests.fixtures.compiled_models:sparse_compiled",
                             data=str(saved_models / "three.npz"), class_weight=["balanced"],
                             lr=["0.05"], steps=3)
    (result,) = report.results
    assert result.run.steps_completed == 3
    assert result.probe.settings.class_weights is not None


def test_factory_returning_a_non_model_is_a_usage_error(saved_models, probe_run):
    with pytest.raises(InputError, match="must return a keras.Model"):
        probe_run(model=f"{FIXTURES / 'user_models.py'}:not_a_model",
                  data=str(saved_models / "three.npz"))


def test_a_per_class_dict_compiled_as_loss_weights_is_a_usage_error(saved_models, probe_run):
    with pytest.raises(InputError, match="loss_weights weights the model's outputs"):
        probe_run(model=f"{FIXTURES / 'compiled_models.py'}:per_class_loss_weights",
                  data=str(saved_models / "three.npz"))


# ------------------------------------------------ custom objects and import folders


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    """A user's folder: a package whose __init__ must not run in the parent, a module."""
    root = tmp_path / "code"
    (root / "mypkg").mkdir(parents=True)
    (root / "mypkg" / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (root / "mypkg" / "layers.py").write_text("")
    (root / "helpers.py").write_text("")
    return root


def test_find_module_looks_in_the_folders_without_importing(user_code: Path):
    from stabcheck.inputs.models import find_module

    assert find_module("mypkg.layers", [str(user_code)])  # __init__ would raise if it ran
    assert find_module("helpers", [str(user_code)])
    assert "mypkg" not in sys.modules
    assert not find_module("mypkg.layers") and not find_module("mypkg.nope", [str(user_code)])
    assert not find_module("helpers.sub", [str(user_code)])  # a module is no package
    assert find_module("json.decoder") and find_module("sys")  # the standard library


def test_parse_model_spec_checks_and_carries_the_custom_objects(user_code: Path, tmp_path):
    spec = parse_model_spec("builtin:mlp", ["mypkg.layers", str(user_code / "helpers.py")],
                            [str(user_code)])
    assert spec.custom_objects == ("mypkg.layers", str((user_code / "helpers.py").resolve()))
    assert spec.sys_path[0] == str(user_code.resolve())
    assert type(spec).from_json(spec.to_json()) == spec
    for entries, message in ((["nowhere.layers"], "no module 'nowhere.layers'"),
                             ([str(tmp_path / "missing.py")], "file not found")):
        with pytest.raises(InputError, match=f"--custom-objects .*{message}"):
            parse_model_spec("builtin:mlp", entries, [str(user_code)])


def test_a_file_factory_has_its_own_folder_first_on_the_path(user_code: Path):
    (user_code / "factory.py").write_text("def build(): ...\n")
    spec = parse_model_spec(f"{user_code / 'factory.py'}:build", (), ["/elsewhere"])
    assert spec.sys_path == (str(user_code.resolve()), "/elsewhere")
    module_spec = parse_model_spec("mypkg.layers:make", (), [str(user_code)])
    assert module_spec.kind == "module_factory" and module_spec.path == "mypkg.layers"
    with pytest.raises(InputError, match="module 'mypkg.layers' cannot be imported"):
        parse_model_spec("mypkg.layers:make")
