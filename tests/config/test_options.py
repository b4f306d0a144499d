"""``config.options``, the one table of options, against the surfaces that spell them out
or read them: ``Settings``' fields and defaults, the config reader, the result's config and
``--resume``'s identity, and ``stabcheck init``'s starter config. Pure."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import tomllib

from stabcheck.config.options import CONFIG_KEYS, LISTED, NOT_IDENTITY, OPTION, OPTIONS
from stabcheck.config.settings import Settings, build_settings
from stabcheck.config.template import starter_config
from stabcheck.protocol.vocabulary import Clip
from stabcheck.run.journal import run_identity

BASE = 'model = "builtin:mlp"\ndata = "builtin:digits"\n'

# Settings' fields that no option sets directly: what build_settings derives.
DERIVED = {"class_weight_given", "custom_class_weight_keyword", "budget_steps",
           "budget_seconds", "config_dir", "extras"}
# Options that no Settings field holds as given: --budget (budget_steps or
# budget_seconds), --resume (the journal to read).
NOT_FIELDS = {"budget", "resume"}

# A value of each config key, not its default, and what the file needs beside it: the
# config reader must take each into the settings. A key added to the table goes here.
EXAMPLES: dict[str, tuple[str, str]] = {
    "model": ("", 'model = "other.keras"'),
    "data": ("", 'data = "other.npz"'),
    "target": ("", 'target = "label"'),
    "task": ("", 'task = "regression"'),
    "loss": ("", 'loss = "mse"'),
    "optimizer": ("", 'optimizer = "sgd"'),
    "lr": ("", "lr = [0.5]"),
    "class_weight": ("", 'class_weight = ["sqrt"]'),
    "custom_class_weight": ("", "[custom_class_weight]\n0 = 2.0"),
    "effective_beta": ("", "effective_beta = 0.9"),
    "clip": ("", 'clip = ["norm=1.0"]'),
    "batch_size": ("", "batch_size = [8]"),
    "steps": ("", "steps = 7"),
    "memory_budget": ("", 'memory_budget = "1GiB"'),
    "gpu_memory_budget": ("", 'gpu_memory_budget = "1GiB"'),
    "timeout": ("", "timeout = 5"),
    "json": ("", 'json = "out.json"'),
    "journal": ("", 'journal = "journal.jsonl"'),
    "seed": ("", "seed = 5"),
    "seeds": ("", "seeds = 1"),
    "budget": ("", 'budget = "10m"'),
    "max_samples": ("", "max_samples = 100"),
    "holdout": ("", "holdout = 0.5"),
    "imbalance": ("", "imbalance = 0.5"),
    "fail_on": ("", 'fail_on = ["any"]'),
    "check_numerics": ("", "check_numerics = true"),
    "workers": ("", "workers = 2"),
    "thresholds": ("", "[thresholds]\nema_beta = 0.5"),
    "custom_objects": ("", 'custom_objects = ["mypkg.layers"]'),
    "backend": ("", 'backend = "jax"'),
    "executor": ("", 'executor = "ray"'),
    "ray_address": ('executor = "ray"\n', 'ray_address = "auto"'),
    "junit": ("", 'junit = "junit.xml"'),
    "markdown": ("", 'markdown = "summary.md"'),
    "html": ("", 'html = "report.html"'),
}

# What the starter sets to something else than the default, on purpose.
STARTER_NOT_DEFAULT = {"model", "data", "clip"}  # clip: a clipped setting to compare


@pytest.fixture
def no_keras_backend(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr("stabcheck.config.settings._installed", lambda module: True)
    return monkeypatch


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None  # required (model, data)


def test_the_table_names_each_option_once() -> None:
    assert len(OPTION) == len(OPTIONS)
    for surface in ("config", "flag", "keyword"):
        spelled = [getattr(o, surface) for o in OPTIONS if getattr(o, surface) is not None]
        assert len(spelled) == len(set(spelled)), surface
    for option in OPTIONS:
        assert option.help.strip() and option.help[-1] in ".)", option.name
        assert bool(option.commands) == (option.flag is not None), option.name
        assert bool(option.functions) == (option.keyword is not None), option.name
        assert option.config or option.flag or option.keyword, option.name
        assert not option.starter or option.config, option.name


def test_every_settings_field_is_an_option_with_the_tables_default() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    options = set(fields) - DERIVED
    assert options == set(OPTION) - NOT_FIELDS
    for name in sorted(options):
        assert _field_default(fields[name]) == OPTION[name].default, name


def test_list_options_are_the_tuple_settings() -> None:
    tuples = {f.name for f in dataclasses.fields(Settings) if "tuple" in str(f.type)}
    assert tuples == LISTED


def test_the_config_reader_knows_the_tables_keys() -> None:
    from stabcheck.config.settings import _KNOWN_KEYS

    assert _KNOWN_KEYS == CONFIG_KEYS == {o.name for o in OPTIONS if o.config}
    assert set(EXAMPLES) == CONFIG_KEYS


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_the_config_reader_reads_every_key(tmp_path: Path, no_keras_backend, key: str) -> None:
    context, line = EXAMPLES[key]
    base = "".join(b + "\n" for b in BASE.splitlines() if not b.startswith(f"{key} ="))
    path = tmp_path / "stabcheck.toml"
    path.write_text(BASE + context)
    without = build_settings(path, {})
    path.write_text(base + context + line + "\n")
    with_it = build_settings(path, {})
    assert with_it != without, f"{key} = ... changed nothing"


def test_the_result_config_and_the_identity_are_the_tables(no_keras_backend) -> None:
    settings = build_settings(None, {"model": "builtin:mlp", "data": "builtin:digits"})
    recorded = set(settings.to_json())
    assert recorded <= set(OPTION), recorded - set(OPTION)
    assert set(run_identity(settings)) == {o.name for o in OPTIONS if o.identity}
    assert set(run_identity(settings)).isdisjoint(NOT_IDENTITY)


def _toml_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_toml_value(v) for v in value]
    return value.label if isinstance(value, Clip) else value


def test_the_starter_documents_the_options_marked_starter() -> None:
    text = starter_config(None, None, Path("stabcheck.toml"))
    for option in OPTIONS:
        if option.config is None:
            continue
        key = re.escape(option.config)
        documented = re.search(rf"^(# )?({key} = |\[{key}\]$)", text, re.MULTILINE)
        assert bool(documented) == option.starter, option.name


def test_what_the_starter_sets_is_the_tables_default() -> None:
    text = starter_config(None, None, Path("stabcheck.toml"))
    settings = tomllib.loads(text)
    assert set(settings) <= CONFIG_KEYS
    for key, value in settings.items():
        if key not in STARTER_NOT_DEFAULT:
            assert value == _toml_value(OPTION[key].default), key
