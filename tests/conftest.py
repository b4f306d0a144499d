"""Shared helpers: run the real engine in-process (the test process never imports
TensorFlow: only the probe workers do) and validate every JSON result it produces.

Tests that start processes (stabcheck, its workers, a Python child) are marked ``e2e``
(those that use ``probe_run`` are marked here); ``make test-fast`` deselects them and sets
``STABCHECK_TEST_FAST=1``, under which starting a process or importing TensorFlow, Keras,
JAX or PyTorch fails the test that does it: a test that needs one and is not marked
cannot slip into the fast loop.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from stabcheck.config.settings import build_settings
from stabcheck.judge.summary import summarize
from stabcheck.report.json import load_schema, write_json
from stabcheck.results import RunReport
from stabcheck.run.engine import run_probe_grid

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
FAST = os.environ.get("STABCHECK_TEST_FAST") == "1"
_FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "probe_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


class _NoFrameworks(importlib.abc.MetaPathFinder):
    """Under ``STABCHECK_TEST_FAST=1``: importing a framework is a test that is not fast."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _FRAMEWORKS:
            raise ImportError(f"{name} imported by a test of the fast loop: mark it e2e")
        return None


def _no_processes(self, *args, **kwargs):
    raise RuntimeError("a process started by a test of the fast loop: mark it e2e")


if FAST:
    sys.meta_path.insert(0, _NoFrameworks())
    subprocess.Popen.__init__ = _no_processes  # type: ignore[method-assign]


def validate_result(report: RunReport, tmp_path: Path) -> dict:
    """Write the report as the CLI would, parse it strictly and validate it."""
    path = tmp_path / "result.json"
    write_json(report, summarize(report), path)

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
