"""Model specs: parsed and checked in the stabcheck process, built in a probe worker.

``parse_model_spec`` needs no framework and runs before any worker starts, so a missing
file or an unknown template is a usage error (exit 2) without a TensorFlow import.
``build_model`` imports Keras and is only ever called inside a worker.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError

BUILTIN_TEMPLATES = ("mlp", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from."""

    kind: str  # "keras", "h5", "file_factory", "module_factory" or "builtin"
    text: str  # the spec as the user gave it
    path: str | None = None  # file path (keras, h5, file_factory)
    target: str | None = None  # module (module_factory), function, or template name

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "path": self.path, "target": self.target}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(**data)


def parse_model_spec(text: str) -> ModelSpec:
    """Parse and check a ``--model`` value without importing any framework."""
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
        if importlib.util.find_spec(head.split(".")[0]) is None:
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


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    """Build or load the Keras model of ``spec`` (worker only: imports Keras).

    Args:
        spec: a parsed model spec.
        input_shape: one sample's shape, for built-in templates.
        n_outputs: output units for built-in templates (1: sigmoid, else softmax).
    """
    import keras

    if spec.kind == "builtin":
        from stabcheck import templates

        return templates.build(spec.target, input_shape, n_outputs)
    if spec.kind == "keras":
        return keras.saving.load_model(spec.path, safe_mode=True)
    if spec.kind == "h5":
        return keras.saving.load_model(spec.path)
    func = _load_factory(spec)
    model = func()
    if not isinstance(model, keras.Model):
        raise InputError(
            f"model factory {spec.text!r} must return a keras.Model, "
            f"returned {type(model).__name__}"
        )
    return model


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
