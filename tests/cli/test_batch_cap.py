"""A batch size larger than the training sample, for real: ``fit`` caps a batch at the
data it has, so the probe trains on the whole sample a step, its settings say so, the
report says so once, and the memory ladder neither plans nor forecasts beyond it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rich.console import Console

from stabcheck.judge.summary import summarize
from stabcheck.report.terminal.report import render_report

NOTE = "batch 16384 is larger than the 569 training samples: probed as 569, as fit would"


def test_a_batch_above_the_sample_is_probed_as_the_sample_and_capped_in_the_ladder(probe_run):
    report, data, _ = probe_run(model="builtin:mlp", data="builtin:breast_cancer",
                                class_weight=["none"], lr=["0.01"], steps=3,
                                batch_size=["32", "16384"], memory_budget="2GiB")
    assert report.dataset.n_samples == 456
    settings = {p["id"]: p["settings"] for p in data["probes"]}
    assert "effective_batch_size" not in settings["cw=none,lr=0.01,clip=none,bs=32"]
    assert settings["cw=none,lr=0.01,clip=none,bs=16384"]["effective_batch_size"] == 569
    assert {p["outcome"] for p in data["probes"]} == {"stable"}

    memory = data["memory"]
    assert memory["training_samples"] == 569 and memory["forecast_capped"] is True
    assert memory["forecast_batch_size"] == 569
    assert [p["batch_size"] for p in memory["points"]] == [32, 569]
    assert memory["verified"]["batch_size"] == 569 and memory["verified"]["fits"]
    trained = [p["settings"].get("effective_batch_size") or p["settings"]["batch_size"]
               for p in data["probes"]]
    assert max(trained) <= 569  # the rows the data holds (456 sampled, repeated)

    console = Console(record=True, width=200, force_terminal=False)
    render_report(report, summarize(report), console)
    text = console.export_text()
    assert text.count(NOTE) == 1
    assert "every batch size up to the 569 training samples fits" in text


@pytest.mark.slow  # the note once: the test above renders the report
@pytest.mark.e2e
def test_the_cli_says_so_once(tmp_path):
    done = subprocess.run([sys.executable, "-m", "stabcheck", "probe", "--model", "builtin:mlp",
                           "--data", "builtin:breast_cancer", "--class-weight", "none",
                           "--lr", "0.01,0.1", "--steps", "3", "--seeds", "1",
                           "--batch-size", "16384"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " ".join(done.stdout.split()).count(NOTE) == 1  # two probes, one sentence
