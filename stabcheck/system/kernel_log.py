"""The kernel's own record of an OOM kill: which pids its OOM killer ended.

When the OOM killer ends a process the kernel logs it (``oom-kill:...,pid=N,...`` and
``Out of memory: Killed process N (name) ...``, or ``Memory cgroup out of memory: Killed
process N``). A worker that died of SIGKILL is ``oom_host`` on this evidence (or its
cgroup's ``oom_kill`` counter), never on the machine-wide OOM-kill counter alone, which
another process's OOM kill moves too.

The log is read from ``/dev/kmsg`` (root, or ``kernel.dmesg_restrict=0``): every record
the ring buffer still holds, without blocking. Unreadable: None, and the caller says what
it could not check.
"""

from __future__ import annotations

import errno
import os
import re

_KILLED = re.compile(r"Killed process (\d+)\b")
_OOM_KILL = re.compile(r"oom-kill:.*\bpid=(\d+)\b")


def oom_victims(text: str) -> set[int]:
    """The pids the OOM killer ended, from kernel log text (one record per line)."""
    pids = set()
    for line in text.splitlines():
        for pattern in (_KILLED, _OOM_KILL):
            match = pattern.search(line)
            if match:
                pids.add(int(match.group(1)))
    return pids


def read_kernel_log(path: str = "/dev/kmsg", limit: int = 100_000) -> str | None:
    """The records the kernel's ring buffer holds, one per line (at most ``limit``
    records), or None where it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    lines = []
    try:
        for _ in range(limit):
            try:
                record = os.read(fd, 8192)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:  # the end of the buffer
                    break
                if exc.errno == errno.EPIPE:  # a record overwritten while reading
                    continue
                return None if not lines else "\n".join(lines)
            if not record:
                break
            # "<level>,<seq>,<usec>,<flags>;message" and continuation lines
            text = record.decode("utf-8", "replace")
            lines.append(text.split(";", 1)[-1].rstrip("\n"))
    finally:
        os.close(fd)
    return "\n".join(lines)


def oom_killed(pid: int) -> bool | None:
    """Whether the kernel's log records an OOM kill of ``pid``; None where it cannot be
    read."""
    text = read_kernel_log()
    if text is None:
        return None
    return pid in oom_victims(text)
