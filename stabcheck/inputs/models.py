"""Model specs: parsed and checked in the stabcheck process, built in a probe worker.

``parse_model_spec`` needs no framework and runs before any worker starts, so a missing
file or module, or an unknown template, is a usage error (exit 2) without a TensorFlow
import; modules are found, never imported, in the parent. ``build_model`` imports Keras
and is only ever called inside a worker: it puts the spec's folders on ``sys.path``,
imports the custom-objects modules (whose ``@keras.saving.register_keras_serializable``
classes then load with ``safe_mode=True``), then loads or builds the model.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError

BUILTIN_TEMPLATES = ("mlp", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from, and what the worker imports before it loads it."""

    kind: str  # "keras", "h5", "file_factory", "module_factory" or "builtin"
    text: str  # the spec as the user gave it
    path: str | None = None  # file path (keras, h5, file_factory)
    target: str | None = None  # module (module_factory), function, or template name
    # Modules (``mypkg.layers``) and absolute ``.py`` paths to import first, in order.
    custom_objects: tuple[str, ...] = ()
    # Folders put ahead of ``sys.path`` in the worker: a file factory's own folder, the
    # config file's folder, the current folder.
    sys_path: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "path": self.path, "target": self.target,
                "custom_objects": list(self.custom_objects), "sys_path": list(self.sys_path)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(data["kind"], data["text"], data.get("path"), data.get("target"),
                   tuple(data.get("custom_objects") or ()), tuple(data.get("sys_path") or ()))


def parse_model_spec(
    text: str, custom_objects: Sequence[str] = (), search_dirs: Sequence[str] = ()
) -> ModelSpec:
    """Parse and check a ``--model`` value without importing any framework.

    Args:
        text: the ``--model`` value; a relative file resolves against the current folder
            (a config's paths arrive resolved against its folder).
        custom_objects: ``--custom-objects`` entries: module names, or ``.py`` files
            (relative to the current folder).
        search_dirs: folders, ahead of ``sys.path``, that ``package.module:function`` and
            custom-objects modules are found in (the config's folder, the current folder).

    Raises:
        InputError: an unknown template, a missing file, or a module that cannot be found.
    """
    dirs = tuple(str(Path(d).resolve()) for d in search_dirs)
    modules = _custom_object_modules(custom_objects, dirs)
    spec = _parse_source(text, dirs)
    folder = (str(Path(spec.path).parent),) if spec.kind == "file_factory" and spec.path else ()
    sys_path = tuple(dict.fromkeys(folder + dirs))
    return ModelSpec(spec.kind, spec.text, spec.path, spec.target, modules, sys_path)


def find_module(name: str, search_dirs: Sequence[str] = ()) -> bool:
    """Whether module ``name`` (``pkg.sub.mod``) can be imported with ``search_dirs`` ahead
    of ``sys.path``; found without importing it or its packages."""
    parts = name.split(".")
    found: ModuleSpec | None = PathFinder.find_spec(parts[0], [*search_dirs, *sys.path])
    if found is None:
        try:  # built-in and frozen modules, and finders such as editable installs'
            found = importlib.util.find_spec(parts[0])
        except (ImportError, ValueError):
            found = None
    for depth in range(1, len(parts)):
        if found is None or found.submodule_search_locations is None:
            return False
        found = PathFinder.find_spec(".".join(parts[: depth + 1]),
                                     list(found.submodule_search_locations))
    return found is not None


def _custom_object_modules(entries: Sequence[str], dirs: Sequence[str]) -> tuple[str, ...]:
    """Each ``--custom-objects`` entry checked: a ``.py`` file that exists (made absolute)
    or a module that can be found."""
    modules = []
    for entry in entries:
        if entry.endswith(".py") or "/" in entry:
            path = Path(entry).expanduser()
            if not path.is_file():
                raise InputError(f"--custom-objects {entry}: file not found: {path.resolve()}")
            modules.append(str(path.resolve()))
        elif not find_module(entry, dirs):
            where = ", ".join(dirs) if dirs else "sys.path"
            raise InputError(
                f"--custom-objects {entry}: no module {entry!r} can be imported (looked in "
                f"{where} and sys.path); name a module on the path or a .py file"
            )
        else:
            modules.append(entry)
    return tuple(modules)


def _parse_source(text: str, dirs: Sequence[str]) -> ModelSpec:
    """The kind, file or module of a ``--model`` value, checked."""
    if text.startswith("builtin:"):
        name = text.removeprefix("builtin:")
        if name not in BUILTIN_TEMPLATES:
            raise InputError(
                f"unknown built-in model {text!r}; available: "
                + ", ".join(f"builtin:{n}" for n in BUILTIN_TEMPLATES)
            )
        return ModelSpec("builtin", text, target=name)
    head, sep, func = text.rpartition(":")
    if sep and head and func and not text.endswith((".keras", ".h5", ".hdf5")):
        if not func.isidentifier():
            raise InputError(f"model factory {text!r}: {func!r} is not a function name")
        if head.endswith(".py"):
            path = Path(head)
            if not path.is_file():
                raise InputError(f"model file not found: {path}")
            return ModelSpec("file_factory", text, path=str(path.resolve()), target=func)
        if not find_module(head, dirs):
            raise InputError(f"model factory {text!r}: module {head!r} cannot be imported")
        return ModelSpec("module_factory", text, path=head, target=func)
    path = Path(text)
    if path.suffix == ".keras":
        kind = "keras"
    elif path.suffix in (".h5", ".hdf5"):
        kind = "h5"
    else:
        raise InputError(
            f"cannot tell what model {text!r} is: expected a .keras or .h5 file, "
            "file.py:function, package.module:function or builtin:mlp/builtin:cnn"
        )
    if not path.is_file():
        raise InputError(f"model file not found: {path}")
    return ModelSpec(kind, text, path=str(path.resolve()))


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
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {path}")
    if str(path.parent) not in sys.path:  # its own sibling imports
        sys.path.append(str(path.parent))
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


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
        name = f"_stabcheck_user_model_{abs(hash(spec.path))}"
        module_spec = importlib.util.spec_from_file_location(name, spec.path)
        if module_spec is None or module_spec.loader is None:
            raise InputError(f"cannot import model file {spec.path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(spec.path)
    func = getattr(module, spec.target, None)
    if not callable(func):
        raise InputError(f"model factory {spec.text!r}: no function {spec.target!r} there")
    return func
