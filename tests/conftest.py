"""Shared helpers: run the real engine in-process (the test process never imports
TensorFlow: only the probe workers do) and validate every JSON result it produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from stabcheck.config.settings import build_settings
from stabcheck.run.engine import run_probe_grid
from stabcheck.report.terminal.report import load_schema, write_json
from stabcheck.results import RunReport

FIXTURES = Path(__file__).parent / "fixtures"


def validate_result(report: RunReport, tmp_path: Path) -> dict:
    """Write the report as the CLI would, parse it strictly and validate it."""
    path = tmp_path / "result.json"
    write_json(report, path)

    def reject(token: str) -> None:
        raise ValueError(f"non-strict JSON token {token}")

    data = json.loads(path.read_text(), parse_constant=reject)
    Draft202012Validator(load_schema()).validate(data)
    return data


@pytest.fixture
def probe_run(tmp_path: Path):
    """Run ``stabcheck probe`` in-process with flags; returns (report, json dict, journal)."""

    def run(config: str | None = None, **flags) -> tuple[RunReport, dict, list[dict]]:
        """``config``: the text of a TOML config file to merge the flags into."""
        journal = tmp_path / "journal.jsonl"
        flags.setdefault("journal", str(journal))
        flags.setdefault("timeout", 120)
        # One worker unless a test asks for more: results then arrive in plan order and
        # a file-counted fault (tests/fixtures/user_models.py) trips exactly once.
        flags.setdefault("workers", 1)
        # No re-probes of the recommendation's finalists unless a test asks (--seeds):
        # each extra seed starts a worker, and most tests are about the grid.
        flags.setdefault("seeds", 1)
        config_path = None
        if config is not None:
            config_path = tmp_path / "probe-run.toml"
            config_path.write_text(config)
        report = run_probe_grid(build_settings(config_path, flags))
        data = validate_result(report, tmp_path)
        lines = [json.loads(line) for line in Path(flags["journal"]).read_text().splitlines()]
        return report, data, lines

    return run


def outcomes(report: RunReport) -> dict[str, str]:
    return {r.probe.id: r.verdict.outcome.value for r in report.results}
