"""The reused training step (trace once, probe many) computes what Keras's ``fit`` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def equivalence() -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(FIXTURES / "equivalence.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("clip", ["none", "norm=0.5", "value=0.01", "global_norm=0.5"])
@pytest.mark.parametrize("weights", ["none", "custom"])
def test_reused_step_matches_keras_fit(equivalence, clip, weights):
    case = equivalence[f"{clip}/{weights}"]
    assert case["steps"] == 6
    assert case["loss_diff"] < 1e-5, case  # per-step losses, step by step
    assert case["weight_diff"] < 1e-6, case  # the weights after the last step


def test_the_settings_really_differ(equivalence):
    """Each clip mode and the class weights change the trained weights: the comparison
    above would catch a step that ignored them."""
    checksums = {key: case["checksum"] for key, case in equivalence.items() if key != "traces"}
    assert len(set(checksums.values())) == len(checksums)


def test_one_trace_serves_every_probe(equivalence):
    assert equivalence["traces"] == 1
