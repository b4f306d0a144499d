"""A process's own memory from ``/proc/self``, and the peak of its training.

A probe worker trains in segments (the planned steps, then each extension or rung) with
a held-out evaluation between two segments, and runs several probes one after another.
The user's ``fit`` does none of that: it trains the same steps in a fresh process. So
that the peak a probe reports is its training's, :class:`TrainingPeak` keeps every
evaluation out of it:

- before and after each evaluation the C allocator's free memory goes back to the OS
  (:func:`release_free_heap`: glibc's ``malloc_trim(0)``), so what evaluation freed but
  the allocator kept (predict traces, eager passes, their buffers) is not resident when
  the next segment's high-water mark starts;
- what evaluation left *allocated* (a traced predict function, kernel caches) is measured
  as the growth of the resident memory across the evaluation, both ends measured with
  the free memory released, and is subtracted from the high-water mark of every later
  segment, of this probe and of the worker's later probes (it stays resident for them);
- each segment's high-water mark is the kernel's exact one (``VmHWM``, reset with
  ``clear_refs``), so no spike between two samples is missed.

Nothing here touches the training step or allocates while it runs: the instruments read
``/proc`` and return free memory to the OS between segments, which costs the next steps
page faults, never a byte of peak. Standard library only (no framework).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status(*keys: str) -> dict[str, int] | None:
    """The fields ``keys`` of ``/proc/self/status`` in bytes (absent ones left out), or
    None where there is no such file."""
    try:
        text = _STATUS.read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            fields[key] = int(value.split()[0]) * 1024
    return fields


def peak_private_rss() -> int | None:
    """Peak resident memory since the last reset, less file-backed and shared pages.

    VmHWM is the kernel's exact high-water mark, so short spikes between the parent's
    samples are not missed; the file-backed pages (shared libraries) resident now are
    subtracted, as they are at the peak, to compare with the parent's private samples.
    """
    fields = _status("VmHWM", "RssFile", "RssShmem")
    if not fields or "VmHWM" not in fields:
        return None
    return fields["VmHWM"] - fields.get("RssFile", 0) - fields.get("RssShmem", 0)


def private_rss() -> int | None:
    """Resident memory now, less file-backed and shared pages (as :func:`peak_private_rss`
    counts them)."""
    fields = _status("VmRSS", "RssFile", "RssShmem")
    if not fields or "VmRSS" not in fields:
        return None
    return fields["VmRSS"] - fields.get("RssFile", 0) - fields.get("RssShmem", 0)


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process to its resident memory
    now (``clear_refs`` 5)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:  # the C library the process runs on (find_library would start ldconfig)
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Give the C allocator's free memory back to the OS (glibc ``malloc_trim(0)``: the
    free pages of every arena, not only the top of the main heap). Whether it could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class TrainingPeak:
    """The high-water mark of a probe's training, held-out evaluations kept out.

    One per worker process (what evaluations leave allocated stays for its next probes):
    :meth:`start` at each probe's start, :meth:`training` for the peak so far (after the
    last step, at an early stop), :meth:`evaluating` around each held-out evaluation,
    :meth:`evidence` for what evaluation cost, apart.

    What is subtracted errs low, so the peak errs high, never low: it is measured only
    where the free memory could be released (else nothing is subtracted), and memory the
    process freed since the last evaluation (resident memory shrank between two settled
    measurements) is taken off it first, as if it had been the evaluation's.
    """

    def __init__(self) -> None:
        self._resident = 0  # what the worker's evaluations left allocated (bytes)
        self._settled: int | None = None  # resident memory after the last evaluation
        self._peak: int | None = None  # this probe's closed segments' training peak
        self._extra: int | None = None  # this probe's evaluations above the training peak

    def start(self) -> None:
        """A probe starts: its training peak starts from the memory resident now, without
        the free memory the allocator keeps (an earlier probe's evaluation freed it)."""
        self._peak = self._extra = None
        self._settle()
        reset_peak_rss()

    def training(self) -> int | None:
        """The probe's training peak so far: the largest high-water mark of its segments
        (the current one included), each less what evaluations before it left allocated."""
        mark = peak_private_rss()
        if mark is None:
            return self._peak
        current = max(0, mark - self._resident)
        return current if self._peak is None else max(self._peak, current)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Around one held-out evaluation: the training segment before it is closed, the
        next one's high-water mark starts after it without what it freed, and what it
        left allocated is subtracted from the later segments' marks."""
        released, before = self._settle()
        self._peak = self.training()
        reset_peak_rss()
        try:
            yield
        finally:
            mark = peak_private_rss()
            if mark is not None and self._peak is not None:
                above = max(0, mark - self._resident - self._peak)
                self._extra = above if self._extra is None else max(self._extra, above)
            released_after, after = self._settle()
            if released and released_after and before is not None and after is not None:
                # less where evaluating freed memory (an earlier evaluation's, garbage)
                self._resident = max(0, self._resident + after - before)
            self._settled = after if released and released_after else None
            reset_peak_rss()

    def evidence(self) -> dict[str, Any]:
        """What this probe's evaluations cost, apart from its training peak (JSON-safe;
        empty when it was not evaluated): ``evaluation_extra_bytes``, how far the largest
        evaluation's high-water mark rose above the training peak (0: it fitted within);
        ``evaluation_resident_bytes``, what the worker's evaluations (this probe's and its
        earlier probes') hold allocated now, kept out of the training peak."""
        if self._extra is None:
            return {}
        return {"evaluation_extra_bytes": int(self._extra),
                "evaluation_resident_bytes": int(self._resident)}

    def _settle(self) -> tuple[bool, int | None]:
        """Release the free memory; (whether it could, resident memory now). Resident
        memory below that after the last evaluation is taken off what is subtracted."""
        released = release_free_heap()
        now = private_rss()
        if not released or now is None:
            self._resident = 0  # nothing measured is subtracted where nothing is released
        elif self._settled is not None and now < self._settled:
            self._resident = max(0, self._resident - (self._settled - now))
        self._settled = None
        return released, now
