"""report.terminal.header: the class table shows each weight with its significant digits,
and the JSON keeps it at full precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stabcheck.results import Outcome
from tests.conftest import validate_result
from tests.report.terminal.test_report import make_report, make_result, render

TINY = 4.3966e-06  # a custom weight for the common class (1,000 x 4.3966e-06 ~ 500 x 8.8e-06)


def _report():
    report = make_report([make_result(Outcome.STABLE, cw="custom")])
    table = {**report.class_weight_table, "custom": {"0": TINY, "1": 100 / 180}}
    return dataclasses.replace(report, class_weight_table=table)


def test_the_class_table_keeps_a_weights_significant_digits() -> None:
    text = render(_report(), width=140, verbose=True)
    table = text[text.index("Classes and the weight"):text.index("Verdicts")]
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.split()}
    assert rows["0"][-1] == "4.397e-06"  # rounded to 6 decimals it read 4e-06
    assert rows["1"][-1] == "0.5556"


def test_the_json_keeps_the_weights_at_full_precision(tmp_path: Path) -> None:
    data = validate_result(_report(), tmp_path)
    assert data["class_weight_strategies"]["custom"] == {"0": TINY, "1": 100 / 180}
