"""OS facts, no framework: cgroups, NVML, OOM recognition, peaks, the forecast line.

The package is also callable: ``stabcheck.memory(model, x, y, batch_size=...)`` is the
Python API's ``stabcheck.api.memory`` (``stabcheck memory`` in a notebook). The name is
this package's (importing any of its modules makes ``stabcheck.memory`` this module), so
calling the module forwards to the API, imported by name on the first call: nothing here
depends on the layers above.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``stabcheck.api.memory``: see its docstring."""
        return importlib.import_module("stabcheck.api").memory(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
