"""``stabcheck memory`` from the outside: a real batch-size ladder under a 640 MiB budget.

Batch 32 fits, batch 16384 of a memory-hungry model on the digits does not (the kernel's
OOM killer ends it in its memory cgroup, or the watchdog where no cgroup can be made). The
ladder measures in between, forecasts the largest batch size that fits with the safety
margin, verifies that forecast by a real run under the same budget, and measures the
remedies for the smallest batch size that did not fit. The model
(``fixtures/memory_models.py:hungry``, ~300 KiB per sample) puts the limit near batch
1,000, where a CPU step takes a second: the whole ladder takes about 100 s on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from stabcheck.report.json import load_schema
from tests.conftest import FIXTURES

GIB = 1 << 30
BUDGET = 640 << 20
COMMAND = ["memory", "--model", f"{FIXTURES / 'memory_models.py'}:hungry", "--data",
           "builtin:digits-large", "--batch-size", "32,16384", "--memory-budget", "640MiB",
           "--timeout", "120"]


@pytest.fixture(scope="module")
def ladder(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the ladder once (about 100 s on two cores): (the process, its JSON)."""
    folder = tmp_path_factory.mktemp("memory")
    # 120 columns: the table's cells do not wrap ("fits: forecast verified" on one line).
    done = subprocess.run([sys.executable, "-m", "stabcheck", *COMMAND, "--json", "result.json"],
                          cwd=folder, capture_output=True, text=True, timeout=280,
                          env={**os.environ, "COLUMNS": "120"})

    def reject(token: str) -> None:
        raise ValueError(f"non-strict JSON token {token}")

    assert (folder / "result.json").exists(), done.stderr[-3000:]
    data = json.loads((folder / "result.json").read_text(), parse_constant=reject)
    Draft202012Validator(load_schema()).validate(data)
    return done, data


def flat(text: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.mark.slow
def test_memory_ladder_exit_code_and_report_section(ladder):
    done, _ = ladder
    # Batch 16384 is OOM-killed: a memory failure, which the default --fail-on counts.
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "Memory per batch size" in done.stdout
    text = flat(done.stdout)
    assert "fits: forecast verified" in text
    assert "largest batch size that fits with a 5% margin" in text
    assert "needs about" in text and "budget 640.0 MiB: was OOM-killed" in text
    assert "JSON result written to result.json" in text


@pytest.mark.slow
def test_memory_ladder_forecast_is_verified_by_a_real_run(ladder):
    _, data = ladder
    memory = data["memory"]
    assert memory["budget_bytes"] == BUDGET
    assert memory["enforcement"] in ("cgroup-v1", "cgroup-v2", "watchdog")
    points = {p["batch_size"]: p for p in memory["points"]}
    assert points[32]["fits"] is True
    assert points[16384]["fits"] is False and points[16384]["outcome"] == "oom_host"
    assert len([p for p in points.values() if p["fits"]]) >= 2  # enough for a line
    fit = memory["fit"]
    assert fit is not None and fit["bytes_per_sample"] > 0

    forecast = memory["forecast_batch_size"]
    assert forecast is not None and 32 < forecast < 16384 and forecast % 8 == 0
    verified = memory["verified"]
    assert verified is not None
    assert verified["batch_size"] == forecast
    assert verified["fits"] is True, verified
    assert verified["peak_bytes"] <= BUDGET
    assert verified["probe_id"] in {p["id"] for p in data["probes"]}
    # The forecast peak against the peak that real run measured: within the safety margin
    # the ladder keeps below the budget (measured: within 1%), which is what the margin is
    # for; a forecast off by more is caught by the verifying run and revised.
    error = memory["forecast_error"]
    assert error is not None
    assert abs(memory["forecast_peak_bytes"] - verified["peak_bytes"]) <= memory["margin"] * BUDGET
    expected = (memory["forecast_peak_bytes"] - verified["peak_bytes"]) / verified["peak_bytes"]
    assert error == pytest.approx(expected)
    # The forecast stays inside the budget less its safety margin.
    assert memory["forecast_peak_bytes"] <= BUDGET * (1 - memory["margin"]) + 1

    # The OOM-killed probe carries its memory evidence.
    killed = [p for p in data["probes"] if p["settings"]["batch_size"] == 16384
              and p["outcome"] == "oom_host"]
    assert killed and killed[0]["category"] == "memory"

    # The remedies for the smallest batch size that did not fit were measured, not only
    # suggested: gradient accumulation of that batch fits, bfloat16 saves memory.
    smallest = min(p["batch_size"] for p in memory["points"] if not p["fits"])
    accumulation = memory["accumulation"]
    assert accumulation and accumulation[0]["batch_size"] == smallest
    assert accumulation[0]["fits"]
    assert (accumulation[0]["micro_batch_size"] * accumulation[0]["accumulation_steps"]
            == smallest)
    mixed = memory["mixed_precision"]
    assert mixed is not None and mixed["batch_size"] == smallest
    assert mixed["peak_bytes"] < fit["intercept_bytes"] + fit["bytes_per_sample"] * smallest


@pytest.mark.slow
def test_memory_advice_names_a_batch_size_that_fits(ladder):
    done, _ = ladder
    text = flat(done.stdout)
    assert "batch size 16384 exhausted host memory" in text
    assert "the largest batch size that ran was 16384" not in text


@pytest.mark.slow
def test_a_far_forecast_is_approached_by_measurements_before_it_is_verified(tmp_path):
    """A tiny model fits huge batches: two small batch sizes alone would extrapolate
    wildly. The ladder measures on the way to the forecast, then verifies it."""
    done = subprocess.run(
        [sys.executable, "-m", "stabcheck", "memory", "--model", "builtin:mlp", "--data",
         "builtin:breast_cancer", "--batch-size", "32,256", "--memory-budget", "1GiB",
         "--timeout", "120", "--json", "result.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "result.json").read_text())
    memory = data["memory"]
    assert memory["forecast_batch_size"] is not None
    assert memory["verified"]["fits"] is True
    assert len(memory["points"]) > 2  # rungs measured between 256 and the forecast
    assert memory["forecast_batch_size"] <= 4 * max(p["batch_size"] for p in memory["points"])
    # What the ladder guarantees is the verifying run under the budget (above); the forecast's
    # error is bounded here by the safety margin it keeps below the budget for this very
    # error (5% of 1 GiB = 51 MiB). The peaks of these batch sizes differ by kilobytes on a
    # 260 MiB worker, so the error is that baseline from one process to the next: measured
    # 0.09-0.17% in three runs; one run elsewhere measured 18.6% (48 MiB), which the old
    # bound, 15% of the measured peak, failed although the forecast had been verified.
    verified = memory["verified"]
    assert (abs(memory["forecast_peak_bytes"] - verified["peak_bytes"])
            <= memory["margin"] * memory["budget_bytes"])
    # Where the budget charged more than the worker's own memory and the first forecast was
    # killed, it was revised downward, and only the search's own probes ran out.
    for rejected in memory["rejected_forecasts"]:
        assert not rejected["fits"] and rejected["batch_size"] > memory["forecast_batch_size"]
    out_of_memory = [p["id"] for p in data["probes"] if p["category"] == "memory"]
    assert all(pid.startswith("verify:") for pid in out_of_memory), out_of_memory


@pytest.mark.slow
def test_a_forecast_killed_under_the_budget_is_revised_and_the_revision_verified(tmp_path):
    """A user layer whose memory grows with the square of the batch (a Gram matrix over the
    batch): the line through the two largest sizes forecasts about 14900, which needs
    ~1.1 GiB and is killed by the kernel; the ladder revises it below the failure and
    verifies the revision. Only stabcheck's own check ran out, so the run passes."""
    model = f"{FIXTURES / 'user_models.py'}:quadratic"
    # fit caps a batch at the data: enough rows (breast_cancer, tiled 50-fold) for 10240.
    from stabcheck.inputs.data import load_dataset

    source = load_dataset("builtin:breast_cancer", holdout=0.2)
    np.savez(tmp_path / "large.npz", x=np.tile(source.x_train, (50, 1)),
             y=np.tile(source.y_train, 50), x_val=source.x_val, y_val=source.y_val)
    done = subprocess.run(
        [sys.executable, "-m", "stabcheck", "memory", "--model", model, "--data",
         "large.npz", "--batch-size", "32,256,6144,10240", "--memory-budget",
         "1GiB", "--timeout", "120", "--json", "result.json", "--junit", "result.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "result.json").read_text())
    memory = data["memory"]
    assert memory["fit"]["method"] == "top_segment"
    rejected = memory["rejected_forecasts"]
    assert rejected and all(not p["fits"] and p["outcome"] == "oom_host" for p in rejected)
    verified = memory["verified"]
    assert verified["fits"] and verified["peak_bytes"] <= GIB
    assert 10240 < memory["forecast_batch_size"] < min(p["batch_size"] for p in rejected)
    out_of_memory = [p["id"] for p in data["probes"] if p["category"] == "memory"]
    assert out_of_memory and all(pid.startswith("verify:") for pid in out_of_memory)
    text = flat(done.stdout)
    assert f"an earlier forecast, batch {rejected[0]['batch_size']}, was checked and did " \
        "not fit (oom_host" in text
    assert "forecast revised:" in text  # its verdict in the table (the cell may wrap)
    assert "failures=\"0\"" in (tmp_path / "result.xml").read_text()
