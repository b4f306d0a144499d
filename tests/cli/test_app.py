"""The command line from the outside: exit codes, one-line errors, no TensorFlow import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES

pytestmark = pytest.mark.e2e  # every test here starts processes

STABCHECK = [sys.executable, "-m", "stabcheck"]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120):
    return subprocess.run([*STABCHECK, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.fixture
def onehot_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    path = tmp_path / "onehot.npz"
    np.savez(path, x=rng.normal(size=(60, 4)).astype("float32"), y=np.eye(3)[y])
    return path


def _npz_of(path: Path, y: np.ndarray, features: int = 4) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(len(y), features)).astype("float32"), y=y)
    return path


def _bad_inputs(tmp_path: Path, onehot: Path) -> list[tuple[list[str], str]]:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"model = 'builtin:mlp'\ndata = 'donn\xe9es.npz'\n")
    truncated = _npz_of(tmp_path / "truncated.npz", np.repeat([0, 1], 30))
    truncated.write_bytes(truncated.read_bytes()[:700])
    signed = _npz_of(tmp_path / "signed.npz", np.repeat([-1, 1], 30))
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
        (["probe", str(latin1)], "is not UTF-8 text"),
        (["probe", "--model", "builtin:mlp", "--data", str(truncated)], "truncated or corrupt"),
        (["probe", "--model", "builtin:mlp", "--data", str(signed), "--loss",
          "sparse_categorical_crossentropy"], "takes class indices from 0"),
        (["probe", "--model", "builtin:mlp", "--data", str(signed), "--loss",
          "binary_crossentropy"], "takes 0/1 labels"),
        ([*base, "--custom-objects", "no_such_module_xyz"], "--custom-objects no_such_module_xyz"),
        ([*base, "--custom-objects", "missing_layers.py"], "file not found"),
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
                   "--optimizer", "sgd", "--class-weight", "x100", "--lr", "0.01",
                   "--lr", "1.0", "--clip", "none,global_norm=1.0", "--steps", "30",
                   "--json", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # a numerical failure fails the default gate
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1
    assert len(data["probes"]) == 4
    # the verdict comes right after the title, before the grid and the causes
    assert 0 < done.stdout.index("\n4 probes: ") < done.stdout.index("Verdicts") \
        < done.stdout.index("Failures by cause")
    assert "cw=x100,lr=1,clip=none,bs=32" in done.stdout
    # The journal was written under .stabcheck/runs of the working folder.
    journals = list((tmp_path / ".stabcheck" / "runs").glob("*.jsonl"))
    # the run record, 4 probes, and the finalists' re-probes under seeds 1 and 2 (--seeds 3)
    reprobes = data["seed_probes"]
    assert reprobes and {p["seed"] for p in reprobes} == {1, 2}
    assert data["recommended_configuration"]["seeds"] == 3
    assert len(journals) == 1
    # the run record, then a line per job: every probe's first rung, the contenders'
    # longer runs, and the re-probes (one line each, as they arrived)
    lines = [json.loads(line) for line in journals[0].read_text().splitlines()]
    assert lines[0]["type"] == "run"
    jobs = lines[1:]
    assert {r["id"] for r in jobs if r["type"] == "probe"} == {p["id"] for p in data["probes"]}
    assert sum(r["type"] == "seed_probe" for r in jobs) == len(reprobes)
    assert all(r["type"] in ("probe", "seed_probe") for r in jobs)

    relaxed = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
                      "--optimizer", "sgd", "--class-weight", "x100", "--lr", "1.0",
                      "--steps", "30", "--seeds", "1", "--fail-on", "none", cwd=tmp_path)
    assert relaxed.returncode == 0, relaxed.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.strip().startswith("stabcheck ")
    help_text = run_cli("probe", "--help").stdout
    for flag in ("--model", "--data", "--lr", "--class-weight", "--clip", "--batch-size",
                 "--steps", "--memory-budget", "--gpu-memory-budget", "--timeout", "--json",
                 "--seed", "--custom-objects", "--backend"):
        assert flag in help_text
    assert "default:numerical,memory,crash,error;" in "".join(help_text.replace("│", "").split())


@pytest.mark.parametrize("command", ["", "probe", "memory", "report", "init", "env"])
def test_help_reads_whole_at_80_columns(command):
    """Every line fits 80 columns and nothing is cut short (no "..." or "…" in a choice
    list or a command's summary)."""
    import os

    env = {**os.environ, "COLUMNS": "80", "TERM": "xterm-256color"}
    args = [*STABCHECK, *([command] if command else []), "--help"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), max(lines, key=len)
    cut = [line for line in lines if not line.startswith("Usage:")
           and (line.rstrip().endswith(("...", "…")) or "…" in line)]
    assert not cut, cut
    if command == "probe":
        flat = " ".join(done.stdout.split())
        for choice in ("package.module:function", "normalized-<strategy>",
                       "builtin:breast_cancer", "global_norm=V", "--no-check-numerics",
                       "--verbose"):
            assert choice in flat, choice


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--backend", "bogus"], {}, "backend must be one of tensorflow, jax, torch, got 'bogus'"),
    ([], {"KERAS_BACKEND": "bogus"}, "KERAS_BACKEND must be one of tensorflow, jax, torch"),
])
def test_an_unknown_backend_is_one_line_and_exit_2(tmp_path, args, env, needle):
    import os

    done = subprocess.run([*STABCHECK, "probe", "--model", "builtin:mlp", "--data",
                           "builtin:breast_cancer", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env={**os.environ, **env})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stabcheck: error: "), done.stderr
    assert needle in lines[0]


@pytest.mark.parametrize(("args", "needle"), [
    (["--executor", "slurm"], "executor must be one of local, ray, got 'slurm'"),
    (["--ray-address", "auto"], "ray_address 'auto' is for executor 'ray'"),
])
def test_a_bad_executor_is_one_line_and_exit_2(tmp_path, args, needle):
    done = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer", *args,
                   cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stabcheck: error: "), done.stderr
    assert needle in lines[0]


REFUSING = FIXTURES / "refusing_models.py"
QUICK = ["--class-weight", "none", "--steps", "3", "--seeds", "1"]


def test_a_run_in_which_every_probe_ended_error_exits_2_with_the_first_cause(tmp_path):
    data = _npz_of(tmp_path / "d.npz", np.repeat([0, 1], 40))
    done = run_cli("probe", "--model", f"{REFUSING}:refuses", "--data", str(data), *QUICK,
                   "--lr", "0.01,0.1", "--json", "r.json", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "stabcheck: error: all 2 probes ended in an error; the first "
        "(cw=none,lr=0.01,clip=none,bs=32): ValueError while training: "
        "RefusesToTrain cannot be trained"]
    assert done.stdout == "" and not (tmp_path / "r.json").exists()  # no report of advice


def test_an_error_beside_stable_probes_fails_the_default_gate(tmp_path):
    data = _npz_of(tmp_path / "d.npz", np.repeat([0, 1], 40))
    args = ["probe", "--model", f"{REFUSING}:refuses_batch_of_7", "--data", str(data), *QUICK,
            "--lr", "0.01", "--batch-size", "8,7", "--json", "r.json"]
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = {p["id"]: p["outcome"] for p in json.loads((tmp_path / "r.json").read_text())
                ["probes"]}
    assert outcomes == {"cw=none,lr=0.01,clip=none,bs=8": "stable",
                        "cw=none,lr=0.01,clip=none,bs=7": "error"}
    # stdout (the report) and stderr go to the same log here: the error is said once, in
    # the report, not also on stderr
    assert "could not start" in done.stdout and "bs=7" not in done.stderr
    # the same result under a policy that does not count errors (no second run needed)
    relaxed = run_cli("report", "r.json", "--fail-on", "numerical,memory,crash", cwd=tmp_path)
    assert relaxed.returncode == 0, relaxed.stderr


@pytest.mark.parametrize(("model", "y", "fragment"), [
    ("eight_inputs", np.repeat([0, 1], 40),
     "the model's input takes samples of shape (8,) but the data's rows have shape (4,)"),
    ("two_classes_compiled", np.repeat([0, 1, 2], 30),
     "the labels y go up to 2 but the model's output has 2 unit(s)"),
    ("two_classes_compiled", np.repeat([-1, 1], 40), "hold {-1} but the loss"),
])
def test_a_model_that_cannot_take_the_data_is_stopped_before_training(tmp_path, model, y,
                                                                       fragment):
    """What only the model's description tells (its input shape, its output units, its
    compiled loss) is checked once the first worker described it: exit 2, one line."""
    data = _npz_of(tmp_path / "d.npz", y)
    done = run_cli("probe", "--model", f"{REFUSING}:{model}", "--data", str(data), *QUICK,
                   cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert fragment in line and "Traceback" not in done.stderr


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
            "from stabcheck.cli.app import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" in done.stderr
    assert "stabcheck: internal error: RuntimeError: planted bug" in done.stderr
