"""A worker process as the parent sees it: how it is started (its interpreter, its cgroup,
its environment, its session), the pipes to it, the thread that reads its JSON-line
messages, and how it is ended and reaped.

The parent/child protocol (JSON lines; only JSON-safe values cross the boundary) is
drawn and typed in one place, ``stabcheck.protocol.messages``; the helpers at the end of
this module turn the numbers and exceptions a worker reports into the parent's records.
The worker's stderr goes to a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil

from stabcheck.protocol.messages import ParentEvent, ToWorker, WorkerInit
from stabcheck.system import cgroup


def worker_environment(init: WorkerInit, gpu: str | None = None) -> dict[str, str]:
    """A worker's environment: stabcheck's, with its Keras backend and, when it is given
    one GPU (``gpu``: an NVML index or a UUID), only that GPU, numbered as NVML numbers
    them unless the user chose an order."""
    env = {**os.environ, "KERAS_BACKEND": init.backend, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if gpu is not None:
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


class WorkerProcess:
    """One worker process, its reader thread, its cgroup and its stderr file.

    ``gpu``: the GPU it may see (its NVML index or UUID), or None for all that stabcheck
    sees; its Keras backend is ``init.backend``.
    """

    def __init__(self, init: WorkerInit, stderr_path: Path, memory_budget: int | None,
                 gpu: str | None = None) -> None:
        self.stderr_path = stderr_path
        self.cgroup = cgroup.create_cgroup(memory_budget)
        self.enforcement = (
            None if memory_budget is None
            else f"cgroup-v{self.cgroup.version}" if self.cgroup else "watchdog"
        )
        cmd = [sys.executable, "-m", "stabcheck.worker"]
        if self.cgroup is not None:  # join the cgroup before Python starts: nothing escapes it
            cmd = ["/bin/sh", "-c", 'echo $$ > "$1" || exit 97; shift; exec "$@"', "sh",
                   str(self.cgroup.procs_file), *cmd]
        env = worker_environment(init, gpu)
        self._stderr = stderr_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, start_new_session=True,  # Ctrl-C reaches stabcheck, which ends workers
        )
        self.messages: queue.Queue[dict[str, Any] | ParentEvent] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._ps = _process(self.proc.pid)
        self.send(init.message())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except json.JSONDecodeError:
                continue
        self.messages.put(ParentEvent.EOF)

    def send(self, message: dict[str, Any]) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(message, allow_nan=False) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def rss_bytes(self) -> int | None:
        """Private resident memory (anonymous pages) of the worker and its descendants.

        File-backed pages (TensorFlow's shared libraries, ~300 MiB) are left out: the
        kernel can drop and re-read them under a memory limit, so they neither count
        against a cgroup budget in the end nor cause an OOM kill.
        """
        if self._ps is None:
            return None
        try:
            procs = [self._ps, *self._ps.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_info()
                total += info.rss - getattr(info, "shared", 0)
        return total

    def kill(self) -> None:
        """End the worker and anything it started (its whole process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def stop(self) -> None:
        """Ask the worker to exit, then make sure it did; free its cgroup."""
        if self.proc.poll() is None:
            self.send({"type": ToWorker.EXIT.value})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.reap()

    def reap(self) -> int:
        """Wait for the dead worker, close its files, remove its cgroup; its exit status."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        return code

    def stderr_tail(self, limit: int = 3000) -> str:
        try:
            with self.stderr_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def protocol_float(value: Any) -> float:
    """A protocol number: non-finite values travel as "nan", "inf" or "-inf"; a value
    the worker could not measure (null) is NaN."""
    return math.nan if value is None else float(value)


def exception_evidence(message: dict[str, Any]) -> dict[str, Any]:
    """What a worker's exception message says, as a run's ``exception``."""
    return {key: message.get(key) for key in
            ("phase", "step", "etype", "message", "oom", "oom_device", "user_input",
             "traceback")}

