"""The run's journal: one JSON line per event, each on disk before the run goes on, so an
interrupted or crashed run loses nothing it had finished; and what ``--resume`` reads back
from it (the plan, the settings that decide the probes' results, the results by job).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stabcheck.config.options import NOT_IDENTITY
from stabcheck.config.settings import Settings
from stabcheck.errors import InputError
from stabcheck.results import ProbeResult
from stabcheck.run.scheduler import Job


class Journal:
    """Appends one JSON line per event; each line is on disk before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def default_journal_path() -> Path:
    """``.stabcheck/runs/<time>-<pid>.jsonl`` under the current folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(".stabcheck") / "runs" / f"{stamp}-{os.getpid()}.jsonl"


def run_identity(settings: Settings) -> dict[str, Any]:
    """The settings that decide the probes' results (model, data, steps, optimizer, ...):
    the options of ``config.options`` marked ``identity``."""
    return {k: v for k, v in settings.to_json().items() if k not in NOT_IDENTITY}


@dataclass(frozen=True)
class JournalState:
    """What an interrupted run's journal holds: its plan, its settings and its results,
    by the key of the job that produced each (``stabcheck.run.scheduler.Job.key``)."""

    probe_ids: list[str]
    identity: dict[str, Any]
    results: dict[tuple[str, str, int | None, int], ProbeResult]


def journal_record(job: Job, result: ProbeResult) -> dict[str, Any]:
    """A job's result as a journal line: the result's JSON and the job that produced it
    (its stage, seed and rungs), from which a resumed run knows it."""
    kind = "probe" if job.seed is None else "seed_probe"
    extra: dict[str, Any] = {"type": kind,
                             "job": {"stage": job.probe.stage, "seed": job.seed,
                                     "rungs": list(job.probe.rungs)}}
    if job.seed is not None:
        extra["seed"] = job.seed
    return {**extra, **result.to_json()}


def read_journal(path: Path) -> JournalState:
    """Read a journal for ``--resume``; a torn last line (a kill mid-write) is ignored."""
    from stabcheck.run.resultio import probe_result_from_json

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read journal {path}: {exc.strerror or exc}") from None
    probe_ids: list[str] | None = None
    identity: dict[str, Any] = {}
    results: dict[tuple[str, str, int | None, int], ProbeResult] = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise InputError(f"journal {path} line {number} is not JSON") from None
        if record.get("type") in ("run", "resumed") and probe_ids is None:
            probe_ids = list(record.get("probes") or [])
            identity = {k: v for k, v in (record.get("config") or {}).items()
                        if k not in NOT_IDENTITY}
            # a journal from before the backend was a setting: its probes ran TensorFlow
            identity.setdefault("backend", "tensorflow")
        elif record.get("type") in ("probe", "seed_probe") and isinstance(
                record.get("job"), dict):
            job = record["job"]
            result = probe_result_from_json(record)
            probe = replace(result.probe, stage=str(job.get("stage") or ""),
                            rungs=tuple(int(r) for r in job.get("rungs") or ()))
            seed = job.get("seed")
            key = Job(probe, None if seed is None else int(seed)).key
            results[key] = ProbeResult(replace(result.run, probe=probe), result.verdict)
    if probe_ids is None:
        raise InputError(f"{path} is not a stabcheck journal (no run record)")
    return JournalState(probe_ids, identity, results)
