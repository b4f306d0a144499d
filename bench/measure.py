"""How the bench measures a command: wall time, CPU (its own and other processes'), the
peak RSS of one process, and a memory budget enforced as stabcheck enforces a probe's.

Standard library and psutil only. A budget is a memory cgroup of its own (v1, else v2)
with the limit and no swap, joined by the child before it runs (``preexec_fn``), so the
kernel's OOM killer ends it at the budget, as it ends a stabcheck worker; where no
cgroup can be made, a watchdog thread samples the child's private memory (RssAnon +
RssShmem, as a cgroup would charge it; file pages already cached are not) every 20 ms
and ends it with SIGKILL at the budget.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil

TIMEOUT_S = 1800
RSS_INTERVAL_S = 0.020
TREE_INTERVAL_S = 0.2  # a scan of the process tree costs a few ms of CPU
_counter = itertools.count()


def log(msg: str) -> None:
    print(msg, flush=True)


def _busy_cpu_s() -> tuple[float, float]:
    """(CPU seconds all cores spent busy since boot, seconds stolen by the hypervisor)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, getattr(t, "steal", 0.0)


def _our_cpu_s() -> float:
    """CPU seconds of this process and of its waited-for descendants (workers included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """How much CPU the measured command used, and how much *other* processes used meanwhile
    (a concurrent test run on a two-core machine skews every timing)."""

    def __init__(self) -> None:
        self.busy0, self.steal0 = _busy_cpu_s()
        self.ours0 = _our_cpu_s()
        self.t0 = time.perf_counter()

    def stop(self, ours_at_least: float = 0.0) -> dict:
        """The figures so far; ``ours_at_least``: CPU seconds the command is known to have
        used that rusage may miss (processes reaped by a descendant that discards their
        times, as Ray's raylet does)."""
        wall = time.perf_counter() - self.t0
        busy, steal = _busy_cpu_s()
        ours = max(_our_cpu_s() - self.ours0, ours_at_least)
        foreign = max(0.0, (busy - self.busy0) - ours)
        cores = psutil.cpu_count() or 1
        return {
            "wall_s": wall,
            "cpu_s": ours,
            "foreign_cpu_s": foreign,
            "foreign_share": foreign / (wall * cores) if wall > 0 else 0.0,
            "steal_s": steal - self.steal0,
        }


class RssSampler(threading.Thread):
    """Peak RSS of one process (not its children), sampled every ``RSS_INTERVAL_S``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self.proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                break
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._halt.wait(RSS_INTERVAL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()


class TreeCpuSampler(threading.Thread):
    """CPU seconds of a process and of every descendant seen, each as last sampled (every
    ``TREE_INTERVAL_S``): a lower bound that, unlike rusage, includes descendants whose
    parent discards their times (Ray's actors, reaped by the raylet)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.seen: dict[tuple[int, float], float] = {}
        self._halt = threading.Event()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                t = proc.cpu_times()
                self.seen[(proc.pid, proc.create_time())] = t.user + t.system
            except psutil.Error:
                pass

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(TREE_INTERVAL_S)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return sum(self.seen.values())


# --------------------------------------------------------------------- memory budget


class BudgetCgroup:
    """A memory cgroup of ``limit`` bytes (no swap) for one child; None from ``create``
    where none can be made."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, limit: int) -> BudgetCgroup | None:
        for version, parent in ((1, _own_dir(1)), (2, _own_dir(2))):
            if parent is None or not parent.is_dir():
                continue
            path = parent / f"stabcheck-bench-{os.getpid()}-{next(_counter)}"
            try:
                path.mkdir()
            except OSError:
                continue
            group = cls(path, version)
            try:
                if version == 1:
                    (path / "memory.limit_in_bytes").write_text(str(limit))
                    swap = path / "memory.memsw.limit_in_bytes"
                    if swap.exists():
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
                continue
            return group
        return None

    def join(self) -> None:
        """Called in the child before it execs (``preexec_fn``)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            match = re.search(r"^oom_kill (\d+)$", (self.path / name).read_text(), re.MULTILINE)
        except OSError:
            return 0
        return int(match.group(1)) if match else 0

    def peak_bytes(self) -> int | None:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def _own_dir(version: int) -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if version == 1 and "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / rel.lstrip("/")
        if version == 2 and line.startswith("0::"):
            path = Path("/sys/fs/cgroup") / rel.lstrip("/")
            return path if (path / "cgroup.controllers").exists() else None
    return None


def _private_bytes(pid: int) -> int | None:
    """RssAnon + RssShmem of ``pid`` (what a cgroup charges it, file pages aside)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    total = 0
    for name in ("RssAnon", "RssShmem"):
        match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
        total += int(match.group(1)) * 1024 if match else 0
    return total


class Watchdog(threading.Thread):
    """SIGKILL for a child whose private memory passes ``limit`` (where no cgroup can be
    made); its peak as sampled."""

    def __init__(self, pid: int, limit: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.limit = pid, limit
        self.peak = 0
        self.killed = False
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            used = _private_bytes(self.pid)
            if used is None:
                break
            self.peak = max(self.peak, used)
            if used > self.limit:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                self.killed = True
                break
            self._halt.wait(RSS_INTERVAL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_cmd(cmd: list[str], logdir: Path, tag: str, *, cwd: Path, env: dict,
            sample_rss: bool = False, tree_cpu: bool = False,
            memory_budget: int | None = None) -> dict:
    """Run ``cmd`` to completion; wall time, exit code, CPU use, peak RSS if asked;
    ``tree_cpu``: also sample the CPU of its process tree (``TreeCpuSampler``);
    ``memory_budget``: run it in a memory cgroup of that many bytes (else a watchdog), and
    say under ``figures["memory"]`` whether the budget ended it."""
    out_path, err_path = logdir / f"{tag}.out", logdir / f"{tag}.err"
    group = BudgetCgroup.create(memory_budget) if memory_budget else None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        watch = CpuWatch()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL,
                                preexec_fn=group.join if group else None)
        sampler = RssSampler(proc.pid) if sample_rss else None
        tree = TreeCpuSampler(proc.pid) if tree_cpu else None
        dog = Watchdog(proc.pid, memory_budget) if memory_budget and not group else None
        for thread in (sampler, tree, dog):
            if thread:
                thread.start()
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if sampler:
            sampler.stop()
        if dog:
            dog.stop()
        tree_s = tree.stop() if tree else 0.0
        figures = watch.stop(ours_at_least=tree_s)
    figures["rc"] = rc
    if memory_budget:
        if group:
            kills = group.oom_kills()
            figures["memory"] = {"budget_bytes": memory_budget,
                                 "enforcement": f"cgroup-v{group.version}",
                                 "oom_killed": kills > 0 and rc == -signal.SIGKILL,
                                 "oom_kills": kills, "peak_bytes": group.peak_bytes()}
            group.remove()
        else:
            figures["memory"] = {"budget_bytes": memory_budget, "enforcement": "watchdog",
                                 "oom_killed": bool(dog and dog.killed),
                                 "peak_bytes": dog.peak if dog else None}
    if tree:
        figures["tree_cpu_s"] = tree_s
    if sampler:
        figures["peak_rss_bytes"] = sampler.peak
        figures["rss_samples"] = sampler.samples
    budget_kill = (figures.get("memory") or {}).get("oom_killed")
    if rc != 0 and not budget_kill:
        tail = err_path.read_text(errors="replace")[-3000:]
        figures["stderr_tail"] = tail
        log(f"  ! {tag} exited {rc}; stderr tail:\n{tail}")
    return figures
