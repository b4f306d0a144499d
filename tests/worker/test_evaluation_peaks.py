"""A probe that is evaluated on its held-out split and trains on reports the peak of its
training, not its evaluation's: the same as a probe of the same steps evaluated only at
the end, for the first probe of a worker and the ones after it (run_probe's memory
accounting with a real model whose evaluation is far heavier than its training)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.e2e  # every test here starts processes

MIB = 1 << 20
TOLERANCE = 24 * MIB  # the evaluation keeps 96 MiB of freed buffers: far above this


def _data(path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 16)).astype(np.float32)
    y = (x[:, 0] > 0.8).astype(np.int64)
    np.savez(path, x=x[:128], y=y[:128], x_val=x[128:], y_val=y[128:])
    return path


def _probes(data: Path, steps: int, to: int, n_probes: int = 1) -> list[dict]:
    """Each probe's peak, evidence and losses, from a fresh process (a worker)."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(FIXTURES / "evaluation_peaks.py"), str(data), str(steps),
         str(to), str(n_probes)],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_evaluations_between_segments_do_not_raise_the_training_peak(tmp_path):
    data = _data(tmp_path / "d.npz")
    (plain,) = _probes(data, 8, 8)  # evaluated once, after its last step
    # evaluated after steps 2 and 4, trains on to 8; three such probes in one worker
    evaluated = _probes(data, 2, 8, n_probes=3)
    assert [len(p["losses"]) for p in evaluated] == [8, 8, 8]
    assert evaluated[0]["losses"] == plain["losses"]  # evaluating does not change training
    for probe in evaluated:
        assert probe["peak_private_bytes"] <= plain["peak_private_bytes"] + TOLERANCE
    for probe in [plain, *evaluated]:  # what evaluation costs is reported apart
        info = probe["step_info"]
        assert info["evaluation_extra_bytes"] > 64 * MIB  # the evaluation is heavy
        assert 0 <= info["evaluation_resident_bytes"] < 32 * MIB
