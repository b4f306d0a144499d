"""An in-memory Keras model, handed to the probe workers as files.

The model is saved with its own ``model.save`` (Keras is already imported where the model
exists: stabcheck imports nothing new for it) to a ``.keras`` file, and the custom objects
the saved config names are written to a module the worker imports first
(``api.sources``). Nothing is pickled; the model itself is only read.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stabcheck.api.sources import ObjectsModule
from stabcheck.errors import InputError

OBJECTS_MODULE = "stabcheck_user_objects.py"


def is_keras_model(value: Any) -> bool:
    """Whether ``value`` is a Keras 3 model (decided without importing Keras: a model can
    only exist where Keras is imported already)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, getattr(keras, "Model", ()))


def export_model(model: Any, folder: Path) -> tuple[Path, Path | None]:
    """Save ``model`` to ``folder``: (the ``.keras`` file, the custom-objects module or
    None when the model uses none).

    Raises:
        InputError: not a Keras 3 model, a model Keras cannot save, or a custom object
            that cannot be handed to the workers.
    """
    if not is_keras_model(model):
        kind = type(model)
        raise InputError(f"model must be a Keras 3 model (keras.Model), a .keras/.h5 file or "
                         f"a model spec such as 'builtin:mlp'; got {kind.__module__}."
                         f"{kind.__qualname__}")
    path = folder / "model.keras"
    try:
        model.save(path)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise InputError(f"the model cannot be saved to hand it to the probe workers: "
                         f"{type(exc).__name__}: {lines[-1] if lines else ''} (build it "
                         "first, e.g. with keras.Input, and give custom layers a get_config)"
                         ) from None
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    wrapped = _python_lambda(config)
    if wrapped is not None:
        raise InputError(f"the model's layer {wrapped!r} wraps a Python lambda, which Keras "
                         "loads only with safe_mode=False and stabcheck's workers load with "
                         "safe_mode=True: write it as a def function or a custom layer (stabcheck "
                         "hands those to the workers from their source)")
    module = ObjectsModule()
    candidates = _candidates(model)
    for registered, name in _custom_references(config):
        module.add(_find(registered, name, candidates), registered)
        if name != registered and name not in module.registered:
            module.registered[name] = module.registered[registered]
    if not module.registered:
        return path, None
    objects = folder / OBJECTS_MODULE
    objects.write_text(module.text(), encoding="utf-8")
    return path, objects


def _custom_references(config: Any) -> Iterator[tuple[str, str]]:
    """(registered name, class or function name) of every object the saved config names
    that is not Keras's own."""
    seen: set[str] = set()
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if "class_name" not in node or "registered_name" not in node:
            continue
        module = node.get("module") or ""
        if module.split(".")[0] in ("keras", "keras_hub", "keras_nlp", "keras_cv"):
            continue
        if node["class_name"] == "function" and isinstance(node.get("config"), str):
            name = node["config"]
            registered = node["registered_name"]
            registered = name if registered in (None, "function") else registered
        else:
            name = str(node["class_name"])
            registered = node["registered_name"] or name
        if registered not in seen:
            seen.add(registered)
            yield registered, name


def _python_lambda(config: Any) -> str | None:
    """The name of a ``Lambda`` layer of the saved config that wraps a Python lambda."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            inner = node.get("config")
            function = inner.get("function") if isinstance(inner, dict) else None
            if isinstance(function, dict) and function.get("class_name") == "__lambda__":
                return str(inner.get("name"))
            stack.extend(node.values())
    return None


def _candidates(model: Any) -> dict[str, Any]:
    """Classes and functions the caller may mean by a name: the model's own classes and
    its layers', and the globals of ``__main__`` (a notebook's or a script's)."""
    found: dict[str, Any] = {}
    layers = [model]
    try:
        layers += list(model._flatten_layers(include_self=False, recursive=True))
    except (AttributeError, TypeError):
        layers += list(getattr(model, "layers", []))
    for layer in layers:
        for cls in type(layer).__mro__:
            found.setdefault(cls.__name__, cls)
    main = sys.modules.get("__main__")
    for key, value in (vars(main).items() if main is not None else ()):
        if isinstance(value, type) or callable(value):
            found.setdefault(key, value)
    return found


def _find(registered: str, name: str, candidates: dict[str, Any]) -> Any:
    keras = sys.modules["keras"]
    obj = keras.saving.get_registered_object(registered)
    if obj is None:
        obj = candidates.get(name)
    if obj is None:
        raise InputError(f"the model uses {name!r}, which stabcheck cannot find to hand to the "
                         "probe workers: define it at the top level of the notebook or a "
                         "module, or register it with @keras.saving.register_keras_serializable()")
    return obj
