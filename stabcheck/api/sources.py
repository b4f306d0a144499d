"""The custom classes and functions of an in-memory model, as a module a worker imports.

A model built in a notebook or a script uses classes the worker cannot import: they live
in ``__main__`` (a notebook's cells, a script), or in a module of the caller's path. Models
cross the process boundary as ``.keras`` files, never pickled, so this module writes a
Python module that gives the worker the same objects: an import where the object's module
can be imported there, otherwise the object's source (``inspect``, or the notebook cell's
source kept in ``linecache`` where ``inspect`` cannot find a class of ``__main__``), with
what that source uses from its globals (modules, literals, other classes and functions,
in dependency order), and finally their registration under the names the saved model
refers to them by (``keras.saving.get_custom_objects()``). The worker imports it as a
``--custom-objects`` file before it loads the model with ``safe_mode=True``.

What cannot be given this way (a lambda, a class defined inside a function, a global that
is neither a module, a literal, a class nor a function) is an ``InputError`` naming it.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import sys
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError


@dataclass
class ObjectsModule:
    """The module's text, built object by object (each once, dependencies first)."""

    lines: list[str] = field(default_factory=list)
    registered: dict[str, str] = field(default_factory=dict)  # name in the model -> local
    _done: dict[int, str] = field(default_factory=dict)  # id(object) -> its local name
    _taken: set[str] = field(default_factory=set)
    _paths: list[str] = field(default_factory=list)

    def add(self, obj: Any, registered_as: str) -> None:
        """Give the worker ``obj``, registered under ``registered_as``."""
        self.registered[registered_as] = self._provide(obj, preferred=None)

    def text(self) -> str:
        head = ['"""Custom objects of an in-memory model, written by stabcheck for its '
                'workers."""', "import sys as _stabcheck_sys"]
        head += [f"_stabcheck_sys.path.append({p!r})" for p in self._paths]
        tail = ["import keras as _stabcheck_keras",
                "_stabcheck_keras.saving.get_custom_objects().update({"]
        tail += [f"    {name!r}: {local}," for name, local in sorted(self.registered.items())]
        tail.append("})")
        return "\n".join(head + self.lines + tail) + "\n"

    # ------------------------------------------------------------------ objects

    def _provide(self, obj: Any, preferred: str | None) -> str:
        """The local name under which the module defines ``obj``, adding it if new."""
        if id(obj) in self._done:
            local = self._done[id(obj)]
            if preferred and preferred != local and preferred not in self._taken:
                self._bind(preferred, local)
                return preferred
            return local
        imported = _import_line(obj, preferred)
        if imported is not None:
            line, local, path = imported
            if path and path not in self._paths:
                self._paths.append(path)
            self._take(local)
            self.lines.append(line)
        else:
            local = self._define(obj)
        self._done[id(obj)] = local
        if preferred and preferred != local and preferred not in self._taken:
            self._bind(preferred, local)
            return preferred
        return local

    def _bind(self, name: str, local: str) -> None:
        self._take(name)
        self.lines.append(f"{name} = {local}")

    def _take(self, name: str) -> None:
        self._taken.add(name)

    def _define(self, obj: Any) -> str:
        """Write ``obj``'s source, after what it uses from its globals."""
        describe = _describe(obj)
        if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            raise InputError(f"the model uses {describe}, a lambda, which cannot be handed to "
                             "the probe workers: define it with def (or save the model and "
                             "pass custom_objects=[a module that registers it])")
        if "<locals>" in obj.__qualname__:
            raise InputError(f"the model uses {describe}, defined inside a function: the "
                             "probe workers cannot rebuild it; define it at the top level of "
                             "the notebook or a module")
        source = _source(obj)
        name = obj.__name__
        self._done[id(obj)] = name  # a class that refers to itself
        self._take(name)
        namespace = _globals_of(obj)
        assigned = _assigned_names(source)
        for used in _used_names(source):
            if used == name or used in self._taken or used not in namespace:
                continue
            value = namespace[used]
            try:
                self._provide_value(used, value)
            except InputError:
                if used in assigned:  # a local of the same name: not the global
                    continue
                raise
        self.lines.append(source)
        return name

    def _provide_value(self, name: str, value: Any) -> None:
        """Give the module global ``name`` = ``value`` (a dependency of a source)."""
        if isinstance(value, types.ModuleType):
            self._take(name)
            module = value.__name__
            self.lines.append(f"import {module}" if module == name
                              else f"import {module} as {name}")
        elif isinstance(value, (type, types.FunctionType)):
            self._provide(value, preferred=name)
        elif _is_literal(value):
            self._take(name)
            self.lines.append(f"{name} = {value!r}")
        else:
            raise InputError(f"a custom object of the model uses the global {name!r} "
                             f"({type(value).__name__}), which cannot be handed to the probe "
                             "workers: only modules, literals, classes and functions can")


def _describe(obj: Any) -> str:
    kind = "class" if isinstance(obj, type) else "function"
    return f"the {kind} {getattr(obj, '__qualname__', obj)!r}"


def _import_line(obj: Any, preferred: str | None) -> tuple[str, str, str | None] | None:
    """``from module import name`` where the worker can import ``obj``'s module (a file
    outside ``__main__``): (line, local name, the folder to add to ``sys.path``)."""
    module_name = getattr(obj, "__module__", None)
    if not module_name or module_name in ("__main__", "builtins"):
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    qualname = getattr(obj, "__qualname__", "")
    if module is None or not file or "<" in qualname or "." in qualname:
        return None
    if getattr(module, qualname, None) is not obj:
        return None
    root = Path(file).resolve().parent
    for _ in range(module_name.count(".") + (1 if Path(file).name == "__init__.py" else 0)):
        root = root.parent
    local = preferred or qualname
    line = (f"from {module_name} import {qualname}" if local == qualname
            else f"from {module_name} import {qualname} as {local}")
    return line, local, str(root)


def _source(obj: Any) -> str:
    """The source of a class or function, dedented, decorators included."""
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):
        text = _class_source_from_methods(obj) if isinstance(obj, type) else None
    if not text:
        raise InputError(f"the model uses {_describe(obj)}, whose source stabcheck cannot "
                         "find (defined in an interactive prompt?): define it in a notebook "
                         "cell, a script or a module")
    return textwrap.dedent(text).rstrip() + "\n"


def _class_source_from_methods(cls: type) -> str | None:
    """A class of ``__main__`` that ``inspect`` cannot place (a notebook has no file):
    the cell's source, found through a method's code, parsed for the class statement; for a
    class without methods, the latest cell in ``linecache`` that defines the name."""
    for value in vars(cls).values():
        func = getattr(value, "__func__", value)
        func = getattr(func, "fget", func)
        code = getattr(func, "__code__", None)
        if code is not None:
            found = _class_in(linecache.getlines(code.co_filename), cls.__name__,
                              code.co_firstlineno)
            if found:
                return found
    for filename in reversed(list(linecache.cache)):
        found = _class_in(linecache.getlines(filename), cls.__name__, None)
        if found:
            return found
    return None


def _class_in(lines: list[str], name: str, line: int | None) -> str | None:
    """The top-level ``class name`` statement of ``lines`` (the one spanning ``line``)."""
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.ClassDef) and node.name == name
                and (line is None or node.lineno <= line <= (node.end_lineno or 0))):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "".join(lines[start - 1:node.end_lineno])
    return None


def _globals_of(obj: Any) -> dict[str, Any]:
    if isinstance(obj, types.FunctionType):
        return obj.__globals__
    module = sys.modules.get(obj.__module__)
    return vars(module) if module is not None else {}


def _used_names(source: str) -> list[str]:
    """Names the source reads that builtins do not provide, in order of appearance."""
    seen: dict[str, None] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and not hasattr(builtins, node.id):
            seen.setdefault(node.id, None)
    return list(seen)


def _assigned_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        try:
            return ast.literal_eval(repr(value)) == value
        except (ValueError, SyntaxError):
            return False  # nan, inf
    if isinstance(value, (tuple, list, set, frozenset)):
        return type(value) in (tuple, list, set) and all(_is_literal(v) for v in value)
    if isinstance(value, dict):
        return type(value) is dict and all(_is_literal(k) and _is_literal(v)
                                           for k, v in value.items())
    return False
