"""Validated probe settings from a TOML config file and command-line flags.

Flags override the config; list options accept repeated values and comma-separated
lists; paths in the config are relative to the config file's folder. Every rule broken
raises ``ConfigError`` (exit code 2) with one line that names the key and echoes the value.
"""

from __future__ import annotations

import importlib.machinery
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from stabcheck.config.options import CONFIG_KEYS, FAIL_ON_DEFAULT
from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.config.values import (
    _as_list,
    _custom_objects,
    _custom_weights,
    _float,
    _int,
    _is_file_entry,
    _positive_float,
    _positive_int,
    _size,
    _string,
    _thresholds,
    budget_text,
    parse_budget,
)
from stabcheck.errors import ConfigError
from stabcheck.protocol.vocabulary import (
    BACKENDS,
    Clip,
    base_strategy,
    parse_class_weight_strategy,
    parse_clip,
)

DEFAULT_LR_FACTORS = (0.1, 1.0, 10.0)
# What the targets are: ``auto`` decides from the data and the loss (see
# ``stabcheck.inputs.preflight.resolve_task``); a regression run probes no class weights.
TASKS = ("auto", "classification", "regression")
# Where the probe workers run: processes on this machine, or actors of a Ray cluster.
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Settings:
    """Everything one ``stabcheck probe`` run needs, validated."""

    model: str
    data: str
    target: str | None = None
    task: str = "auto"  # auto, classification or regression
    loss: str | None = None
    optimizer: str | None = None
    lr: tuple[float, ...] | None = None  # None: the baseline rate x DEFAULT_LR_FACTORS
    class_weight: tuple[str, ...] = ("none", "balanced")
    # Whether class_weight was given (a flag or the config) rather than the default: a
    # regression run replaces the default by ("none",) but refuses a given strategy.
    class_weight_given: bool = False
    custom_class_weight: dict[str, float] | None = None
    # What messages call the custom table: the config's ``[custom_class_weight]``
    # (``custom_class_weight``), or the Python API's ``class_weight`` dict (``class_weight``).
    custom_class_weight_keyword: str = "custom_class_weight"
    effective_beta: float = 0.999
    clip: tuple[Clip, ...] = (Clip(None),)
    batch_size: tuple[int, ...] = (32,)
    steps: int = 100
    memory_budget: int | None = None
    gpu_memory_budget: int | None = None
    timeout: float = 300.0
    json: Path | None = None
    junit: Path | None = None  # JUnit XML of the probes
    markdown: Path | None = None  # a Markdown summary for a PR comment
    html: Path | None = None  # the self-contained HTML report
    seed: int = 0
    # Seeds behind the recommendation: the top finalists are re-probed under seeds
    # seed+1 .. seed+seeds-1 and ranked by their worst seed (1: no re-probes).
    seeds: int = 3
    # --budget: what the whole run may spend, optimizer steps (``budget_steps``) or
    # seconds (``budget_seconds``); neither: the default (stabcheck.judge.stages).
    budget_steps: int | None = None
    budget_seconds: float | None = None
    # The training sample's cap; None: ``sample_rows``'s (enough rows that the planned
    # steps train on each at most once, within a memory bound)
    max_samples: int | None = None
    holdout: float = 0.2
    imbalance: float | None = None
    fail_on: tuple[str, ...] = FAIL_ON_DEFAULT
    check_numerics: bool = False  # re-run non-finite probes to name the operation
    workers: int | None = None  # parallel probe workers; None: one per two cores
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    journal: Path | None = None
    # Modules (``mypkg.layers``) or ``.py`` files imported in the worker before the model
    # is loaded or built: the custom classes they register load with safe_mode=True.
    custom_objects: tuple[str, ...] = ()
    # The Keras backend the workers train with: --backend, the config's ``backend``, the
    # environment's KERAS_BACKEND, else TensorFlow.
    backend: str = BACKENDS[0]
    executor: str = EXECUTORS[0]
    # The Ray cluster of ``executor = "ray"`` ("auto", "ray://host:10001", "host:6379");
    # None: a local cluster starts and stops with the run.
    ray_address: str | None = None
    config_dir: Path | None = None  # the config file's folder (None: no config file)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def import_dirs(self) -> tuple[str, ...]:
        """Folders a model factory or a custom-objects module is imported from, ahead of
        ``sys.path``: the config file's folder (where its paths are relative to), then the
        current folder (where a flag's are)."""
        dirs = [str(self.config_dir)] if self.config_dir is not None else []
        cwd = str(Path.cwd())
        return tuple(dirs + ([cwd] if cwd not in dirs else []))

    def to_json(self) -> dict[str, Any]:
        """The settings as the JSON result records them (paths as strings)."""
        return {
            "model": self.model,
            "data": self.data,
            "target": self.target,
            "task": self.task,
            "loss": self.loss,
            "optimizer": self.optimizer,
            "lr": None if self.lr is None else list(self.lr),
            "class_weight": list(self.class_weight),
            "custom_class_weight": self.custom_class_weight,
            "clip": [c.label for c in self.clip],
            "batch_size": list(self.batch_size),
            "steps": self.steps,
            "memory_budget": self.memory_budget,
            "gpu_memory_budget": self.gpu_memory_budget,
            "timeout": self.timeout,
            "seed": self.seed,
            "seeds": self.seeds,
            "budget": budget_text(self.budget_steps, self.budget_seconds),
            "max_samples": self.max_samples,
            "holdout": self.holdout,
            "imbalance": self.imbalance,
            "fail_on": list(self.fail_on),
            "check_numerics": self.check_numerics,
            "workers": self.workers,
            "custom_objects": list(self.custom_objects),
            "backend": self.backend,
            "executor": self.executor,
            "ray_address": self.ray_address,
            "thresholds": asdict(self.thresholds),
        }


# The training sample's cap, at least: what a sample held before it followed the steps.
MIN_SAMPLE_ROWS = 20000
# ... and at most, without --max-samples: rows, and bytes of input (in the parent and
# each worker, once).
MAX_AUTO_SAMPLE_ROWS = 250_000
MAX_AUTO_SAMPLE_BYTES = 512 << 20


def sample_rows(settings: Settings) -> int:
    """The training sample's cap in rows: ``--max-samples``, else enough rows that a probe
    of the planned steps at the largest batch size trains on each row at most once, as
    the user's ``fit`` over a large data set would in its first epoch (a 20,000-row
    sample cycled ten times over a fraud set at batch 2048 meets its 37 positives ten
    times in 100 steps, where fit meets each of its 394 once), at least
    ``MIN_SAMPLE_ROWS`` and at most ``MAX_AUTO_SAMPLE_ROWS`` (``load_dataset`` also bounds
    it by ``MAX_AUTO_SAMPLE_BYTES`` of input)."""
    if settings.max_samples is not None:
        return settings.max_samples
    wanted = settings.steps * max(settings.batch_size or (1,))
    return max(MIN_SAMPLE_ROWS, min(wanted, MAX_AUTO_SAMPLE_ROWS))


# Keys a config file may hold (``config.options``).
_KNOWN_KEYS = CONFIG_KEYS


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML config; errors name the file and the TOML parser's complaint."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}): TOML files must be UTF-8; save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {path}; known keys: {', '.join(sorted(_KNOWN_KEYS))}"
        )
    return data


def build_settings(
    config_path: Path | None, flags: Mapping[str, Any]
) -> Settings:
    """Merge a config file (if any) with flags (which win) and validate the result.

    Args:
        config_path: the TOML file, or None.
        flags: option name (with ``_``) to value; ``None`` or an empty list means unset.
    """
    raw: dict[str, Any] = {}
    if config_path is not None:
        raw.update(read_config_file(config_path))
        base_dir = config_path.resolve().parent
        raw["config_dir"] = base_dir
        for key in ("model", "data", "json", "journal", "junit", "markdown", "html"):
            if isinstance(raw.get(key), str):
                raw[key] = resolve_spec_path(raw[key], base_dir)
        if "custom_objects" in raw:
            raw["custom_objects"] = [
                resolve_spec_path(v, base_dir) if isinstance(v, str) and _is_file_entry(v)
                else v for v in _as_list("custom_objects", raw["custom_objects"])]
    for key, value in flags.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        raw[key] = value
    return _validate(raw)


def resolve_spec_path(spec: str, base_dir: Path) -> str:
    """Make the file part of a model/data/output spec absolute against ``base_dir``.

    ``builtin:...`` and ``package.module:function`` specs are left as they are;
    ``file.py:function`` has its file part resolved.
    """
    if spec.startswith("builtin:"):
        return spec
    file_part, sep, func = spec.partition(":")
    if sep and file_part.endswith(".py"):
        path = Path(file_part)
        return f"{path if path.is_absolute() else base_dir / path}:{func}"
    if sep and not file_part.endswith(".py") and "/" not in file_part:
        return spec  # package.module:function
    path = Path(spec)
    return str(path if path.is_absolute() else base_dir / path)


def _validate(raw: dict[str, Any]) -> Settings:
    for key in ("model", "data"):
        if not raw.get(key):
            raise ConfigError(f"no {key} given: pass --{key} or set {key} = \"...\" in the config")
        if not isinstance(raw[key], str):
            raise ConfigError(f"{key} must be a string, got {raw[key]!r}")
    kwargs: dict[str, Any] = {"model": raw["model"], "data": raw["data"]}
    for key in ("target", "loss", "optimizer"):
        if raw.get(key) is not None:
            kwargs[key] = _string(key, raw[key])
    if raw.get("task") is not None:
        task = _string("task", raw["task"]).strip().lower()
        if task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {raw['task']!r}")
        kwargs["task"] = task
    if "lr" in raw:
        kwargs["lr"] = tuple(_positive_float("lr", v) for v in _as_list("lr", raw["lr"]))
    if "class_weight" in raw:
        kwargs["class_weight"] = tuple(
            parse_class_weight_strategy(v) for v in _as_list("class_weight", raw["class_weight"])
        )
        kwargs["class_weight_given"] = True
    keyword = raw.get("custom_class_weight_keyword") or "custom_class_weight"
    kwargs["custom_class_weight_keyword"] = keyword
    if "custom_class_weight" in raw:
        kwargs["custom_class_weight"] = _custom_weights(raw["custom_class_weight"], keyword)
    if any(base_strategy(s) == "custom" for s in kwargs.get("class_weight", ())) \
            and "custom_class_weight" not in kwargs:
        raise ConfigError(
            "class_weight 'custom' needs a [custom_class_weight] table of label = weight "
            "in the config" if keyword == "custom_class_weight" else
            f"class_weight 'custom' needs a dict of label -> weight: pass {keyword}="
            "{label: weight, ...}"
        )
    if "effective_beta" in raw:
        beta = _float("effective_beta", raw["effective_beta"])
        if not 0.0 < beta < 1.0:
            raise ConfigError(f"effective_beta must be in (0, 1), got {beta}")
        kwargs["effective_beta"] = beta
    if "clip" in raw:
        kwargs["clip"] = tuple(parse_clip(v) for v in _as_list("clip", raw["clip"]))
    if "batch_size" in raw:
        kwargs["batch_size"] = tuple(
            _positive_int("batch_size", v) for v in _as_list("batch_size", raw["batch_size"])
        )
    for key in ("steps", "max_samples"):
        if key in raw:
            kwargs[key] = _positive_int(key, raw[key])
    for key in ("memory_budget", "gpu_memory_budget"):
        if raw.get(key) is not None:
            kwargs[key] = _size(key, raw[key])
    if "timeout" in raw:
        kwargs["timeout"] = _positive_float("timeout", raw["timeout"])
    if "seed" in raw:
        kwargs["seed"] = _int("seed", raw["seed"])
    if raw.get("seeds") is not None:
        kwargs["seeds"] = _positive_int("seeds", raw["seeds"])
    if raw.get("budget") is not None:
        kwargs.update(parse_budget(raw["budget"]))
    if "holdout" in raw:
        kwargs["holdout"] = check_holdout(_float("holdout", raw["holdout"]))
    if raw.get("imbalance") is not None:
        ratio = _float("imbalance", raw["imbalance"])
        if not 0.0 < ratio <= 1.0:
            raise ConfigError(f"imbalance must be in (0, 1], got {ratio}")
        kwargs["imbalance"] = ratio
    if raw.get("check_numerics") is not None:
        if not isinstance(raw["check_numerics"], bool):
            raise ConfigError(
                f"check_numerics must be true or false, got {raw['check_numerics']!r}")
        kwargs["check_numerics"] = raw["check_numerics"]
    if raw.get("workers") is not None:
        kwargs["workers"] = _positive_int("workers", raw["workers"])
    if raw.get("thresholds") is not None:
        kwargs["thresholds"] = _thresholds(raw["thresholds"])
    if "fail_on" in raw:
        values = _as_list("fail_on", raw["fail_on"])
        kwargs["fail_on"] = tuple(_string("fail_on", v) for v in values)
    for key in ("json", "journal", "junit", "markdown", "html"):
        if raw.get(key) is not None:
            kwargs[key] = Path(_string(key, raw[key]))
    if raw.get("custom_objects") is not None:
        kwargs["custom_objects"] = _custom_objects(raw["custom_objects"])
    if raw.get("config_dir") is not None:
        kwargs["config_dir"] = Path(raw["config_dir"])
    kwargs["backend"] = _backend(raw.get("backend"))
    kwargs.update(_executor(raw.get("executor"), raw.get("ray_address")))
    if kwargs.get("check_numerics") and kwargs["backend"] != "tensorflow":
        raise ConfigError(
            f"check_numerics names the operation with TensorFlow's check-numerics: it needs "
            f"backend 'tensorflow', got {kwargs['backend']!r}")
    return Settings(**kwargs)


def check_holdout(holdout: float) -> float:
    """``holdout``, the fraction of the data held out, if it is in (0, 1); else a
    ``ConfigError``. The one rule for it: ``inputs.data.load_dataset`` applies it too."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must be a fraction in (0, 1), got {holdout}")
    return holdout


# The module each backend is imported as (looked up, never imported, by the parent).
_BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _backend(value: Any) -> str:
    """The Keras backend: the flag or config value, else KERAS_BACKEND, else the default;
    known and installed (found without importing it: the parent never imports one)."""
    source = "backend"
    if value is None:
        value, source = os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND"
        if not value:
            value, source = BACKENDS[0], "backend"
    name = _string(source, value).strip().lower()
    if name not in BACKENDS:
        raise ConfigError(
            f"{source} must be one of {', '.join(BACKENDS)}, got {value!r}")
    module = _BACKEND_MODULES[name]
    if not _installed(module):
        raise ConfigError(
            f"{source} is {name!r} but {module} is not installed here; install it "
            f"(pip install {module}) or choose another of {', '.join(BACKENDS)}")
    return name


def _executor(value: Any, address: Any) -> dict[str, Any]:
    """``executor`` and ``ray_address``: a known executor; Ray installed when chosen; an
    address only with Ray."""
    name = EXECUTORS[0] if value is None else _string("executor", value).strip().lower()
    if name not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {value!r}")
    ray_address = None if address is None else _string("ray_address", address).strip()
    if ray_address is not None and name != "ray":
        raise ConfigError(f"ray_address {ray_address!r} is for executor 'ray', but the "
                          f"executor is {name!r}: add --executor ray")
    if name == "ray" and not _installed("ray"):
        raise ConfigError("executor 'ray' needs Ray, which is not installed here: "
                          "pip install 'stabcheck[ray]'")
    return {"executor": name, "ray_address": ray_address or None}


def _installed(module: str) -> bool:
    """Whether ``module`` is on ``sys.path``: found by the path finder alone, without
    import hooks, so nothing is imported."""
    return importlib.machinery.PathFinder.find_spec(module) is not None


