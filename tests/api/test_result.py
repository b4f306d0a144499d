"""``api.result`` and ``api.progress`` on the hand-made report: the answers and the views of
a ``Result``, and the progress bars, without a run."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

from stabcheck.api import progress as bars
from stabcheck.api.result import Result
from stabcheck.judge.gate import fails, parse_fail_on
from stabcheck.judge.summary import summarize
from stabcheck.report.json import load_schema, result_json
from stabcheck.results import RunReport
from stabcheck.run.engine import Progress
from tests.sample_report import make_report


@pytest.fixture(scope="module")
def report() -> RunReport:
    return make_report()


@pytest.fixture(scope="module")
def result(report) -> Result:
    return Result.of(report)


def test_a_result_is_the_run_report(result, report):
    assert isinstance(result, RunReport)
    assert result.as_run_report() == report
    assert result.to_json() == result_json(report, summarize(report))
    Draft202012Validator(load_schema()).validate(json.loads(json.dumps(result.to_json())))


def test_failures_are_those_the_policy_fails(result):
    policy = parse_fail_on(result.config.get("fail_on") or ("numerical", "memory", "crash",
                                                            "error"))
    assert result.failures == tuple(r for r in result.results if fails(r, policy))
    assert result.failures and all(r.verdict.category.value != "ok" for r in result.failures)


def test_recommended_is_compile_and_fit_arguments(result):
    rec = result.recommended
    plain = result.as_run_report()
    chosen = result_json(plain, summarize(plain))["recommended_configuration"]
    assert rec.probe_id == chosen["probe_id"]
    assert rec.compile == {"optimizer": {"class_name": "adam", "config": {
        "learning_rate": chosen["learning_rate"]}}}
    table = result.class_weight_table[chosen["class_weight"]]
    assert rec.fit == {"batch_size": chosen["batch_size"], "class_weight": None if table is None
                       else {int(k): v for k, v in table.items()}}
    assert repr(rec).startswith(f"<Recommendation {rec.probe_id}: adam lr=")


def test_the_views(result, tmp_path):
    assert repr(result).startswith(f"<stabcheck Result: {len(result.results)} probes, "
                                   f"{len(result.failures)} failed (")
    text = str(result)
    assert "probe report" in text and "\x1b[" not in text
    frame = result._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"&lt;!doctype html&gt;") and "<script" not in frame
    console = Console(file=io.StringIO(), width=100, force_terminal=True)
    console.print(result)
    assert "probe report" in console.file.getvalue() and "\x1b[" in console.file.getvalue()
    result.write_html(tmp_path / "r.html")
    result.write_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(
        json.dumps(result.to_json()))


def _events(report: RunReport) -> list[Progress]:
    first, second = report.results[:2]
    return [Progress("loading", "loading data"), Progress("planned", total=2),
            Progress("step", probe=first.probe, step=3, total=2),
            Progress("result", probe=first.probe, result=first, step=1, total=2),
            Progress("result", probe=second.probe, result=second, step=2, total=2)]


def test_the_jupyter_bar_updates_one_display(report, monkeypatch):
    shown: list[str] = []

    class Handle:
        def update(self, html):
            shown.append(html)

    display = types.ModuleType("IPython.display")
    display.HTML = lambda text: text
    display.display = lambda html, display_id: shown.append(html) or Handle()
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    bar = bars.JupyterBar()
    for event in _events(report):
        bar.update(event)
    bar.close()
    assert "<progress value='2' max='2'" in shown[-1] and "done 2/2" in shown[-1]
    assert any("loading data" in html for html in shown)


def test_no_bar_where_nothing_can_show_one(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert type(bars.progress_bar(True)) is bars.ProgressBar
    assert type(bars.progress_bar(False)) is bars.ProgressBar
