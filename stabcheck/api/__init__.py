"""The Python entry points for notebooks and scripts: ``stabcheck.probe`` and
``stabcheck.memory``.

They run the same isolated probes as ``stabcheck probe`` and ``stabcheck memory``: the
calling process never trains and imports no framework because of stabcheck (an in-memory
model is saved with its own Keras, which the caller has already imported; a dataset is
read where it already lives), and a probe's OOM kill, segfault or hang ends that probe's
worker, never the caller (a notebook's kernel survives it). The model and the data reach
the workers as files in a temporary folder (``api.model``, ``api.data``), never pickled.

Expected errors (bad input) raise a ``StabcheckError`` with one line; a run in which every
probe ended in an error raises ``InputError`` with the first probe's cause, as the CLI
exits 2.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stabcheck.api.data import data_spec
from stabcheck.api.model import export_model
from stabcheck.api.progress import progress_bar
from stabcheck.api.result import Recommendation, Result
from stabcheck.config.options import LISTED, OPTIONS
from stabcheck.config.settings import build_settings, sample_rows
from stabcheck.errors import ConfigError, InputError
from stabcheck.judge.gate import unprobed_cause
from stabcheck.run.engine import Progress, run_probe_grid

__all__ = ["Recommendation", "Result", "memory", "probe"]

Many = Any  # one value or a list of them


def probe(
    model: Any, x: Any = None, y: Any = None, *, validation_data: Any = None,
    lr: Many = None, class_weight: Many = None, clip: Many = None, batch_size: Many = None,
    steps: int | None = None, memory_budget: int | str | None = None,
    gpu_memory_budget: int | str | None = None, loss: str | None = None,
    optimizer: str | None = None, task: str | None = None, timeout: float | None = None,
    seed: int | None = None, seeds: int | None = None, budget: int | str | None = None,
    max_samples: int | None = None,
    imbalance: float | None = None, fail_on: Many = None, check_numerics: bool | None = None,
    workers: int | None = None, custom_objects: Sequence[str] | None = None,
    memory_ladder: bool | None = None, journal: str | Path | None = None,
    executor: str | None = None, ray_address: str | None = None,
    progress: bool | Callable[[Progress], None] = True,
) -> Result:
    """Probe ``model`` on ``x``/``y`` over a grid of settings, each in a worker process.

    Args:
        model: a Keras 3 model (compiled or not; custom layers defined in the notebook
            or script included), or a model spec as ``--model`` takes it (a ``.keras``
            file, ``file.py:function``, ``builtin:mlp``).
        x: the inputs (an array), a ``tf.data.Dataset`` or ``PyDataset`` of ``(x, y)``
            batches (read for at most ``max_samples`` rows), or a data spec as ``--data``
            takes it (``data.npz``, ``builtin:digits``, ``data.py:load``).
        y: the targets, with array inputs.
        validation_data: ``(x_val, y_val)`` or a dataset: the held-out data (default: a
            stratified part of ``x``).
        lr: learning rates (default: the baseline rate x 0.1, 1, 10).
        class_weight: strategies (``"none"``, ``"balanced"``, ``"x100"``, ...); a dict of
            label -> weight is the ``custom`` strategy.
        clip: ``"none"``, ``"norm=V"``, ``"value=V"``, ``"global_norm=V"``.
        batch_size: batch sizes.
        steps: a probe's planned optimizer steps (every setting trains a quarter of them
            first; the contenders for the recommendation train to them and beyond).
        budget: what the whole run may spend: optimizer steps (``5000``) or a time
            (``"10m"``); default: twice the steps of a plain fit of every setting.
        memory_budget: host memory a probe may use (bytes, or ``"2GiB"``).
        memory_ladder: measure memory per batch size after the grid; None: when there is
            a ``memory_budget`` or several batch sizes (as the CLI does).
        executor: ``"local"`` (processes here, the default) or ``"ray"``: actors of the
            Ray cluster this process is connected to (``ray.init`` before), else of
            ``ray_address``, else of a local cluster started for the run.
        progress: draw a progress bar (Jupyter or terminal); a callable receives the
            engine's ``Progress`` events instead.
        The others: as the CLI's options of the same names.

    Returns:
        The run's report (``Result``, a ``RunReport``).

    Raises:
        StabcheckError: a bad model, data or setting, in one line.
    """
    flags = _flags(locals())
    return _run(model, x, y, validation_data, flags, custom_objects, progress,
                memory_only=False, ladder=memory_ladder)


def memory(
    model: Any, x: Any = None, y: Any = None, *, batch_size: Many,
    memory_budget: int | str | None = None, validation_data: Any = None,
    gpu_memory_budget: int | str | None = None, lr: Many = None, class_weight: Many = None,
    clip: Many = None, loss: str | None = None, optimizer: str | None = None,
    task: str | None = None, timeout: float | None = None, seed: int | None = None,
    max_samples: int | None = None, custom_objects: Sequence[str] | None = None,
    journal: str | Path | None = None, progress: bool | Callable[[Progress], None] = True,
) -> Result:
    """Measure peak memory per batch size (``stabcheck memory``): each batch size in a
    fresh worker, the forecast of the largest that fits ``memory_budget``, its
    verification by a real run, and the remedies for those that do not fit. Arguments as
    ``probe``'s; the result's ``memory`` holds the ladder."""
    flags = _flags(locals())
    return _run(model, x, y, validation_data, flags, custom_objects, progress,
                memory_only=True, ladder=None)


def _run(model: Any, x: Any, y: Any, validation_data: Any, flags: dict[str, Any],
         custom_objects: Sequence[str] | None,
         progress: bool | Callable[[Progress], None], *, memory_only: bool,
         ladder: bool | None) -> Result:
    flags = {k: _listed(v) if k in LISTED else v for k, v in flags.items()}
    flags = {k: str(v) if isinstance(v, Path) else v for k, v in flags.items()}
    objects = list(_listed(custom_objects) or [])
    # Every setting checked before the model is saved or the data read.
    checked = build_settings(None, {**flags, "model": "-", "data": "-",
                                    "custom_objects": objects or None})
    with tempfile.TemporaryDirectory(prefix="stabcheck-api-") as tmp:
        folder = Path(tmp)
        generated: str | None = None  # the in-memory model's custom-objects module
        if isinstance(model, (str, Path)):
            spec = model_text = str(model)
        else:
            path, module = export_model(model, folder)  # raises for what is not a model
            spec, model_text = str(path), f"in-memory model {getattr(model, 'name', '')!r}"
            if module is not None:
                generated = str(module)
                objects.insert(0, generated)
        data, data_text = data_spec(x, y, validation_data, sample_rows(checked), folder)
        settings = build_settings(None, {**flags, "model": spec, "data": data,
                                         "custom_objects": objects or None})
        with _progress(progress) as callback:
            report = run_probe_grid(settings, callback, memory_only=memory_only,
                                    ladder=ladder)
    cause = None if report.interrupted else unprobed_cause(report.results)
    if cause is not None:
        raise InputError(cause)
    config = {**report.config, "model": model_text, "data": data_text}
    if generated is not None:  # a temporary file: the report names what it held
        config["custom_objects"] = [o if o != generated else "(the model's own, from its source)"
                                    for o in config.get("custom_objects", [])]
    return Result.of(replace(report, config=config,
                             dataset=replace(report.dataset, source=data_text)))


# Keywords that are no flag of their own: the model, and those ``_run`` and
# ``_class_weight_flags`` take apart.
_NOT_FLAGS = ("model", "class_weight", "custom_objects")


def _flags(given: dict[str, Any]) -> dict[str, Any]:
    """A function's option keywords (from its ``locals()``, those of ``config.options``) as
    ``build_settings``' flags."""
    flags = {option.name: given[option.keyword] for option in OPTIONS
             if option.keyword in given and option.keyword not in _NOT_FLAGS}
    flags.update(_class_weight_flags(given["class_weight"]))
    return flags


def _listed(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _class_weight_flags(class_weight: Any) -> dict[str, Any]:
    """``class_weight``'s strategies; a dict among them is ``custom`` with its table.
    Messages about the table name it as the caller gave it (``class_weight``), not as the
    config file's ``[custom_class_weight]``."""
    if class_weight is None:
        return {}
    items = list(class_weight) if isinstance(class_weight, (list, tuple)) else [class_weight]
    tables = [item for item in items if isinstance(item, Mapping)]
    if len(tables) > 1:
        raise ConfigError("class_weight may hold one dict of label -> weight (the custom "
                          f"strategy), got {len(tables)}")
    flags: dict[str, Any] = {"class_weight": ["custom" if isinstance(item, Mapping) else item
                                              for item in items],
                             "custom_class_weight_keyword": "class_weight"}
    if tables:
        flags["custom_class_weight"] = {str(k): v for k, v in tables[0].items()}
    return flags


class _progress:
    """The progress callback for a run, and the bar's life around it."""

    def __init__(self, progress: bool | Callable[[Progress], None]) -> None:
        self._given = progress if callable(progress) else None
        self._enabled = bool(progress) and self._given is None

    def __enter__(self) -> Callable[[Progress], None] | None:
        if self._given is not None:
            return self._given
        self._bar = progress_bar(self._enabled)
        return self._bar.update

    def __exit__(self, *exc: object) -> None:
        if self._given is None:
            self._bar.close()
