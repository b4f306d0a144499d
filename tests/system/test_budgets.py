"""Memory exhaustion for real: kernel OOM kills with and without a budget, the ladder's
forecast verified by a real run, GPU OOM through a real worker (planted exception)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stabcheck.system import cgroup, nvml
from tests.conftest import FIXTURES

USER_MODELS = FIXTURES / "user_models.py"
needs_cgroup = pytest.mark.skipif(cgroup.enforcement_method() == "watchdog",
                                  reason="no memory cgroup can be created on this machine")


def test_gpu_allocator_oom_in_a_worker_is_oom_gpu(probe_run, tmp_path, monkeypatch):
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    report, _, _ = probe_run(model=f"{USER_MODELS}:gpu_oom", data="builtin:breast_cancer",
                             class_weight=["none"], lr=["0.001", "0.002"], steps=5)
    first, second = report.results
    assert first.verdict.category.value in ("ok", "learning")  # trained: 5 steps is short
    assert second.verdict.outcome.value == "oom_gpu"
    # TensorFlow raises ResourceExhaustedError; through the user's py_function it arrives
    # as UnknownError with the allocator's text: recognised by type first, text second.
    assert second.verdict.evidence["exception_type"] in ("ResourceExhaustedError",
                                                          "UnknownError")
    assert "OOM when allocating tensor" in second.verdict.evidence["message"]


def test_no_gpu_here_means_no_gpu_figures():
    if nvml.devices():
        pytest.skip("this machine has a GPU")
    assert nvml.process_memory({os.getpid()}) is None


@needs_cgroup
@pytest.mark.slow
def test_kernel_oom_kill_without_a_budget_is_recognised_and_stabcheck_survives(tmp_path):
    """stabcheck runs inside a cgroup of 2 GiB with no --memory-budget; a worker that
    allocates 3 GB is killed by the kernel (workers have oom_score_adj 1000), not
    stabcheck, which reports oom_host with the cgroup's evidence and exits normally."""
    own = cgroup.create_cgroup(2 << 30)
    assert own is not None
    out = tmp_path / "result.json"
    env = {**os.environ, "STABCHECK_TEST_TRIP_FILE": str(tmp_path / "trips"),
           "STABCHECK_TEST_HOG_MB": "3000"}
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", 'echo $$ > "$1"; shift; exec "$@"', "sh", str(own.procs_file),
             sys.executable, "-m", "stabcheck", "probe", "--model", f"{USER_MODELS}:hog",
             "--data", "builtin:breast_cancer", "--class-weight", "none", "--lr", "0.001,0.002",
             # one worker: the trip counts training steps across workers, and two workers
             # that start together would race for the step that trips
             "--workers", "1",
             "--steps", "5", "--json", str(out), "--journal", str(tmp_path / "j.jsonl")],
            capture_output=True, text=True, env=env, timeout=300,
        )
    finally:
        own.remove()
    assert done.returncode == 1, done.stderr  # a memory failure fails the gate; no crash
    probes = json.loads(out.read_text())["probes"]
    assert [p["category"] for p in probes][0] in ("ok", "learning")
    assert probes[1]["outcome"] == "oom_host"
    evidence = probes[1]["evidence"]
    assert evidence["signal"] == "SIGKILL(-9)"
    assert evidence["oom_evidence"] in ("cgroup", "system")
    assert evidence["budget_bytes"] is None
    assert "exhausted host memory" in done.stdout  # its cause, in the report


@pytest.mark.e2e
def test_worker_raises_its_own_oom_score(tmp_path):
    """The first thing a worker does is make itself the OOM killer's first choice."""
    code = ("import runpy, sys; sys.argv=['w']; import stabcheck.worker.main as w; "
            "w._raise_oom_score(); print(open('/proc/self/oom_score_adj').read())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "1000", done.stderr
    assert Path("/proc/self/oom_score_adj").read_text().strip() != "1000"  # not the parent


@needs_cgroup
@pytest.mark.e2e
def test_a_model_too_large_for_the_budget_is_oom_host_while_building(tmp_path):
    """Weights that do not fit the budget are the probes' finding, not a usage error:
    the backend imports (its cost is measured), the build is killed by the cgroup,
    and every probe is oom_host with the build phase; the build is not repeated."""
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "stabcheck", "probe", "--model",
         f"{FIXTURES / 'memory_models.py'}:wide", "--data", "builtin:breast_cancer",
         "--class-weight", "none", "--lr", "0.001,0.01", "--steps", "3",
         "--memory-budget", "450MiB", "--json", str(out), "--journal", str(tmp_path / "j")],
        capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    probes = json.loads(out.read_text())["probes"]
    assert [p["outcome"] for p in probes] == ["oom_host", "oom_host"]
    first, second = (p["evidence"] for p in probes)
    assert first["phase"] == "build" and first["enforced_by"] == "kernel"
    assert first["weight_bytes"] == (30 * 6000 + 6000 + 6000 * 6000 + 6000 + 6000 + 1) * 4
    assert "while building the model: its weights alone need" in probes[0]["summary"]
    assert second["phase"] == "build" and "measured once for all probes" in probes[1]["summary"]
    assert "no batch size helps" in done.stdout
    assert probes[0]["steps_completed"] == 0


def _images(path: Path, n_val: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64 + n_val, 32, 32, 3)).astype(np.float32)
    y = (x[:, :16].mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    np.savez(path, x=x[:64], y=y[:64], x_val=x[64:], y_val=y[64:])
    return path


@pytest.mark.slow
def test_held_out_evaluation_does_not_raise_the_probe_peak(tmp_path):
    """Held-out images whose feature maps would need ~750 MiB predicted at once are
    evaluated in batches of the probe's 8: the probe's peak is that of its training
    (as with 8 held-out images), and the evidence measures what evaluation added."""
    peaks, extra = {}, {}
    for n_val in (8, 1500):
        out = tmp_path / f"r{n_val}.json"
        done = subprocess.run(
            [sys.executable, "-m", "stabcheck", "probe", "--model",
             f"{FIXTURES / 'memory_models.py'}:wide_activations", "--data",
             str(_images(tmp_path / f"d{n_val}.npz", n_val)), "--class-weight", "none",
             "--lr", "0.001", "--batch-size", "8", "--steps", "3", "--json", str(out),
             "--journal", str(tmp_path / f"j{n_val}")],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
        assert done.returncode in (0, 1), done.stderr
        (probe,) = json.loads(out.read_text())["probes"]
        assert probe["holdout"]["n"] == n_val
        peaks[n_val] = probe["peak_host_bytes"]
        extra[n_val] = probe["evidence"]["training_step"]["evaluation_extra_bytes"]
    at_once = 1500 * 2 * 32 * 32 * 64 * 4  # two feature maps of every held-out image
    data = 1500 * 32 * 32 * 3 * 4  # the held-out images themselves, loaded by the worker
    assert peaks[1500] - peaks[8] < data + (32 << 20) < at_once / 10
    assert extra[1500] < 32 << 20
