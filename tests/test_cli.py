"""The command line from the outside: exit codes, one-line errors, no TensorFlow import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES

STABCHECK = [sys.executable, "-m", "stabcheck"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120):
    return subprocess.run([*STABCHECK, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_importing_the_cli_and_core_does_not_import_tensorflow():
    code = (
        "import sys, stabcheck.cli, stabcheck.engine, stabcheck.runner, stabcheck.report, "
        "stabcheck.plan, stabcheck.classify, stabcheck.data, stabcheck.models, "
        "stabcheck.preflight, stabcheck.memguard, stabcheck.resultio, stabcheck.junit, "
        "stabcheck.markdown, stabcheck.html_report, stabcheck.envinfo, stabcheck.starter, "
        "stabcheck.policy, stabcheck.ladder\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def onehot_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    path = tmp_path / "onehot.npz"
    np.savez(path, x=rng.normal(size=(60, 4)).astype("float32"), y=np.eye(3)[y])
    return path


def _bad_inputs(tmp_path: Path, onehot: Path) -> list[tuple[list[str], str]]:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("model = 'builtin:mlp'\nlr = [0.1,,]\n")
    custom = tmp_path / "custom.toml"
    custom.write_text(
        "model = 'builtin:mlp'\ndata = 'builtin:breast_cancer'\n"
        "class_weight = ['custom']\n[custom_class_weight]\nmalignant = 5.0\nbenign_typo = 1.0\n"
    )
    base = ["probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer"]
    return [
        (["probe", "--model", "builtin:mlp", "--data", str(tmp_path / "missing.npz")],
         "data file not found"),
        (["probe", "--model", str(tmp_path / "missing.keras"), "--data", "builtin:digits"],
         "model file not found"),
        (["probe", str(tmp_path / "nope.toml")], "config file not found"),
        (["probe", str(bad_toml)], "invalid TOML"),
        ([*base, "--class-weight", "balanced,bogus"], "unknown class_weight strategy 'bogus'"),
        ([*base, "--clip", "norm=-1"], "invalid clip setting"),
        ([*base, "--memory-budget", "lots"], "invalid size"),
        (["probe", str(custom)], "custom_class_weight key 'benign_typo' is not a label"),
        (["probe", "--model", "builtin:mlp", "--data", str(onehot), "--loss",
          "sparse_categorical_crossentropy"], "one-hot"),
        (["probe", "--model", "builtin:mlp", "--data", "builtin:digits", "--loss",
          "binary_crossentropy"], "needs two classes"),
        ([*base, "--fail-on", "nonsense"], "unknown --fail-on value"),
        (["probe", "--model", "builtin:transformer", "--data", "builtin:digits"],
         "unknown built-in model"),
    ]


def test_bad_inputs_exit_2_with_one_line_and_no_traceback(tmp_path, onehot_npz):
    before = onehot_npz.read_bytes()
    for args, expected in _bad_inputs(tmp_path, onehot_npz):
        done = run_cli(*args, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert expected in lines[0], (args, lines[0])
        assert lines[0].startswith("stabcheck: error: ")
    assert onehot_npz.read_bytes() == before  # the user's data is never modified


def test_a_model_whose_labels_do_not_fit_is_stopped_before_training(tmp_path, onehot_npz):
    """The loss comes from the model's compiled state here, so the worker must describe it."""
    done = run_cli("probe", "--model", f"{FIXTURES / 'compiled_models.py'}:sparse_compiled",
                   "--data", str(onehot_npz), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "one-hot" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_probe_end_to_end_exit_code_json_and_report(tmp_path):
    out = tmp_path / "result.json"
    done = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
                   "--optimizer", "sgd", "--class-weight", "x1000", "--lr", "0.01",
                   "--lr", "1.0", "--clip", "none,global_norm=1.0", "--steps", "30",
                   "--json", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # a numerical failure fails the default gate
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1
    assert len(data["probes"]) == 4
    assert "Numerical failures" in done.stdout
    assert "cw=x1000,lr=1,clip=none,bs=32" in done.stdout
    # The journal was written under .stabcheck/runs of the working folder.
    journals = list((tmp_path / ".stabcheck" / "runs").glob("*.jsonl"))
    assert len(journals) == 1 and len(journals[0].read_text().splitlines()) == 5

    relaxed = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
                      "--optimizer", "sgd", "--class-weight", "x1000", "--lr", "1.0",
                      "--steps", "30", "--fail-on", "none", cwd=tmp_path)
    assert relaxed.returncode == 0, relaxed.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.strip().startswith("stabcheck ")
    help_text = run_cli("probe", "--help").stdout
    for flag in ("--model", "--data", "--lr", "--class-weight", "--clip", "--batch-size",
                 "--steps", "--memory-budget", "--gpu-memory-budget", "--timeout", "--json",
                 "--seed"):
        assert flag in help_text


def test_a_budget_too_small_to_start_a_worker_is_a_usage_error(tmp_path):
    done = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
                   "--memory-budget", "100MiB", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "too small to start a probe worker" in lines[0]


def test_an_internal_error_exits_3_with_its_traceback(tmp_path):
    """A bug (here: a broken rich console planted in the process) is exit code 3."""
    code = ("import sys, rich.console\n"
            "def broken(*a, **k): raise RuntimeError('planted bug')\n"
            "rich.console.Console.print = broken\n"
            "sys.argv = ['stabcheck', 'env']\n"
            "from stabcheck.cli import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" in done.stderr
    assert "stabcheck: internal error: RuntimeError: planted bug" in done.stderr
