"""Model specs, parsed and checked in the stabcheck process (``worker.models`` builds them).

``parse_model_spec`` needs no framework and runs before any worker starts, so a missing
file or module, or an unknown template, is a usage error (exit 2) without a TensorFlow
import; modules are found, never imported, in the parent.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

from stabcheck.errors import InputError
from stabcheck.protocol.model_spec import BUILTIN_TEMPLATES, ModelSpec


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
