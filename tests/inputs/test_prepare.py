"""The run's inputs loaded and checked once: ``load_inputs`` and the two model steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stabcheck.config.settings import build_settings
from stabcheck.errors import InputError
from stabcheck.inputs.prepare import load_inputs

# What a worker describes of a small softmax classifier (the fields the checks read).
_CLASSIFIER = {"n_outputs": 1, "input_shape": [4], "loss": "sparse_categorical_crossentropy",
               "output_units": 3, "from_logits": False, "output_activation": "softmax",
               "loss_weights": None}


def _npz(path: Path, y: np.ndarray, x: np.ndarray | None = None) -> str:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(len(y), 4)).astype("float32") if x is None else x, y=y)
    return str(path)


def _settings(data: str, **flags):
    return build_settings(None, {"model": "builtin:mlp", "data": data, **flags})


def test_one_call_loads_checks_and_weighs_the_data():
    said: list[str] = []
    inputs = load_inputs(_settings("builtin:digits", class_weight=["none", "balanced"]),
                         said.append)
    assert said == ["loading builtin:digits"]
    assert inputs.dataset.n_classes == 10 and inputs.spec.kind == "builtin"
    assert inputs.weights["none"] is None and len(inputs.weights["balanced"]) == 10
    assert set(inputs.weights_by_name) == {"none", "balanced"}
    assert inputs.weights_by_name["balanced"] is not None
    assert list(inputs.weights_by_name["balanced"]) == list(inputs.dataset.class_names)


def test_float_targets_make_a_regression_run_that_probes_no_class_weights(tmp_path):
    data = _npz(tmp_path / "r.npz", np.linspace(0, 5, 60).astype("float32") + 0.25)
    inputs = load_inputs(_settings(data))
    assert inputs.dataset.task == "regression"
    assert inputs.settings.class_weight == ("none",)
    with pytest.raises(InputError, match="regression"):
        load_inputs(_settings(data, class_weight=["balanced"]))


def test_many_rare_whole_numbers_are_classes_with_a_hint_that_follows_later_errors(tmp_path):
    data = _npz(tmp_path / "q.npz", np.arange(120) % 60)  # 60 values, each seen twice
    inputs = load_inputs(_settings(data))
    assert inputs.hint is not None and inputs.hint in inputs.warnings
    with pytest.raises(InputError, match="pass --task regression"):
        inputs.checked_against({**_CLASSIFIER, "output_units": 3})  # 60 labels, 3 units


def test_a_compiled_regression_loss_reloads_whole_numbers_as_a_regression_target(tmp_path):
    data = _npz(tmp_path / "counts.npz", np.arange(60) % 3)
    inputs = load_inputs(_settings(data))
    assert inputs.dataset.task == "classification"
    model = {**_CLASSIFIER, "loss": "mean_squared_error", "output_units": 1,
             "output_activation": "linear"}
    assert inputs.is_regression_model(model)
    reloaded = inputs.as_regression()
    assert reloaded.dataset.task == "regression" and reloaded.settings.class_weight == ("none",)
    assert reloaded.checked_against(model).dataset is reloaded.dataset
    assert not load_inputs(_settings(data, task="classification")).is_regression_model(model)


def test_checks_against_the_model_add_warnings_and_refuse_what_cannot_train(tmp_path):
    data = _npz(tmp_path / "three.npz", np.arange(60) % 3)
    inputs = load_inputs(_settings(data))
    assert inputs.checked_against(_CLASSIFIER).warnings == inputs.warnings
    sigmoid = inputs.checked_against({**_CLASSIFIER, "output_activation": "sigmoid"})
    assert len(sigmoid.warnings) == len(inputs.warnings) + 1  # a sigmoid under softmax's loss
    with pytest.raises(InputError, match="apply it again"):
        inputs.checked_against({**_CLASSIFIER, "from_logits": True})
    with pytest.raises(InputError, match="shape"):
        inputs.checked_against({**_CLASSIFIER, "input_shape": [8]})
    with pytest.raises(InputError):
        inputs.checked_against({**_CLASSIFIER, "n_outputs": 2})


def test_the_user_file_is_read_not_written(tmp_path):
    data = _npz(tmp_path / "mine.npz", np.arange(40) % 2)
    before = Path(data).read_bytes()
    load_inputs(_settings(data, class_weight=["balanced"]))
    assert Path(data).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.npz"]


@pytest.mark.parametrize(("keyword", "start"), [
    ("custom_class_weight", "custom_class_weight gives no weight for classes 0, 1, 2, 3, 4, "
                            "5, 6, 7, 8: they weigh 1"),
    ("class_weight", "the class_weight dict gives no weight for classes 0, 1"),
])
def test_a_partial_custom_table_weighs_the_rest_1_and_says_so(keyword, start):
    """``{9: 20.0}`` is what fit takes on arrays: the other classes weigh 1.0."""
    inputs = load_inputs(_settings("builtin:digits", class_weight=["custom", "normalized-custom"],
                                   custom_class_weight={"9": 20.0},
                                   custom_class_weight_keyword=keyword))
    assert inputs.weights["custom"] == [1.0] * 9 + [20.0]
    assert inputs.weights_by_name["normalized-custom"] == {**{str(i): 1.0 for i in range(9)},
                                                          "9": 20.0}
    (warning,) = [w for w in inputs.warnings if "gives no weight" in w]
    assert warning.startswith(start)


def test_a_class_too_rare_to_judge_is_a_warning_of_the_run():
    inputs = load_inputs(_settings("builtin:digits", imbalance=0.05))
    (warning,) = [w for w in inputs.warnings if w.startswith("per-class figures")]
    assert "class 8: 2 held out, 10 to train on" in warning
    assert not any(w.startswith("per-class figures")
                   for w in load_inputs(_settings("builtin:digits")).warnings)
