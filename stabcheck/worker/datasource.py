"""``python -m stabcheck.worker.datasource REQUEST``: call the user's data function in a
process of its own (it may import TensorFlow; stabcheck's own process never does).

The request (a JSON file written by ``stabcheck.inputs.datafn``) names the function
(``kind`` "file" with an absolute ``path``, or "module" with a module name), ``target``
(the function), ``sys_path`` (folders put ahead of ``sys.path``), ``max_samples``, ``out``
(the ``.npz`` to write) and ``status`` (a JSON file for the outcome: ``{"ok": true,
"n_samples", "truncated"}`` or ``{"ok": false, "message"}``). Anything the function prints
goes to stderr, which the parent keeps and quotes should this process die.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError, StabcheckError
from stabcheck.protocol.userdata import as_arrays, save_arrays
from stabcheck.worker.models import load_file_module


def main(argv: list[str]) -> int:
    os.dup2(2, 1)  # the user's prints go to stderr with TensorFlow's
    request = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    text = request["text"]
    try:
        func = _function(request)
        try:
            value = func()
        except Exception as exc:  # the user's function: its error, in one line
            raise InputError(f"data function {text} raised {type(exc).__name__}"
                             + (f": {_last_line(exc)}" if _last_line(exc) else "")) from None
        arrays = as_arrays(value, int(request["max_samples"]), source=f"data function {text}")
        save_arrays(arrays, Path(request["out"]))
        status: dict[str, Any] = {"ok": True, "n_samples": arrays.n_samples,
                                  "truncated": arrays.truncated}
    except StabcheckError as exc:
        status = {"ok": False, "message": str(exc)}
    Path(request["status"]).write_text(json.dumps(status), encoding="utf-8")
    sys.stderr.flush()
    os._exit(0)  # skip TensorFlow's teardown, should the function have imported it


def _function(request: dict[str, Any]) -> Any:
    """The data function the request names, imported."""
    for folder in reversed(request.get("sys_path") or []):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    text, target = request["text"], request["target"]
    try:
        if request["kind"] == "file":
            path = Path(request["path"])
            module = load_file_module(path, f"_stabcheck_user_data_{abs(hash(str(path)))}")
            if module is None:
                raise InputError(f"data function {text}: cannot import {path}")
        else:
            module = importlib.import_module(request["path"])
    except StabcheckError:
        raise
    except Exception as exc:  # the user's module: any error is theirs to fix
        raise InputError(f"data function {text}: importing its module raised "
                         f"{type(exc).__name__}: {_last_line(exc)}") from None
    func = getattr(module, target, None)
    if not callable(func):
        raise InputError(f"data function {text}: no function {target!r} there")
    return func


def _last_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1][:300] if lines else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
