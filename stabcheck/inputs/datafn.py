"""Data from code: ``--data file.py:function`` or ``package.module:function``.

The function runs in a child process (``python -m stabcheck.worker.datasource``): it may
import TensorFlow and return a ``tf.data.Dataset``, which stabcheck's own process never
imports. The child turns what it returns into arrays (``protocol.userdata``: ``(x, y)``,
``(x, y, x_val, y_val)``, a dict, a dataset or a ``PyDataset``, at most ``max_samples``
rows of a dataset) and writes them to an ``.npz`` in a temporary folder, which is then
loaded, sampled and checked like any ``.npz`` data, and removed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError
from stabcheck.inputs.data import load_dataset
from stabcheck.inputs.models import find_module
from stabcheck.protocol.dataset import Dataset
from stabcheck.results import signal_name

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_data_function(spec: str) -> bool:
    """Whether a ``--data`` value names a function (``file.py:fn``, ``pkg.mod:fn``)."""
    if spec.startswith("builtin:"):
        return False
    head, sep, func = spec.rpartition(":")
    return bool(sep and head and func.isidentifier()
                and (head.endswith(".py") or _MODULE.match(head)))


def load_function_dataset(
    spec: str, *, search_dirs: tuple[str, ...], timeout: float, **sampling: Any
) -> Dataset:
    """Call the data function ``spec`` in a child process and load what it returned.

    Args:
        spec: ``file.py:function`` (a relative file resolves against the current folder)
            or ``package.module:function`` (found in ``search_dirs``, then ``sys.path``).
        search_dirs: folders put ahead of ``sys.path`` in the child (the config's folder,
            the current folder); a file's own folder comes first.
        timeout: seconds the function may take.
        sampling: ``load_dataset``'s keywords (``max_samples``, ``holdout``, ...); a
            dataset is read for at most ``max_samples`` rows.

    Raises:
        InputError: the file or module is missing, the function raises, returns a form
            it may not, or its process dies or overruns ``timeout``.
    """
    request = _request(spec, search_dirs)
    request["max_samples"] = int(sampling.get("max_samples", 20000))
    with tempfile.TemporaryDirectory(prefix="stabcheck-data-") as tmp:
        folder = Path(tmp)
        out = folder / "data.npz"
        request.update(out=str(out), status=str(folder / "status.json"))
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        _call(spec, folder, timeout)
        status = json.loads((folder / "status.json").read_text(encoding="utf-8"))
        if not status.get("ok"):
            raise InputError(status.get("message") or f"data function {spec} failed")
        try:
            dataset = load_dataset(str(out), **sampling)
        except InputError as exc:  # name the function, not the temporary file
            message = str(exc).replace(f"data '{out}'", f"data function {spec}")
            raise InputError(message.replace(str(out), spec)) from None
    # A dataset read up to the cap says so where the report names the data.
    source = (f"{spec} (its first {status['n_samples']} samples: --max-samples)"
              if status.get("truncated") else spec)
    return replace(dataset, source=source)


def _request(spec: str, search_dirs: tuple[str, ...]) -> dict[str, Any]:
    """The child's request for ``spec``, checked here first (no import)."""
    head, _, func = spec.rpartition(":")
    dirs = [str(Path(d).resolve()) for d in search_dirs]
    if head.endswith(".py"):
        path = Path(head).expanduser().resolve()
        if not path.is_file():
            raise InputError(f"data function {spec}: file not found: {path}")
        return {"text": spec, "kind": "file", "path": str(path), "target": func,
                "sys_path": list(dict.fromkeys([str(path.parent), *dirs]))}
    if not find_module(head, dirs):
        raise InputError(f"data function {spec}: module {head!r} cannot be imported "
                         f"(looked in {', '.join(dirs) or 'sys.path'} and sys.path)")
    return {"text": spec, "kind": "module", "path": head, "target": func, "sys_path": dirs}


def _call(spec: str, folder: Path, timeout: float) -> None:
    """Run the child; a death or an overrun is an ``InputError`` quoting its stderr."""
    stderr = folder / "stderr.txt"
    with stderr.open("wb") as err:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "stabcheck.worker.datasource",
                 str(folder / "request.json")],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InputError(f"data function {spec} did not return within {timeout:g} s "
                             "(--timeout)") from None
    if done.returncode != 0 or not (folder / "status.json").exists():
        lines = [line for line in stderr.read_text(errors="replace").splitlines()
                 if line.strip()]
        tail = f"; its last output: {lines[-1].strip()[:300]}" if lines else ""
        raise InputError(f"data function {spec} ended with {signal_name(done.returncode)} "
                         f"before returning its data{tail}")
