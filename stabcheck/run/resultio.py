"""Read a saved result back: the ``--json`` file of ``stabcheck probe`` -> ``RunReport``.

``stabcheck report RESULT.json`` re-renders a run from this without re-running anything, so
what comes back must render as the original did: ``load_report(p).to_json()`` equals the
file's content for every result the engine writes. What the JSON does not hold is rebuilt
from what it does hold:

- a step's loss and gradient norm: ``null`` in a history comes back as NaN (which
  ``to_json`` writes as ``null`` again); steps are numbered from 1 as the worker numbers them;
- a probe's memory budget and its enforcement: the evidence where it names them, else the
  run's ``config.memory_budget`` and ``environment.memory_enforcement``;
- how the probe ended (``Termination``): from its outcome and evidence.

Unknown keys are ignored (newer versions may add fields); a file that is missing, not JSON,
or not a stabcheck result raises ``InputError`` with one line naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from stabcheck.errors import InputError
from stabcheck.results import (
    SCHEMA_VERSION,
    DatasetSummary,
    MemoryEvidence,
    Outcome,
    Probe,
    ProbeResult,
    ProbeRun,
    ProbeSettings,
    RungEval,
    RunReport,
    SeedProbe,
    StepRecord,
    Termination,
    Verdict,
    holdout_from_json,
)
from stabcheck.system.forecast import MemoryReport

__all__ = ["load_report", "report_from_json"]

# How a probe whose evidence says nothing more ended, by outcome.
_TERMINATION: dict[Outcome, Termination] = {
    Outcome.STABLE: Termination.COMPLETED,
    Outcome.NON_FINITE: Termination.NON_FINITE,
    Outcome.DIVERGED: Termination.COMPLETED,
    Outcome.EXPLODING_GRADIENTS: Termination.COMPLETED,
    Outcome.STALLED: Termination.COMPLETED,
    Outcome.MINORITY_COLLAPSE: Termination.COMPLETED,
    Outcome.OVERCORRECTED: Termination.COMPLETED,
    Outcome.OOM_HOST: Termination.DIED,
    Outcome.OOM_GPU: Termination.EXCEPTION,
    Outcome.CRASHED: Termination.DIED,
    Outcome.TIMEOUT: Termination.TIMEOUT,
    Outcome.ERROR: Termination.EXCEPTION,
}



def load_report(path: Path | str) -> RunReport:
    """Read a ``stabcheck probe --json`` result file.

    Args:
        path: the JSON file.

    Returns:
        The run as ``stabcheck probe`` produced it, ready to render.

    Raises:
        InputError: the file is missing, unreadable, not JSON, or not a stabcheck result.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"result file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read result file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a JSON file: {exc}") from None
    try:
        return report_from_json(data)
    except InputError as exc:
        raise InputError(f"{path} is not a stabcheck result: {exc}") from None


def report_from_json(data: Any) -> RunReport:
    """Rebuild a ``RunReport`` from the dict ``RunReport.to_json`` made.

    Raises:
        InputError: ``data`` does not have the shape of a stabcheck result (says where).
    """
    if not isinstance(data, dict) or "probes" not in data or "schema_version" not in data:
        raise InputError("expected an object with schema_version and probes")
    version = data["schema_version"]
    if version != SCHEMA_VERSION:
        raise InputError(
            f"schema_version {version!r} is not supported (this stabcheck reads "
            f"{SCHEMA_VERSION})"
        )
    try:
        environment = dict(data.get("environment") or {})
        config = dict(data.get("config") or {})
        probes = data["probes"]
        if not isinstance(probes, list):
            raise InputError("probes must be a list")
        results = tuple(
            _result(p, environment, config, index) for index, p in enumerate(probes)
        )
        return RunReport(
            stabcheck_version=str(data["stabcheck_version"]),
            environment=environment,
            dataset=_dataset(data["dataset"]),
            class_weight_table=dict(data.get("class_weight_strategies") or {}),
            results=results,
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            config=config,
            interrupted=bool(data.get("interrupted", False)),
            probes_planned=int(data.get("probes_planned", len(results))),
            memory=MemoryReport.from_json(data["memory"]) if data.get("memory") else None,
            seeds=int(data.get("seeds", 1)),
            seed_probes=tuple(
                SeedProbe(int(p["seed"]), _result(p, environment, config, index))
                for index, p in enumerate(data.get("seed_probes") or ())),
            schedule=dict(data.get("schedule") or {}),
        )
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(what) from None


def _dataset(data: dict[str, Any]) -> DatasetSummary:
    counts = data["class_counts"]
    return DatasetSummary(
        source=str(data["source"]),
        n_samples=int(data["n_samples"]),
        n_total=int(data["n_total"]),
        n_holdout=int(data["n_holdout"]),
        class_names=tuple(str(name) for name in counts),
        class_counts=tuple(int(count) for count in counts.values()),
        input_shape=tuple(data["input_shape"]),
        label_format=str(data["label_format"]),
        task=str(data.get("task") or "classification"),
        target=data.get("target"),
    )


def _float(value: Any) -> float:
    """A history entry: ``null`` was a non-finite value."""
    return math.nan if value is None else float(value)


def probe_result_from_json(
    data: dict[str, Any], environment: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> ProbeResult:
    """Rebuild one probe's ``ProbeResult`` from its JSON (a result's or a journal's)."""
    return _result(data, environment or {}, config or {}, 0)


def _result(
    data: dict[str, Any], environment: dict[str, Any], config: dict[str, Any], index: int
) -> ProbeResult:
    try:
        outcome = Outcome(data["outcome"])
    except ValueError:
        raise InputError(f"probe {index}: unknown outcome {data['outcome']!r}") from None
    settings = _settings(data["settings"])
    probe = Probe(str(data["id"]), settings, int(data.get("steps_planned", 0)))
    losses = data.get("loss_history") or []
    norms = data.get("grad_norm_history") or []
    if len(losses) != len(norms):
        raise InputError(
            f"probe {data['id']}: loss_history and grad_norm_history differ in length "
            f"({len(losses)} and {len(norms)})"
        )
    steps = tuple(
        StepRecord(i + 1, _float(loss), _float(norm))
        for i, (loss, norm) in enumerate(zip(losses, norms, strict=True))
    )
    evidence = dict(data.get("evidence") or {})
    budget = evidence.get("budget_bytes", config.get("memory_budget"))
    enforcement = evidence.get("enforcement")
    if enforcement is None and budget is not None:
        enforcement = environment.get("memory_enforcement")
    memory = MemoryEvidence(
        peak_host_bytes=data.get("peak_host_bytes"),
        budget_bytes=budget if isinstance(budget, int) else None,
        enforcement=enforcement if isinstance(enforcement, str) else None,
        oom_kills=int(evidence.get("oom_kills") or 0),
        system_oom=evidence.get("oom_evidence") == "system",
    )
    returncode = evidence.get("returncode")
    run = ProbeRun(
        probe=probe,
        termination=_termination(outcome, evidence),
        steps=steps,
        returncode=returncode if isinstance(returncode, int) else None,
        memory=memory,
        peak_gpu_bytes=data.get("peak_gpu_bytes"),
        stderr_tail=str(evidence.get("stderr_tail") or ""),
        duration_s=float(data.get("duration_s", 0.0)),
        holdout=holdout_from_json(data["holdout"]) if data.get("holdout") else None,
        rungs=tuple(RungEval.from_json(r) for r in data.get("rungs") or ()),
    )
    return ProbeResult(run, Verdict(outcome, evidence, str(data.get("summary", ""))))


def _settings(data: dict[str, Any]) -> ProbeSettings:
    """The settings' known fields (required ones must be there); unknown keys are ignored."""
    known = {f.name: f for f in fields(ProbeSettings)}
    missing = [
        name for name, f in known.items()
        if name not in data and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise InputError(f"probe settings lack {', '.join(missing)}")
    return ProbeSettings(**{k: v for k, v in data.items() if k in known})


def _termination(outcome: Outcome, evidence: dict[str, Any]) -> Termination:
    if evidence.get("ran") is False:
        return Termination.NOT_RUN
    if evidence.get("enforced_by") == "watchdog":
        return Termination.OVER_BUDGET
    if outcome in (Outcome.OOM_HOST, Outcome.OOM_GPU) and "exception_type" in evidence:
        return Termination.EXCEPTION
    if outcome is Outcome.OOM_GPU and "signal" in evidence:
        return Termination.DIED
    return _TERMINATION[outcome]
