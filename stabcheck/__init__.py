"""stabcheck: probe Keras training settings before a long job.

The package's importable surface is deliberately small and never imports TensorFlow
or any Keras backend; only ``stabcheck.worker`` (run in child processes) does.
``stabcheck.probe`` and ``stabcheck.memory`` (``stabcheck.api``) are imported on first use,
so ``import stabcheck`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from stabcheck.about import __version__

__all__ = ["__version__", "memory", "probe"]


def __getattr__(name: str) -> Any:
    """``stabcheck.probe`` and ``stabcheck.memory``, the API's functions, imported on first
    use. By name: the API sits on top of every part (a static import here would make each
    part that imports a module of the package import it, for import-linter)."""
    if name in ("probe", "memory"):
        return getattr(importlib.import_module("stabcheck.api"), name)
    raise AttributeError(f"module 'stabcheck' has no attribute {name!r}")
