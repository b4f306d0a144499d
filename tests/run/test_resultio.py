"""Reading a saved result back: exact round trip, and re-rendering equal to the original."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from stabcheck.errors import InputError
from stabcheck.judge.summary import summarize
from stabcheck.report.json import result_json, write_json
from stabcheck.report.terminal.report import render_report
from stabcheck.run.resultio import load_report, report_from_json
from tests.sample_report import make_report

WIDTH = 110


def _rendered(report) -> str:
    buffer = io.StringIO()
    render_report(report, summarize(report), Console(file=buffer, width=WIDTH, color_system=None))
    return buffer.getvalue()


def test_a_real_run_round_trips_exactly_and_re_renders_as_the_original(
    probe_run, tmp_path: Path
):
    """A real probe grid (tiny MLP, SGD, x100 weights, a learning rate that ends in NaN)."""
    report, data, _journal = probe_run(
        model="builtin:mlp", data="builtin:breast_cancer", optimizer="sgd",
        class_weight=["x100"], lr=["0.01", "1.0"], steps=20)
    path = tmp_path / "result.json"  # where the fixture wrote it, as --json would
    assert json.loads(path.read_text()) == data
    assert "numerical" in {p["category"] for p in data["probes"]}, "lr=1.0 should fail"
    loaded = load_report(path)
    # write_json wrote result_json(report, summarize(report))
    assert result_json(loaded, summarize(loaded)) == data
    assert result_json(report_from_json(data), summarize(report_from_json(data))) == data
    assert data["recommended_configuration"] == result_json(
        report, summarize(report))["recommended_configuration"]

    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run([sys.executable, "-m", "stabcheck", "report", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout == _rendered(report)
    assert done.returncode == 1, done.stderr  # a numerical failure, saved default policy

    out = tmp_path / "out"
    again = subprocess.run(
        [sys.executable, "-m", "stabcheck", "report", str(path), "--fail-on", "none",
         "--junit", str(out / "j.xml"), "--markdown", str(out / "s.md"),
         "--html", str(out / "r.html")],
        capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout == _rendered(report) + (
        f"JUnit XML written to {out / 'j.xml'}\n"
        f"Markdown summary written to {out / 's.md'}\n"
        f"HTML report written to {out / 'r.html'}\n")
    assert (out / "s.md").read_text().startswith("## ✅ stabcheck: 2 probes passed")
    assert again.stderr == ""


def test_round_trip_keeps_nan_and_inf_evidence_and_null_histories(tmp_path: Path):
    path = tmp_path / "sample.json"
    write_json(make_report(), summarize(make_report()), path)
    data = json.loads(path.read_text())
    nan = next(p for p in data["probes"] if p["outcome"] == "non_finite")
    assert nan["loss_history"][-1] is None and nan["evidence"]["value"] == "nan"
    exploding = next(p for p in data["probes"] if p["outcome"] == "exploding_gradients")
    assert exploding["evidence"]["peak_grad_norm"] == "inf"
    loaded = load_report(path)
    assert result_json(loaded, summarize(loaded)) == data
    assert _rendered(loaded) == _rendered(make_report())


def test_extra_keys_are_ignored(tmp_path: Path):
    path = tmp_path / "sample.json"
    write_json(make_report(), summarize(make_report()), path)
    data = json.loads(path.read_text())
    extended = json.loads(json.dumps(data))
    extended["future_field"] = {"x": 1}
    extended["probes"][0]["future_probe_field"] = [1, 2]
    extended["probes"][0]["settings"]["future_setting"] = "y"
    extended["dataset"]["future_dataset_field"] = 3
    path.write_text(json.dumps(extended))
    assert result_json(load_report(path), summarize(load_report(path))) == data


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "result.json"
    path.write_text(content)
    return path


def _sample(**changes) -> str:
    data = json.loads(json.dumps(make_report().to_json(), allow_nan=False))
    for key, value in changes.items():
        if key.startswith("probe0_"):
            data["probes"][0][key.removeprefix("probe0_")] = value
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize("content, message", [
    (None, "result file not found"),
    ("{not json", "is not a JSON file"),
    ("[1, 2]", "is not a stabcheck result: expected an object with schema_version and probes"),
    ('{"name": "package.json"}', "is not a stabcheck result"),
    (_sample(schema_version=99), "schema_version 99 is not supported"),
    (_sample(probe0_outcome="exploded"), "unknown outcome 'exploded'"),
    (_sample(probe0_settings={"clip": "none"}), "probe settings lack class_weight"),
    (_sample(probe0_loss_history=[1.0]), "differ in length"),
    (_sample(dataset={}), "missing key 'class_counts'"),
    (_sample(probes={"a": 1}), "probes must be a list"),
])
def test_bad_files_raise_one_line_input_errors(tmp_path: Path, content, message):
    path = tmp_path / "missing.json" if content is None else _write(tmp_path, content)
    with pytest.raises(InputError) as caught:
        load_report(path)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert str(path) in text
