"""How a stabcheck run spent its steps, read from its JSON result and its journal.

Pure (no I/O but the journal's lines, no framework): ``spent(report, journal_lines,
...)`` returns the figures; ``line(figures, ...)`` the report's "how the steps were spent"
line. Fields the engine may or may not write are read with ``.get``: per probe
``steps_completed``, ``steps_planned``, ``duration_s`` (always there), ``rungs`` and
``decided_at_step`` (where the engine spends steps adaptively), the top-level
``schedule``; the re-probes of the recommendation's finalists (``seed_probes``) and the
memory ladder's probes (the journal's ``memory_probe`` records) are counted apart from
the grid's probes.
"""

from __future__ import annotations

import collections
import json
import statistics
from collections.abc import Iterable
from typing import Any


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


_ENDED = ("memory", "crash", "error")


def _ran(probe: dict) -> bool:
    """False for a probe the engine inferred instead of running (e.g. a batch size whose
    first probe ran out of memory)."""
    evidence = probe.get("evidence") or {}
    return evidence.get("ran") is not False and "inferred_from" not in evidence


def _rung_count(value: Any) -> int | None:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return len(value)
    return None


def _probes(records: Iterable[dict]) -> dict:
    records = list(records)
    return {
        "n": len(records),
        "steps": sum(_int(p.get("steps_completed")) for p in records),
        "duration_s": sum(float(p.get("duration_s") or 0.0) for p in records),
    }


def memory_probes(journal_lines: Iterable[str]) -> list[dict]:
    """The journal's ``memory_probe`` records (the memory ladder's probes)."""
    out = []
    for text in journal_lines:
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("type") == "memory_probe":
            out.append(record)
    return out


def spent(report: dict, journal_lines: Iterable[str], *, steps: int) -> dict:
    """The figures of how ``report``'s run spent its steps (``steps``: the grid's --steps)."""
    probes = report.get("probes") or []
    ran = [p for p in probes if _ran(p)]
    inferred = len(probes) - len(ran)
    ended = [p for p in ran if p.get("category") in _ENDED]  # the worker died or raised
    trained = [p for p in ran if p.get("category") not in _ENDED]
    planned = [_int(p.get("steps_planned")) or steps for p in trained]
    done = [_int(p.get("steps_completed")) for p in trained]
    rungs = [_rung_count(p.get("rungs")) for p in probes if "rungs" in p]
    decided = [_int(p.get("decided_at_step")) for p in probes
               if p.get("decided_at_step") is not None]
    memory = memory_probes(journal_lines)
    seeds = report.get("seed_probes") or []
    return {
        "grid": {
            "n": len(probes),
            "ran": len(ran),
            "inferred": inferred,
            "ended_by_failure": len(ended),
            "steps": sum(done) + sum(_int(p.get("steps_completed")) for p in ended),
            "steps_planned": sum(planned),
            "stopped_early": sum(1 for d, p in zip(done, planned, strict=True) if d < p),
            "past_planned": sum(1 for d, p in zip(done, planned, strict=True) if d > p),
            "at_most_steps": sum(1 for d in done if d <= steps),
            "duration_s": sum(float(p.get("duration_s") or 0.0) for p in probes),
            "outcomes": dict(collections.Counter(p.get("outcome") for p in probes)),
            "rungs": (dict(sorted(collections.Counter(r for r in rungs if r is not None).items()))
                      if rungs else None),
            "decided_at_step": ({"n": len(decided), "median": statistics.median(decided),
                                 "max": max(decided)} if decided else None),
        },
        "seed_probes": _probes(seeds),
        "memory_probes": {
            **_probes(memory),
            "batch_sizes": sorted({_int((m.get("settings") or {}).get("batch_size"))
                                   for m in memory} - {0}),
        },
        "schedule": report.get("schedule"),
        "seeds": report.get("seeds"),
    }


def line(figures: dict, *, n_settings: int, steps: int) -> str:
    """"how the steps were spent": the steps run against the fit loop's settings x steps."""
    g, seeds, memory = figures["grid"], figures["seed_probes"], figures["memory_probes"]
    fit_steps = n_settings * steps
    total = g["steps"] + seeds["steps"]
    parts = [f"{total:,} steps run ({g['steps']:,} grid + {seeds['steps']:,} in "
             f"{seeds['n']} seed re-probes) against the fit loop's {n_settings} x {steps} = "
             f"{fit_steps:,} ({total / fit_steps:.0%})" if fit_steps else "n/a"]
    trained = g["ran"] - g["ended_by_failure"]
    parts.append(f"{g['stopped_early']} of {trained} probes that trained stopped early"
                 + (f", {g['past_planned']} went past --steps" if g["past_planned"] else "")
                 + (f"; {g['ended_by_failure']} ended by OOM/crash/error"
                    if g["ended_by_failure"] else "")
                 + (f", {g['inferred']} inferred without running" if g["inferred"] else ""))
    if memory["n"]:
        sizes = memory["batch_sizes"]
        shown = f" at batch {sizes[0]}-{sizes[-1]}" if len(sizes) > 1 else (
            f" at batch {sizes[0]}" if sizes else "")
        parts.append(f"memory ladder {memory['n']} probes, {memory['steps']} steps{shown} "
                     f"({memory['duration_s']:.1f} s)")
    if g["rungs"]:
        parts.append("rungs " + ", ".join(f"{k}: {v}" for k, v in g["rungs"].items()))
    if g["decided_at_step"]:
        d = g["decided_at_step"]
        parts.append(f"decided at step {d['median']:g} (median of {d['n']}, max {d['max']})")
    parts.append(f"probe time {g['duration_s']:.1f} s grid + {seeds['duration_s']:.1f} s seeds")
    if figures.get("schedule") is not None:
        text = json.dumps(figures["schedule"], separators=(",", ":"), default=str)
        parts.append(f"schedule {text[:160]}{'...' if len(text) > 160 else ''}")
    return "; ".join(parts)
