"""Tests of ``stabcheck.config.settings``: merging a TOML config with flags, and its rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stabcheck.config.settings import Settings, build_settings, resolve_spec_path
from stabcheck.errors import ConfigError
from stabcheck.protocol.vocabulary import (
    Clip,
    parse_class_weight_strategy,
    parse_clip,
    stress_factor,
)

GiB = 2**30
MiB = 2**20

BASE = 'model = "builtin:mlp"\ndata = "builtin:digits"\n'
FLAGS_BASE = {"model": "builtin:mlp", "data": "builtin:digits"}


def write_config(folder: Path, text: str, name: str = "stabcheck.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_from(tmp_path: Path, text: str, **flags: Any) -> Settings:
    return build_settings(write_config(tmp_path, text), flags)


def assert_config_error(excinfo: pytest.ExceptionInfo[ConfigError], *needles: str) -> None:
    assert excinfo.value.exit_code == 2
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


# --------------------------------------------------------------------------- merging


def test_config_file_alone(tmp_path: Path) -> None:
    s = settings_from(
        tmp_path,
        BASE
        + "lr = [1e-3, 1e-2, 1e-1]\n"
        + 'class_weight = ["none", "balanced", "custom"]\n'
        + 'clip = ["none", "global_norm=1.0"]\n'
        + "batch_size = [32]\nsteps = 200\nmemory_budget = \"2GiB\"\n"
        + "[custom_class_weight]\n0 = 1.0\n1 = 1000.0\n",
    )
    assert s.lr == (1e-3, 1e-2, 1e-1)
    assert s.class_weight == ("none", "balanced", "custom")
    assert s.clip == (Clip(None), Clip("global_norm", 1.0))
    assert s.batch_size == (32,)
    assert s.steps == 200
    assert s.memory_budget == 2 * GiB
    assert s.custom_class_weight == {"0": 1.0, "1": 1000.0}


def test_defaults_without_config() -> None:
    s = build_settings(None, FLAGS_BASE)
    assert s.lr is None
    assert s.class_weight == ("none", "balanced")
    assert s.clip == (Clip(None),)
    assert s.batch_size == (32,)
    assert s.steps == 100
    assert s.memory_budget is None
    assert s.fail_on == ("numerical", "memory", "crash", "error")


@pytest.mark.parametrize(
    ("config_line", "flag_key", "flag_value", "attr", "expected"),
    [
        ("lr = [1e-3]", "lr", ["1e-1"], "lr", (0.1,)),
        ("steps = 200", "steps", 50, "steps", 50),
        ('class_weight = ["none"]', "class_weight", ["x100"], "class_weight", ("x100",)),
        ('clip = ["none"]', "clip", ["norm=2"], "clip", (Clip("norm", 2.0),)),
        ("batch_size = [32]", "batch_size", [8, 16], "batch_size", (8, 16)),
        ('memory_budget = "2GiB"', "memory_budget", "512MiB", "memory_budget", 512 * MiB),
        ("seed = 1", "seed", 7, "seed", 7),
        ("holdout = 0.3", "holdout", 0.1, "holdout", 0.1),
        ('loss = "mse"', "loss", "binary_crossentropy", "loss", "binary_crossentropy"),
    ],
)
def test_flag_overrides_config(
    tmp_path: Path, config_line: str, flag_key: str, flag_value: Any, attr: str, expected: Any
) -> None:
    s = settings_from(tmp_path, BASE + config_line + "\n", **{flag_key: flag_value})
    assert getattr(s, attr) == expected


@pytest.mark.parametrize("unset", [None, [], ()])
def test_unset_flag_keeps_config(tmp_path: Path, unset: Any) -> None:
    s = settings_from(tmp_path, BASE + "lr = [1e-3]\nsteps = 7\n", lr=unset, steps=None)
    assert s.lr == (1e-3,)
    assert s.steps == 7


def test_flag_model_overrides_config_and_is_not_resolved(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "cfg", 'model = "model.keras"\ndata = "data.npz"\n')
    s = build_settings(cfg, {"model": "other.keras"})
    assert s.model == "other.keras"  # a flag is relative to the working directory
    assert s.data == str(cfg.resolve().parent / "data.npz")


# --------------------------------------------------------------------------- list options


@pytest.mark.parametrize(
    ("key", "value", "attr", "expected"),
    [
        ("lr", ["1e-3", "1e-2"], "lr", (1e-3, 1e-2)),
        ("lr", ["1e-3,1e-2"], "lr", (1e-3, 1e-2)),
        ("lr", "1e-3,1e-2", "lr", (1e-3, 1e-2)),
        ("lr", "1e-3, 1e-2", "lr", (1e-3, 1e-2)),
        ("lr", ["1e-3,1e-2", "0.1"], "lr", (1e-3, 1e-2, 0.1)),
        ("lr", [0.001, 0.01], "lr", (1e-3, 1e-2)),
        ("lr", 0.5, "lr", (0.5,)),
        ("class_weight", ["none,balanced", "x100"], "class_weight", ("none", "balanced", "x100")),
        ("class_weight", "Balanced,SQRT", "class_weight", ("balanced", "sqrt")),
        ("clip", "none,norm=1.0", "clip", (Clip(None), Clip("norm", 1.0))),
        ("clip", ["value=0.5", "global_norm=2"], "clip",
         (Clip("value", 0.5), Clip("global_norm", 2.0))),
        ("batch_size", ["16,32"], "batch_size", (16, 32)),
        ("batch_size", ["16", "64"], "batch_size", (16, 64)),
        ("batch_size", [16, 64], "batch_size", (16, 64)),
        ("fail_on", "numerical,memory", "fail_on", ("numerical", "memory")),
    ],
)
def test_list_options_from_flags(key: str, value: Any, attr: str, expected: Any) -> None:
    s = build_settings(None, {**FLAGS_BASE, key: value})
    assert getattr(s, attr) == expected


@pytest.mark.parametrize(
    ("line", "attr", "expected"),
    [
        ('lr = "1e-3,1e-2"', "lr", (1e-3, 1e-2)),
        ('lr = ["1e-3", "1e-2"]', "lr", (1e-3, 1e-2)),
        ("lr = [1e-3, 1e-2]", "lr", (1e-3, 1e-2)),
        ("lr = 1e-3", "lr", (1e-3,)),
        ('clip = "none,value=0.5"', "clip", (Clip(None), Clip("value", 0.5))),
        ("batch_size = 64", "batch_size", (64,)),
    ],
)
def test_list_options_from_config(tmp_path: Path, line: str, attr: str, expected: Any) -> None:
    s = settings_from(tmp_path, BASE + line + "\n")
    assert getattr(s, attr) == expected


@pytest.mark.parametrize("value", ["", ",", " , ", [","]])
def test_empty_list_is_an_error(value: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, "lr": value})
    assert_config_error(excinfo, "lr")


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("key", "spec", "expected"),
    [
        ("model", "model.keras", "{base}/model.keras"),
        ("model", "sub/model.h5", "{base}/sub/model.h5"),
        ("model", "builtin:mlp", "builtin:mlp"),
        ("model", "builtin:cnn", "builtin:cnn"),
        ("model", "mypkg.models:build", "mypkg.models:build"),
        ("model", "factory.py:build", "{base}/factory.py:build"),
        ("model", "lib/factory.py:make_model", "{base}/lib/factory.py:make_model"),
        ("model", "/abs/model.keras", "/abs/model.keras"),
        ("model", "/abs/factory.py:build", "/abs/factory.py:build"),
        ("data", "data.npz", "{base}/data.npz"),
        ("data", "images", "{base}/images"),
        ("data", "builtin:digits", "builtin:digits"),
    ],
)
def test_config_paths_resolved_against_config_folder(
    tmp_path: Path, key: str, spec: str, expected: str
) -> None:
    other = "data" if key == "model" else "model"
    cfg = write_config(tmp_path / "cfg", f'{key} = "{spec}"\n{other} = "builtin:x"\n')
    s = build_settings(cfg, {})
    assert getattr(s, key) == expected.format(base=cfg.resolve().parent)


@pytest.mark.parametrize("key", ["json", "journal"])
def test_output_paths_resolved_against_config_folder(tmp_path: Path, key: str) -> None:
    cfg = write_config(tmp_path / "cfg", BASE + f'{key} = "out/result.json"\n')
    s = build_settings(cfg, {})
    assert getattr(s, key) == cfg.resolve().parent / "out" / "result.json"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("builtin:mlp", "builtin:mlp"),
        ("package.module:function", "package.module:function"),
        ("file.py:function", "/base/file.py:function"),
        ("model.keras", "/base/model.keras"),
    ],
)
def test_resolve_spec_path(spec: str, expected: str) -> None:
    assert resolve_spec_path(spec, Path("/base")) == expected


# --------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("text", "expected", "factor"),
    [
        ("none", "none", None),
        ("balanced", "balanced", None),
        ("sqrt", "sqrt", None),
        ("effective", "effective", None),
        ("custom", "custom", None),
        ("x100", "x100", 100.0),
        ("x1e3", "x1e3", 1000.0),
        ("X10", "x10", 10.0),
        ("x2.5", "x2.5", 2.5),
        (" Balanced ", "balanced", None),
    ],
)
def test_class_weight_strategy_valid(text: str, expected: str, factor: float | None) -> None:
    name = parse_class_weight_strategy(text)
    assert name == expected
    assert stress_factor(name) == factor


@pytest.mark.parametrize("text", ["x0", "x0.0", "xabc", "x", "x-5", "x1e-3", "heavy", "", 3])
def test_class_weight_strategy_invalid(text: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_class_weight_strategy(text)
    assert_config_error(excinfo, "class_weight")


@pytest.mark.parametrize(
    ("text", "clip", "label", "kwargs"),
    [
        ("none", Clip(None), "none", {}),
        ("NONE", Clip(None), "none", {}),
        ("norm=1.0", Clip("norm", 1.0), "norm=1", {"clipnorm": 1.0}),
        ("value=0.5", Clip("value", 0.5), "value=0.5", {"clipvalue": 0.5}),
        ("global_norm=1.0", Clip("global_norm", 1.0), "global_norm=1",
         {"global_clipnorm": 1.0}),
        ("global_norm=1e-3", Clip("global_norm", 1e-3), "global_norm=0.001",
         {"global_clipnorm": 1e-3}),
    ],
)
def test_clip_valid(text: str, clip: Clip, label: str, kwargs: dict[str, float]) -> None:
    parsed = parse_clip(text)
    assert parsed == clip
    assert parsed.label == label
    assert parsed.keras_kwargs == kwargs


@pytest.mark.parametrize(
    "text",
    ["norm=0", "norm=-1", "foo=1", "norm=abc", "norm=", "norm", "value=inf", "norm=nan",
     "clipnorm=1", 1.0],
)
def test_clip_invalid(text: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_clip(text)
    assert_config_error(excinfo, "clip")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('memory_budget = "2GiB"', 2 * GiB),
        ('memory_budget = "512MiB"', 512 * MiB),
        ('memory_budget = "1.5G"', int(1.5 * GiB)),
        ('memory_budget = "2GB"', 2 * 10**9),
        ("memory_budget = 1048576", MiB),
    ],
)
def test_memory_budget_sizes(tmp_path: Path, line: str, expected: int) -> None:
    assert settings_from(tmp_path, BASE + line + "\n").memory_budget == expected


def test_gpu_memory_budget_size() -> None:
    s = build_settings(None, {**FLAGS_BASE, "gpu_memory_budget": "4GiB"})
    assert s.gpu_memory_budget == 4 * GiB


@pytest.mark.parametrize("value", ["0", "0GiB"])
def test_memory_budget_zero_string_rejected(value: str) -> None:
    with pytest.raises(ConfigError):
        build_settings(None, {**FLAGS_BASE, "memory_budget": value})


@pytest.mark.parametrize(
    ("line", "expected"),
    [("holdout = 0.5", 0.5), ("imbalance = 1.0", 1.0), ("imbalance = 0.01", 0.01),
     ("steps = 1", 1), ("timeout = 0.5", 0.5), ("effective_beta = 0.99", 0.99)],
)
def test_valid_scalars(tmp_path: Path, line: str, expected: Any) -> None:
    key = line.split(" = ")[0]
    assert getattr(settings_from(tmp_path, BASE + line + "\n"), key) == expected


# --------------------------------------------------------------------------- config errors


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as excinfo:
        build_settings(missing, FLAGS_BASE)
    assert_config_error(excinfo, "not found", str(missing))


def test_config_path_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(tmp_path, FLAGS_BASE)
    assert_config_error(excinfo, str(tmp_path))


@pytest.mark.parametrize("text", ['model = "a\n', "model = \n", "lr = [1e-3,\n", "[[[\n"])
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    cfg = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        build_settings(cfg, FLAGS_BASE)
    assert_config_error(excinfo, "invalid TOML", str(cfg))


@pytest.mark.parametrize("key", ["learning_rate", "batch-size", "class_weights", "foo"])
def test_unknown_key(tmp_path: Path, key: str) -> None:
    line = f'"{key}" = 1\n'
    with pytest.raises(ConfigError) as excinfo:
        settings_from(tmp_path, BASE + line)
    assert_config_error(excinfo, "unknown key", repr(key))


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        # strategies
        ('class_weight = ["heavy"]', ("class_weight", "'heavy'")),
        ('class_weight = ["x0"]', ("class_weight", "'x0'")),
        ('class_weight = ["xabc"]', ("class_weight", "'xabc'")),
        ('class_weight = ["none", "custom"]', ("custom", "custom_class_weight")),
        # custom table
        ('class_weight = ["custom"]\n[custom_class_weight]\n0 = 0.0\n1 = 5.0',
         ("custom_class_weight.0", "positive")),
        ('class_weight = ["custom"]\n[custom_class_weight]\n0 = 1.0\n1 = -5.0',
         ("custom_class_weight.1", "positive")),
        ('[custom_class_weight]\n0 = "abc"', ("custom_class_weight.0", "number")),
        ("[custom_class_weight]\n0 = true", ("custom_class_weight.0", "number")),
        ("[custom_class_weight]\n0 = inf", ("custom_class_weight.0", "finite")),
        ("custom_class_weight = {}", ("custom_class_weight",)),
        ("custom_class_weight = [1, 2]", ("custom_class_weight",)),
        # clipping
        ('clip = ["norm=0"]', ("clip", "'norm=0'")),
        ('clip = ["norm=-1"]', ("clip", "'norm=-1'")),
        ('clip = ["foo=1"]', ("clip", "'foo=1'")),
        ('clip = ["norm=abc"]', ("clip", "'norm=abc'")),
        # learning rate
        ("lr = [-1e-3]", ("lr", "positive")),
        ("lr = [0]", ("lr", "positive")),
        ("lr = [0.0, 1e-3]", ("lr", "positive")),
        ('lr = ["fast"]', ("lr", "'fast'")),
        ("lr = [nan]", ("lr", "finite")),
        ("lr = true", ("lr", "True")),
        # steps and other integers
        ("steps = 2.5", ("steps", "2.5")),
        ('steps = "many"', ("steps", "'many'")),
        ("steps = 0", ("steps", "positive")),
        ("steps = -10", ("steps", "positive")),
        ("steps = true", ("steps", "True")),
        ("batch_size = [32, 0]", ("batch_size", "positive")),
        ("batch_size = [true]", ("batch_size", "True")),
        ("batch_size = [1.5]", ("batch_size", "1.5")),
        ("max_samples = 0", ("max_samples",)),
        ("seed = 1.5", ("seed",)),
        ("seed = false", ("seed", "False")),
        # other numbers
        ("timeout = 0", ("timeout", "positive")),
        ("timeout = true", ("timeout", "True")),
        ("holdout = true", ("holdout", "True")),
        ("effective_beta = 1.0", ("effective_beta",)),
        ("effective_beta = 0", ("effective_beta",)),
        # sizes
        ('memory_budget = "lots"', ("memory_budget", "lots")),
        ('memory_budget = "2XB"', ("memory_budget",)),
        ('memory_budget = "-1GiB"', ("memory_budget",)),
        ("memory_budget = 0", ("memory_budget",)),
        ("memory_budget = -5", ("memory_budget",)),
        ("memory_budget = true", ("memory_budget", "True")),
        ("memory_budget = 1.5", ("memory_budget",)),
        ('gpu_memory_budget = "big"', ("gpu_memory_budget",)),
        # fractions
        ("holdout = 0", ("holdout", "0")),
        ("holdout = 1", ("holdout", "1")),
        ("holdout = 1.5", ("holdout", "1.5")),
        ("holdout = -0.2", ("holdout",)),
        ("imbalance = 0", ("imbalance",)),
        ("imbalance = 1.5", ("imbalance", "1.5")),
        ("imbalance = -0.5", ("imbalance",)),
        # strings
        ("loss = 3", ("loss", "3")),
        ("target = true", ("target",)),
        ("json = 1", ("json",)),
        ("fail_on = [1]", ("fail_on",)),
    ],
)
def test_bad_config_value(tmp_path: Path, body: str, needles: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        settings_from(tmp_path, BASE + body + "\n")
    assert_config_error(excinfo, *needles)


@pytest.mark.parametrize(("flags", "message"), [
    ({"class_weight": ["custom"], "custom_class_weight": {"9": -1.0}},
     "class_weight[9] must be a positive weight, got -1.0"),
    ({"class_weight": ["custom"], "custom_class_weight": {"9": "abc"}},
     "class_weight[9] must be a number, got 'abc'"),
    ({"class_weight": ["custom"], "custom_class_weight": {}},
     "class_weight must be a dict of label -> weight, got {}"),
    ({"class_weight": ["custom"]},
     "class_weight 'custom' needs a dict of label -> weight: pass class_weight={label: "
     "weight, ...}"),
    ({"class_weight": ["normalized-custom"]}, "class_weight 'custom' needs a dict"),
])
def test_the_python_apis_class_weight_dict_is_named_as_the_caller_gave_it(
    flags: dict[str, Any], message: str
) -> None:
    """``stabcheck.probe(class_weight={...})`` passes the dict with its keyword: no message
    names the config file's ``[custom_class_weight]`` table."""
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, **flags,
                              "custom_class_weight_keyword": "class_weight"})
    assert_config_error(excinfo, message)
    assert "custom_class_weight" not in str(excinfo.value)


def test_normalized_custom_needs_the_table_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        settings_from(tmp_path, BASE + 'class_weight = ["normalized-custom"]\n')
    assert_config_error(excinfo, "[custom_class_weight] table")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({}, "model"),
        ({"data": "builtin:digits"}, "model"),
        ({"model": "builtin:mlp"}, "data"),
        ({"model": "", "data": "builtin:digits"}, "model"),
        ({"model": 3, "data": "builtin:digits"}, "model"),
    ],
)
def test_no_model_or_data(flags: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, flags)
    assert_config_error(excinfo, needle)


def test_no_model_in_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        settings_from(tmp_path, 'data = "data.npz"\n')
    assert_config_error(excinfo, "model")


def test_custom_with_table(tmp_path: Path) -> None:
    s = settings_from(
        tmp_path, BASE + '[custom_class_weight]\ncat = 1\n"dog" = 2.5\n', class_weight="custom"
    )
    assert s.class_weight == ("custom",)
    assert s.custom_class_weight == {"cat": 1.0, "dog": 2.5}


def test_settings_to_json_is_plain(tmp_path: Path) -> None:
    s = settings_from(tmp_path, BASE + 'clip = ["none", "global_norm=1.0"]\nlr = [1e-3]\n')
    data = s.to_json()
    assert data["clip"] == ["none", "global_norm=1"]
    assert data["lr"] == [1e-3]
    assert data["class_weight"] == ["none", "balanced"]


@pytest.mark.parametrize("body", [b'model = "caf\xe9.keras"\n', b"\xff\xfemodel = 1\n",
                                  "model = 'x'\n".encode("utf-16")])
def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path, body: bytes) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(body)
    with pytest.raises(ConfigError) as excinfo:
        build_settings(cfg, FLAGS_BASE)
    assert_config_error(excinfo, "is not UTF-8 text", str(cfg), "save it as UTF-8")


# ------------------------------------------------------------------ custom objects


def test_custom_objects_in_the_config_resolve_files_against_its_folder(tmp_path: Path) -> None:
    s = settings_from(tmp_path / "cfg", BASE + 'custom_objects = ["layers.py", '
                      '"mypkg.layers", "/abs/more.py", "sub/losses.py"]\n')
    folder = (tmp_path / "cfg").resolve()
    assert s.custom_objects == (str(folder / "layers.py"), "mypkg.layers", "/abs/more.py",
                                str(folder / "sub" / "losses.py"))
    assert s.config_dir == folder
    assert s.import_dirs[0] == str(folder) and s.import_dirs[-1] == str(Path.cwd())
    assert s.to_json()["custom_objects"] == list(s.custom_objects)


def test_custom_objects_flags_are_repeatable_and_comma_separated() -> None:
    s = build_settings(None, {**FLAGS_BASE, "custom_objects": ["a.layers,b", "lib/c.py"]})
    assert s.custom_objects == ("a.layers", "b", "lib/c.py")  # a flag's files: the cwd's
    assert s.config_dir is None and s.import_dirs == (str(Path.cwd()),)
    assert build_settings(None, FLAGS_BASE).custom_objects == ()


@pytest.mark.parametrize("value", ["my-layers", "lib/layers", "1st.module", "a..b"])
def test_custom_objects_entries_must_be_modules_or_py_files(value: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, "custom_objects": [value]})
    assert_config_error(excinfo, "neither a module name", repr(value))


# --------------------------------------------------------------------------- backend


@pytest.fixture
def no_keras_backend(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    return monkeypatch


def test_backend_defaults_to_tensorflow(no_keras_backend: pytest.MonkeyPatch) -> None:
    settings = build_settings(None, FLAGS_BASE)
    assert settings.backend == "tensorflow"
    assert settings.to_json()["backend"] == "tensorflow"


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch", "JAX"])
def test_backend_from_the_flag(no_keras_backend: pytest.MonkeyPatch, backend: str) -> None:
    no_keras_backend.setattr("stabcheck.config.settings._installed", lambda module: True)
    assert build_settings(None, {**FLAGS_BASE, "backend": backend}).backend == backend.lower()


def test_backend_precedence_flag_then_config_then_environment(
        tmp_path: Path, no_keras_backend: pytest.MonkeyPatch) -> None:
    no_keras_backend.setattr("stabcheck.config.settings._installed", lambda module: True)
    no_keras_backend.setenv("KERAS_BACKEND", "torch")
    assert build_settings(None, FLAGS_BASE).backend == "torch"
    assert settings_from(tmp_path, BASE + 'backend = "jax"\n').backend == "jax"
    assert settings_from(tmp_path, BASE + 'backend = "jax"\n',
                         backend="tensorflow").backend == "tensorflow"


@pytest.mark.parametrize(("where", "needles"), [
    ("flag", ["backend must be one of tensorflow, jax, torch", "'bogus'"]),
    ("config", ["backend must be one of tensorflow, jax, torch", "'bogus'"]),
    ("environment", ["KERAS_BACKEND must be one of tensorflow, jax, torch", "'bogus'"]),
])
def test_an_unknown_backend_is_a_config_error(
        tmp_path: Path, no_keras_backend: pytest.MonkeyPatch, where: str,
        needles: list[str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        if where == "flag":
            build_settings(None, {**FLAGS_BASE, "backend": "bogus"})
        elif where == "config":
            settings_from(tmp_path, BASE + 'backend = "bogus"\n')
        else:
            no_keras_backend.setenv("KERAS_BACKEND", "bogus")
            build_settings(None, FLAGS_BASE)
    assert_config_error(excinfo, *needles)


def test_a_backend_that_is_not_installed_is_a_config_error(
        no_keras_backend: pytest.MonkeyPatch) -> None:
    no_keras_backend.setattr("stabcheck.config.settings._installed",
                             lambda module: module != "jax")
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, "backend": "jax"})
    assert_config_error(excinfo, "backend is 'jax'", "jax is not installed",
                        "pip install jax")


def test_check_numerics_needs_the_tensorflow_backend(
        no_keras_backend: pytest.MonkeyPatch) -> None:
    no_keras_backend.setattr("stabcheck.config.settings._installed", lambda module: True)
    flags = {**FLAGS_BASE, "check_numerics": True}
    assert build_settings(None, {**flags, "backend": "tensorflow"}).check_numerics
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**flags, "backend": "jax"})
    assert_config_error(excinfo, "check_numerics", "needs backend 'tensorflow'", "'jax'")


def test_the_backend_is_found_without_importing_it(no_keras_backend: pytest.MonkeyPatch) -> None:
    import sys

    from stabcheck.config.settings import _installed

    if not _installed("jax"):
        pytest.skip("jax is not installed")
    before = set(sys.modules)
    assert build_settings(None, {**FLAGS_BASE, "backend": "jax"}).backend == "jax"
    frameworks = {"jax", "jaxlib", "torch", "tensorflow", "keras"}
    assert not {m for m in set(sys.modules) - before if m.partition(".")[0] in frameworks}


def test_the_executor_defaults_to_local_and_is_not_part_of_a_runs_identity() -> None:
    settings = build_settings(None, FLAGS_BASE)
    assert (settings.executor, settings.ray_address) == ("local", None)
    assert settings.to_json()["executor"] == "local"


def test_the_ray_executor_and_its_address_from_flags_or_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stabcheck.config.settings._installed", lambda module: True)
    flagged = build_settings(None, {**FLAGS_BASE, "executor": "Ray",
                                    "ray_address": "ray://head:10001"})
    assert (flagged.executor, flagged.ray_address) == ("ray", "ray://head:10001")
    configured = settings_from(tmp_path, BASE + 'executor = "ray"\nray_address = "auto"\n')
    assert (configured.executor, configured.ray_address) == ("ray", "auto")


@pytest.mark.parametrize(("flags", "needles"), [
    ({"executor": "slurm"}, ["executor must be one of local, ray", "'slurm'"]),
    ({"ray_address": "auto"}, ["ray_address 'auto' is for executor 'ray'", "--executor ray"]),
])
def test_a_bad_executor_setting_is_a_config_error(flags: dict, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, **flags})
    assert_config_error(excinfo, *needles)


def test_the_ray_executor_without_ray_installed_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray is an optional extra: without it (the path finder does not find it), one line."""
    monkeypatch.setattr("stabcheck.config.settings._installed", lambda module: module != "ray")
    with pytest.raises(ConfigError) as excinfo:
        build_settings(None, {**FLAGS_BASE, "executor": "ray"})
    assert_config_error(excinfo, "executor 'ray' needs Ray", "pip install 'stabcheck[ray]'")
