"""Building the user's model in the worker (imports Keras).

``build_model`` puts the spec's folders on ``sys.path``, imports the custom-objects
modules (whose ``@keras.saving.register_keras_serializable`` classes then load with
``safe_mode=True``), then loads or builds the model. The spec was parsed and checked by
the parent (``inputs.models.parse_model_spec``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from stabcheck.errors import InputError
from stabcheck.protocol.model_spec import ModelSpec


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int,
                regression: bool = False) -> Any:
    """Build or load the Keras model of ``spec`` (worker only: imports Keras).

    Args:
        spec: a parsed model spec.
        input_shape: one sample's shape, for built-in templates.
        n_outputs: output units for built-in templates (1: sigmoid, else softmax).
        regression: built-in templates get a linear output (a regression target).
    """
    import keras

    import_custom_objects(spec)
    if spec.kind == "builtin":
        from stabcheck.worker import templates

        return templates.build(spec.target, input_shape, n_outputs, regression)
    if spec.kind in ("keras", "h5"):
        try:
            if spec.kind == "keras":
                return keras.saving.load_model(spec.path, safe_mode=True)
            return keras.saving.load_model(spec.path)
        except (TypeError, ValueError) as exc:
            unknown = _unknown_class(exc)
            if unknown is None:
                raise
            raise InputError(_unknown_class_message(spec, *unknown)) from None
    func = _load_factory(spec)
    model = func()
    if not isinstance(model, keras.Model):
        raise InputError(
            f"model factory {spec.text!r} must return a keras.Model, "
            f"returned {type(model).__name__}"
        )
    return model


def import_custom_objects(spec: ModelSpec) -> None:
    """Put the spec's folders ahead of ``sys.path`` and import its custom-objects modules
    (worker only: they usually import Keras).

    Raises:
        InputError: a module raised while being imported (its last line is quoted).
    """
    for folder in reversed(spec.sys_path):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    for entry in spec.custom_objects:
        try:
            if entry.endswith(".py"):
                _import_file(Path(entry))
            else:
                importlib.import_module(entry)
        except Exception as exc:  # the user's module: any error is theirs to fix
            lines = str(exc).strip().splitlines()
            raise InputError(
                f"--custom-objects {entry}: importing it raised {type(exc).__name__}"
                + (f": {lines[-1]}" if lines else "")
            ) from None


def _import_file(path: Path) -> None:
    """Import a ``.py`` file under its own name (so that ``import layers`` elsewhere finds
    the same module), or under a private name where that name is another module's."""
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
            return
        name = f"_stabcheck_custom_objects_{abs(hash(str(path)))}"
    if str(path.parent) not in sys.path:  # its own sibling imports
        sys.path.append(str(path.parent))
    if load_file_module(path, name) is None:
        raise ImportError(f"cannot import {path}")


def load_file_module(path: str | Path, name: str) -> ModuleType | None:
    """Run the user's ``.py`` file as the module ``name`` (in ``sys.modules``, so that its
    classes are found by their module again); None where Python cannot import that path.
    A file that raises is not left half-imported in ``sys.modules``."""
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


# Keras's deserialization error for a class no registered module provides.
_UNKNOWN_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_SAVED_MODULE = re.compile(r"'module': '([^']+)'")


def _unknown_class(exc: BaseException) -> tuple[str, str | None] | None:
    """(class name, the module it was saved from) when ``exc`` is Keras failing to find a
    custom class; else None."""
    text = str(exc)
    match = _UNKNOWN_CLASS.search(text)
    if match is None:
        return None
    module = _SAVED_MODULE.search(text, match.end())
    saved = module.group(1) if module else None
    if saved is not None and (saved.startswith("keras") or saved == "__main__"):
        saved = None  # Keras's own, or a script's: no module to name
    return match.group(1), saved


def _unknown_class_message(spec: ModelSpec, name: str, saved_from: str | None) -> str:
    origin = f" (saved from module {saved_from!r})" if saved_from else ""
    if spec.custom_objects:
        given = ", ".join(Path(m).name if m.endswith(".py") else m for m in spec.custom_objects)
        return (f"the model uses the class {name!r}{origin}, which the --custom-objects "
                f"modules ({given}) do not register: decorate it with "
                "@keras.saving.register_keras_serializable() in one of them")
    example = saved_from or "MODULE"
    return (f"the model uses the class {name!r}{origin}, which Keras does not know: pass "
            f"--custom-objects {example} (a module or .py file that defines it with "
            "@keras.saving.register_keras_serializable())")


def _load_factory(spec: ModelSpec) -> Any:
    if spec.kind == "file_factory":
        module = load_file_module(spec.path, f"_stabcheck_user_model_{abs(hash(spec.path))}")
        if module is None:
            raise InputError(f"cannot import model file {spec.path}")
    else:
        module = importlib.import_module(spec.path)
    func = getattr(module, spec.target, None)
    if not callable(func):
        raise InputError(f"model factory {spec.text!r}: no function {spec.target!r} there")
    return func
