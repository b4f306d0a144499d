"""GPU facts from NVML (nvidia-ml-py), read by the stabcheck process without any framework.

Every function degrades to "no GPU" when NVML or a driver is missing: stabcheck runs the
same on a laptop without a GPU, and says so.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

_state: dict[str, Any] = {"initialised": None}


def start_nvml() -> tuple[Any | None, str | None]:
    """Import and initialise pynvml: (the module, None), or (None, why not)."""
    try:
        import pynvml
    except ImportError:
        return None, "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"NVML could not start: {exc}"
    return pynvml, None


def _nvml() -> Any | None:
    """The pynvml module, initialised once per process; None without an NVIDIA driver."""
    if _state["initialised"] is None:
        _state["initialised"] = start_nvml()[0] or False
    return _state["initialised"] or None


def list_devices(nvml: Any) -> list[dict[str, Any]]:
    """Index, name, total memory and driver of each GPU an initialised NVML sees."""
    driver = nvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else str(driver)
    out = []
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        name = nvml.nvmlDeviceGetName(handle)
        out.append({
            "index": i,
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "memory_bytes": int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
            "driver": driver,
        })
    return out


def devices() -> list[dict[str, Any]]:
    """Name, total memory and driver of each NVIDIA GPU; [] without one."""
    nvml = _nvml()
    if nvml is None:
        return []
    with contextlib.suppress(Exception):
        return list_devices(nvml)
    return []


def visible_gpus() -> list[str]:
    """The GPUs a worker may be given, as ``CUDA_VISIBLE_DEVICES`` names them: that
    variable's entries where it is set (the user's choice stands), else NVML's indices;
    [] without a GPU. An empty ``CUDA_VISIBLE_DEVICES`` hides every GPU."""
    found = devices()
    if not found:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return [str(d["index"]) for d in found]


def process_memory(pids: set[int]) -> int | None:
    """GPU memory NVML sees in use by ``pids`` across all GPUs; None without a GPU."""
    nvml = _nvml()
    if nvml is None:
        return None
    total = 0
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid in pids and proc.usedGpuMemory is not None:
                    total += int(proc.usedGpuMemory)
    except Exception:
        return None
    return total
