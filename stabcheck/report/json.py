"""The JSON result file of the contract: ``result_json``, ``write_json``, ``load_schema``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from stabcheck.files import write_text_atomic
from stabcheck.judge.summary import RunSummary
from stabcheck.results import RunReport

SCHEMA_RESOURCE = "result_schema.json"

def _json_default(value: Any) -> Any:
    """Numpy scalars and arrays, should one slip into the report, as plain JSON values."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def result_json(report: RunReport, summary: RunSummary) -> dict[str, Any]:
    """The contract's JSON result of ``report``, as ``write_json`` writes it.

    ``RunReport.to_json()`` plus what its judgement (``summary``:
    ``stabcheck.judge.summary.summarize``, once per run) concludes from it:
    ``recommended_configuration`` (null where nothing is recommended) and
    ``strategy_summary``. Both are derived from the probes alone, so a result read back
    (``resultio.load_report``) and judged again gives the same dict.
    """
    rec = summary.recommendation
    return {
        **report.to_json(),
        "recommended_configuration": None if rec is None else rec.to_json(),
        "strategy_summary": [dict(row) for row in summary.strategies],
    }


def write_json(report: RunReport, summary: RunSummary, path: Path) -> None:
    """Write the contract's strict-JSON result (``result_json``) to ``path``, atomically.

    The text is produced in full before the file is touched (``allow_nan=False``: a NaN
    that slipped past ``RunReport.to_json`` is a bug, not a file), then written to a
    temporary file next to ``path`` and moved over it (``files.write_text_atomic``).

    Args:
        report: the run to write.
        summary: its judgement (``stabcheck.judge.summary.summarize``).
        path: the destination; its folder is created if missing.
    """
    text = json.dumps(
        result_json(report, summary), indent=2, allow_nan=False, ensure_ascii=False,
        default=_json_default,
    )
    write_text_atomic(path, text + "\n")


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the result ``write_json`` writes."""
    text = resources.files("stabcheck.report").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)
