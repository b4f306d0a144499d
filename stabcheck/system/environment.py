"""What ``stabcheck env`` reports: backend and versions, GPUs, host memory, budget enforcement.

Collected without importing TensorFlow or Keras (the stabcheck process never does):
versions come from the installed distributions' metadata, GPUs from NVML (nvidia-ml-py),
host memory from psutil, and the enforcement method from ``memguard``. Nothing here prints.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import psutil

from stabcheck.about import __version__
from stabcheck.system import cgroup, nvml

__all__ = ["collect_environment", "gpu_devices"]

# The backend the probe workers run without --backend or a config's ``backend``
# (config.settings resolves it the same way; executors/process.py sets KERAS_BACKEND for them).
DEFAULT_BACKEND = "tensorflow"

# Distribution names a package may be installed under; the first one found is reported.
_PACKAGES: dict[str, tuple[str, ...]] = {
    "keras": ("keras", "keras-nightly"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel",
                   "tensorflow-macos", "tf-nightly", "tf-nightly-cpu"),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "torch": ("torch",),
    "numpy": ("numpy",),
    "nvidia-ml-py": ("nvidia-ml-py", "pynvml"),
    "psutil": ("psutil",),
}


def _version_of(names: tuple[str, ...]) -> dict[str, str] | None:
    for name in names:
        try:
            return {"distribution": name, "version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    return None


def gpu_devices() -> tuple[list[dict[str, Any]], str | None]:
    """NVIDIA GPUs as NVML sees them, and why there are none (None when NVML answered).

    Returns:
        ``([{"index", "name", "memory_bytes", "driver"}...], None)``, or ``([], reason)``
        where NVML could not be loaded or initialised (no driver, no library).
    """
    handle, reason = nvml.start_nvml()
    if handle is None:
        return [], reason
    try:
        devices = nvml.list_devices(handle)
        return devices, None if devices else "NVML found no GPU"
    except Exception as exc:
        return [], f"NVML failed: {exc}"
    finally:
        try:
            handle.nvmlShutdown()
        except Exception:  # already shut down or never started: nothing to release
            pass


def collect_environment() -> dict[str, Any]:
    """Everything ``stabcheck env`` shows, as JSON-safe values."""
    memory = psutil.virtual_memory()
    gpus, no_gpu = gpu_devices()
    enforcement = cgroup.enforcement_method()
    how = {
        "cgroup-v1": "a memory cgroup (v1) per probe: the kernel's OOM killer enforces it",
        "cgroup-v2": "a memory cgroup (v2) per probe: the kernel's OOM killer enforces it",
        "watchdog": "a watchdog in stabcheck samples each probe's memory and ends it at "
                    "the budget (no writable memory cgroup here)",
    }.get(enforcement, enforcement)
    return {
        "stabcheck_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND,
        "keras_backend_env": os.environ.get("KERAS_BACKEND"),
        "packages": {key: _version_of(names) for key, names in _PACKAGES.items()},
        "gpus": gpus,
        "gpu_note": no_gpu,
        "host_memory_bytes": int(memory.total),
        "host_memory_available_bytes": int(memory.available),
        "cpu_count": os.cpu_count(),
        "memory_enforcement": enforcement,
        "memory_enforcement_detail": how,
    }
