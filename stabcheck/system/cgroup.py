"""How a host-memory budget is enforced for a probe worker, and the OOM evidence it leaves.

Preferred: a memory cgroup per worker (v1 here, v2 where that is what the machine has),
so the kernel's OOM killer enforces the budget exactly and its ``oom_kill`` counter
proves what happened. Where no cgroup can be created, a watchdog in the parent samples
the worker's memory and ends it at the budget. Either way a worker's ``oom_score_adj``
is raised so that, under global pressure, the kernel kills a worker before stabcheck.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

_V1_ROOT = Path("/sys/fs/cgroup/memory")
_V2_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()


@dataclass
class Cgroup:
    """One worker's memory cgroup."""

    path: Path
    version: int  # 1 or 2

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            text = (self.path / name).read_text()
        except OSError:
            return 0
        match = re.search(r"^oom_kill (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def peak_bytes(self) -> int | None:
        """The cgroup's peak memory charge (includes page cache the worker touched)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        """Delete the cgroup once its processes are gone (retries briefly)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def _own_v1_dir() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                return _V1_ROOT / rel.lstrip("/")
    except (OSError, ValueError):
        return None
    return None


def _own_v2_dir() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                path = _V2_ROOT / line[3:].lstrip("/")
                if (path / "cgroup.controllers").exists():
                    return path
    except OSError:
        return None
    return None


def _try_create(parent: Path, version: int, limit: int | None) -> Cgroup | None:
    path = parent / f"stabcheck-{os.getpid()}-{next(_counter)}"
    try:
        path.mkdir()
    except OSError:
        return None
    group = Cgroup(path, version)
    try:
        if limit is not None:
            if version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit))
                swap = path / "memory.memsw.limit_in_bytes"
                if swap.exists():  # no swapping out of the budget
                    with contextlib.suppress(OSError):
                        swap.write_text(str(limit))
            else:
                (path / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
        if not (path / "cgroup.procs").exists():
            raise OSError("no cgroup.procs")
    except OSError:
        group.remove()
        return None
    return group


def create_cgroup(limit: int | None) -> Cgroup | None:
    """A fresh memory cgroup with ``limit`` bytes (None: no limit), or None if impossible."""
    if os.environ.get("STABCHECK_NO_CGROUP"):
        return None
    v1 = _own_v1_dir()
    if v1 is not None and v1.is_dir():
        group = _try_create(v1, 1, limit)
        if group is not None:
            return group
    v2 = _own_v2_dir()
    if v2 is not None:
        return _try_create(v2, 2, limit)
    return None


def enforcement_method() -> str:
    """"cgroup-v1", "cgroup-v2" or "watchdog": how a budget would be enforced here."""
    group = create_cgroup(None)
    if group is None:
        return "watchdog"
    group.remove()
    return f"cgroup-v{group.version}"


def system_oom_kills() -> int:
    """The kernel's global OOM-kill counter (``oom_kill`` in /proc/vmstat), 0 if unknown."""
    try:
        match = re.search(r"^oom_kill (\d+)$", Path("/proc/vmstat").read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0
