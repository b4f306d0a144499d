"""JAX and PyTorch: a probe's step computes what Keras's ``fit`` computes under that
backend (the fixture of test_step.py, run under each), and the three backends reach the
same verdicts on the same model, data and settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, outcomes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # processes, each imports a framework

BACKENDS = ["tensorflow", "jax", "torch"]
# The fixture's cases under the other backends. Left out: the custom train_step under
# JAX (refused: see test_jax_refuses_a_model_with_its_own_train_step) and, under PyTorch,
# unseeded Dropout, whose masks Keras draws from torch's global generator: they depend
# on everything drawn before, in fit as in a probe (seeded_dropout is compared instead).
CASES = {
    "jax": ["mlp", "embedding", "batchnorm", "regularized", "dropout", "seeded_dropout",
            "mixed_float16"],
    "torch": ["mlp", "embedding", "batchnorm", "regularized", "seeded_dropout",
              "mixed_float16", "custom_step"],
}


@pytest.fixture(scope="module", params=["jax", "torch"])
def equivalence(request) -> tuple[str, dict]:
    backend = request.param
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(FIXTURES / "equivalence.py"), *CASES[backend]],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return backend, json.loads(done.stdout.strip().splitlines()[-1])


def test_probe_step_matches_keras_fit_under_each_backend(equivalence):
    backend, result = equivalence
    cases = {key: case for key, case in result.items() if isinstance(case, dict)}
    assert len(cases) >= 20, sorted(result)
    wrong = {key: case for key, case in cases.items()
             if case["steps"] != 6 or case["loss_diff"] >= 1e-5 or case["weight_diff"] >= 1e-6
             or not case["grad_norms_measured"]}
    assert not wrong, (backend, wrong)
    # every clip mode and the class weights change the trained weights
    mlp = {case["checksum"] for key, case in cases.items() if key.startswith("mlp/")}
    assert len(mlp) == 8


def test_traces_per_backend(equivalence):
    backend, result = equivalence
    if backend == "jax":  # one jitted step per clip setting, shared by learning rates
        assert result["mlp/traces"] == 4
        assert result["batchnorm/traces"] == 2
        assert result["mlp/train_step"] == "keras"
    else:  # eager: nothing traced; the model's own train_step is the one that runs
        assert result["mlp/traces"] == 0
        assert result["custom_step/train_step"] == "model"


# The same model (weights drawn by NumPy, loss from logits) and data under each backend:
# extreme class weights at a huge learning rate fail numerically, balanced weights at a
# moderate one are stable.
PARITY = dict(model=f"{FIXTURES / 'backend_models.py'}:logits_mlp", data="builtin:breast_cancer",
              class_weight=["x1000", "balanced"], lr=["100", "0.05"], clip=["none"], steps=30)
FAILING, STABLE = "cw=x1000,lr=100,clip=none,bs=32", "cw=balanced,lr=0.05,clip=none,bs=32"


@pytest.fixture(scope="module")
def parity(tmp_path_factory) -> dict[str, tuple[dict, dict]]:
    from stabcheck.config.settings import build_settings
    from stabcheck.run.engine import run_probe_grid
    from tests.conftest import validate_result

    out = {}
    for backend in BACKENDS:
        pytest.importorskip(backend)
        tmp = tmp_path_factory.mktemp(backend)
        flags = {**PARITY, "backend": backend, "journal": str(tmp / "j.jsonl"),
                 "timeout": 120, "workers": 1, "seeds": 1}
        report = run_probe_grid(build_settings(None, flags))
        out[backend] = (outcomes(report), validate_result(report, tmp))
    return out


def test_the_backends_reach_the_same_verdicts(parity):
    for backend, (verdicts, data) in parity.items():
        assert data["environment"]["backend"] == backend
        assert verdicts[FAILING] in ("non_finite", "diverged"), (backend, verdicts)
        assert verdicts[STABLE] == "stable", (backend, verdicts)
    assert len({json.dumps(v, sort_keys=True) for v, _ in parity.values()}) == 1, {
        backend: verdicts for backend, (verdicts, _) in parity.items()}


def test_the_backends_train_the_same_losses(parity):
    """Same weights, data and batches: the stable probe's losses agree across backends
    to float32 rounding."""
    histories = {}
    for backend, (_, data) in parity.items():
        probe = next(p for p in data["probes"] if p["id"] == STABLE)
        histories[backend] = probe["loss_history"]
    reference = histories["tensorflow"]
    for backend, losses in histories.items():
        assert len(losses) == len(reference) == 30
        assert max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(losses, reference,
                                                                strict=True)) < 1e-3, backend


def test_jax_refuses_a_model_with_its_own_train_step(tmp_path):
    pytest.importorskip("jax")
    done = subprocess.run(
        [sys.executable, "-m", "stabcheck", "probe", "--model",
         f"{FIXTURES / 'backend_models.py'}:own_step", "--data", "builtin:breast_cancer",
         "--backend", "jax", "--class-weight", "none", "--steps", "3", "--seeds", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "overrides train_step" in lines[0] and "--backend tensorflow" in lines[0]
