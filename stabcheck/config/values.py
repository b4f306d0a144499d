"""The parsers of one setting's value: numbers, lists, strings, sizes, budgets, the
custom-objects entries, the ``[thresholds]`` table and the custom class-weight table.

Each raises ``ConfigError`` with one line that names the key and echoes the value; the
config file and the flags share them (``config.settings``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.errors import ConfigError
from stabcheck.units import parse_size

_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _is_file_entry(entry: str) -> bool:
    """A custom-objects entry that names a file (``layers.py``, ``lib/layers.py``) rather
    than a module (``mypkg.layers``)."""
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _custom_objects(value: Any) -> tuple[str, ...]:
    """``custom_objects``: module names (``mypkg.layers``) or ``.py`` files."""
    entries = []
    for item in _as_list("custom_objects", value):
        entry = _string("custom_objects", item).strip()
        if not (_is_file_entry(entry) and entry.endswith(".py")) and not _MODULE_RE.match(entry):
            raise ConfigError(
                f"custom_objects entry {item!r} is neither a module name (e.g. mypkg.layers) "
                "nor a .py file (e.g. layers.py)"
            )
        if entry not in entries:
            entries.append(entry)
    return tuple(entries)


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_budget(value: Any) -> dict[str, Any]:
    """``--budget``: a whole number of optimizer steps (``5000``) or a duration with its
    unit (``90s``, ``10m``, ``1.5h``), as ``budget_steps`` or ``budget_seconds``."""
    if isinstance(value, bool):
        raise ConfigError(f"budget must be steps (e.g. 5000) or a time (e.g. 10m), "
                          f"got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        steps = int(value)
        if steps < 1:
            raise ConfigError(f"budget must be at least 1 step, got {value!r}")
        return {"budget_steps": steps}
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()]
            if seconds > 0:
                return {"budget_seconds": seconds}
    raise ConfigError(f"budget must be optimizer steps (e.g. 5000) or a time with its unit "
                      f"(e.g. 90s, 10m, 1.5h), got {value!r}")


def budget_text(steps: int | None, seconds: float | None) -> str | None:
    """A budget as ``--budget`` takes it (None: the default)."""
    if steps is not None:
        return str(steps)
    if seconds is not None:
        return f"{seconds:g}s"
    return None


def _as_list(key: str, value: Any) -> list[Any]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            out.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            out.append(item)
    if not out:
        raise ConfigError(f"{key} must not be empty")
    return out


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    return value


def _float(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    return number


def _positive_float(key: str, value: Any) -> float:
    number = _float(key, value)
    if number <= 0:
        raise ConfigError(f"{key} must be positive, got {value!r}")
    return number


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return int(number)


def _positive_int(key: str, value: Any) -> int:
    number = _int(key, value)
    if number <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return number


def _size(key: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a size such as 2GiB, got {value!r}")
    try:
        size = parse_size(value)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if size <= 0:
        raise ConfigError(f"{key} must be more than 0 bytes, got {value!r}")
    return size


def _thresholds(table: Any) -> Thresholds:
    """A ``[thresholds]`` table: any field of ``stabcheck.config.thresholds.Thresholds``."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"thresholds must be a table of name = value, got {table!r}")
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for name, value in table.items():
        if name not in known:
            raise ConfigError(
                f"unknown threshold {name!r}; known: {', '.join(sorted(known))}")
        if name == "stall_r2":  # may be 0 or negative: R² is at most 1
            values[name] = _float(f"thresholds.{name}", value)
            if values[name] >= 1:
                raise ConfigError(f"thresholds.stall_r2 must be below 1, got {value!r}")
            continue
        values[name] = (_positive_int(f"thresholds.{name}", value) if known[name] == "int"
                        else _positive_float(f"thresholds.{name}", value))
    for name in ("ema_beta", "trend_window_fraction", "trend_floor", "bn_warmup_residual",
                 "bn_accuracy_gap"):
        if name in values and not 0 < values[name] < 1:
            raise ConfigError(f"thresholds.{name} must be in (0, 1), got {values[name]}")
    return replace(DEFAULT_THRESHOLDS, **values)


def _custom_weights(table: Any, keyword: str = "custom_class_weight") -> dict[str, float]:
    """The custom table of label -> weight; errors name it as the caller gave it
    (``keyword``: the config's ``custom_class_weight``, or the API's ``class_weight``)."""
    toml = keyword == "custom_class_weight"
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(
            f"custom_class_weight must be a table of label = weight, got {table!r}" if toml
            else f"{keyword} must be a dict of label -> weight, got {table!r}"
        )
    weights: dict[str, float] = {}
    for label, weight in table.items():
        entry = f"{keyword}.{label}" if toml else f"{keyword}[{label}]"
        value = _float(entry, weight)
        if value <= 0:
            raise ConfigError(f"{entry} must be a positive weight, got {weight!r}")
        weights[str(label)] = value
    return weights
