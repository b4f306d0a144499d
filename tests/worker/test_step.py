"""A probe's training step computes what Keras's ``fit`` computes, step by step, for
dense and sparse gradients, BatchNormalization, regularization losses, Dropout and a
model that overrides ``train_step``; one trace serves every probe of a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.e2e  # every test here starts processes

CLIPS = ["none", "norm=0.5", "value=0.01", "global_norm=0.5"]
SPARSE_CLIPS = ["none", "norm=0.01", "value=0.001", "global_norm=0.01"]


@pytest.fixture(scope="module")
def equivalence() -> dict:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(FIXTURES / "equivalence.py")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cases(model: str, clips: list[str], weights: list[str]) -> list[str]:
    return [f"{model}/{c}/{w}" for c in clips for w in weights]


CASES = (_cases("mlp", CLIPS, ["none", "custom"])
         + _cases("embedding", SPARSE_CLIPS, ["none", "custom"])
         + _cases("batchnorm", ["none", "global_norm=0.5"], ["none"])
         + _cases("regularized", ["none"], ["custom"])
         + _cases("dropout", ["none"], ["none"])
         + _cases("mixed_float16", ["none", "global_norm=0.5"], ["none"])
         + _cases("custom_step", ["none", "norm=0.5"], ["none", "custom"]))


@pytest.mark.parametrize("case", CASES)
def test_probe_step_matches_keras_fit(equivalence, case):
    result = equivalence[case]
    assert result["steps"] == 6
    assert result["loss_diff"] < 1e-5, result  # per-step losses, relative
    assert result["weight_diff"] < 1e-6, result  # the weights after the last step
    assert result["grad_norms_measured"], result


@pytest.mark.parametrize("model", ["mlp", "embedding", "custom_step"])
def test_the_settings_really_differ(equivalence, model):
    """Each clip mode and the class weights change the trained weights: the comparison
    above would catch a step that ignored them."""
    checksums = {key: case["checksum"] for key, case in equivalence.items()
                 if key.startswith(f"{model}/") and isinstance(case, dict)}
    assert len(checksums) > 1
    assert len(set(checksums.values())) == len(checksums)


@pytest.mark.parametrize("model", ["mlp", "batchnorm", "regularized", "dropout", "custom_step"])
def test_one_trace_serves_every_probe(equivalence, model):
    assert equivalence[f"{model}/traces"] == 1


def test_sparse_gradients_trace_once_per_clip_mode(equivalence):
    assert equivalence["embedding/traces"] == len(SPARSE_CLIPS)


def test_a_custom_train_step_is_the_one_that_runs(equivalence):
    assert equivalence["custom_step/train_step"] == "model"
    assert equivalence["mlp/train_step"] == "keras"
