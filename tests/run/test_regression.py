"""Regression targets: float targets, from an .npz or a CSV, detected or
declared with --task regression, are probed over learning rate x clipping x batch size
with no class weights; held-out MAE/RMSE/R² replace the per-class metrics, and R² <= 0
is a learning verdict. Real Keras on tiny models; the usage errors end in one line."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from stabcheck.config.settings import build_settings
from stabcheck.errors import ConfigError, InputError
from stabcheck.inputs.data import load_dataset
from stabcheck.judge.classify import classify
from stabcheck.judge.gate import parse_fail_on
from stabcheck.judge.summary import summarize
from stabcheck.report.html import render_html
from stabcheck.report.junit import junit_xml
from stabcheck.report.markdown import render_markdown
from stabcheck.report.terminal.report import render_report
from stabcheck.results import (
    Outcome,
    Probe,
    ProbeRun,
    ProbeSettings,
    RegressionEval,
    StepRecord,
    Termination,
)
from stabcheck.worker.metrics import regression_metrics
from tests.conftest import FIXTURES, outcomes

MODELS = FIXTURES / "regression_models.py"
STABCHECK = [sys.executable, "-m", "stabcheck"]


def _linear(n: int = 400, offset: float = 0.0, scale: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = x @ np.array([1.5, -2.0, 0.5, 1.0]) + 0.1 * rng.normal(size=n)
    return x, (scale * y + offset).astype(np.float32)


@pytest.fixture
def regression_npz(tmp_path: Path) -> Path:
    x, y = _linear()
    path = tmp_path / "reg.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def prices_csv(tmp_path: Path) -> Path:
    """Prices around 500: a float column a classifier would have taken for 400 classes."""
    x, y = _linear(offset=500.0, scale=100.0)
    path = tmp_path / "prices.csv"
    lines = ["a,b,c,d,price"] + [",".join(f"{v:.4f}" for v in row) + f",{t:.2f}"
                                 for row, t in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def outcomes_of(data: dict) -> list[str]:
    return [p["outcome"] for p in data["probes"]]


def _text(report) -> str:
    console = Console(record=True, width=140, force_terminal=False)
    render_report(report, summarize(report), console, verbose=True)
    return console.export_text()


# ------------------------------------------------------------------------ real probes


def test_a_stable_and_a_diverging_regression_probe(probe_run, regression_npz, tmp_path):
    report, data, _ = probe_run(model="builtin:mlp", data=str(regression_npz),
                                lr=["0.001", "10"], steps=40)
    assert data["dataset"]["task"] == "regression"
    assert data["dataset"]["label_format"] == "continuous"
    assert data["dataset"]["class_counts"] == {}
    assert data["dataset"]["target"]["columns"] == 1
    assert data["class_weight_strategies"] == {"none": None}  # the default grid: none only
    probes = {p["id"]: p for p in data["probes"]}
    assert set(probes) == {"cw=none,lr=0.001,clip=none,bs=32", "cw=none,lr=10,clip=none,bs=32"}

    stable = probes["cw=none,lr=0.001,clip=none,bs=32"]
    assert stable["outcome"] == "stable", stable["summary"]
    assert stable["settings"]["loss"] == "mse"  # the default loss of a regression target
    holdout = stable["holdout"]
    assert holdout["task"] == "regression" and holdout["n"] == 80
    assert holdout["r2"] > 0.3 and holdout["mae"] > 0 and holdout["rmse"] >= holdout["mae"]
    assert "class_gradients" not in stable["evidence"]
    assert "not_measured" not in stable["evidence"]["training_step"]
    assert "R²" in stable["summary"]

    diverged = probes["cw=none,lr=10,clip=none,bs=32"]
    assert diverged["outcome"] in ("diverged", "non_finite") and diverged["category"] == "numerical"
    assert data["recommended_configuration"]["probe_id"] == "cw=none,lr=0.001,clip=none,bs=32"
    assert data["recommended_configuration"]["r2"] == pytest.approx(holdout["r2"])

    # Every view renders, with the held-out errors and without class-weight wording.
    text = _text(report)
    assert "Held-out errors of the settings that trained" in text and "R²" in text
    assert "class weight" not in text and "class_weight" not in text
    assert "Per-class" not in text
    markdown = render_markdown(report, summarize(report), parse_fail_on(("numerical",)))
    assert "| probe | verdict | R² | MAE | RMSE |" in markdown
    assert "class weight" not in markdown and "class_weight" not in markdown
    html = render_html(report, summarize(report))
    assert "Held-out errors" in html and "class weight" not in html
    assert "testcase" in junit_xml(report, parse_fail_on(("numerical",)))


@pytest.mark.slow  # a diverging regression probe: the stable/diverging pair above
def test_sgd_on_large_targets_without_clipping_diverges_and_a_clip_keeps_it_finite(
        probe_run, tmp_path):
    x, y = _linear(scale=1000.0)
    path = tmp_path / "large.npz"
    np.savez(path, x=x, y=y[:, None])  # (n, 1): kept as it is
    report, data, _ = probe_run(model=f"{MODELS}:mse_sgd", data=str(path), lr=["0.05"],
                                clip=["none", "global_norm=1"], steps=30)
    found = outcomes(report)
    assert found["cw=none,lr=0.05,clip=none,bs=32"] in ("diverged", "non_finite")
    assert found["cw=none,lr=0.05,clip=global_norm=1,bs=32"] not in ("diverged", "non_finite")
    assert data["dataset"]["target"]["max"] > 1000
    text = _text(report)
    assert "class_weight" not in text and "class weight" not in text


@pytest.mark.slow  # R² <= 0 is judged in the pure tests below
def test_a_csv_with_a_float_target_is_a_regression_probe_and_r2_below_0_stalls(
        probe_run, prices_csv):
    before = hashlib.sha256(prices_csv.read_bytes()).hexdigest()
    report, data, _ = probe_run(model="builtin:mlp", data=str(prices_csv), target="price",
                                lr=["1e-5"], steps=20)
    assert data["dataset"]["task"] == "regression" and data["dataset"]["class_counts"] == {}
    assert 400 < data["dataset"]["target"]["mean"] < 600
    (probe,) = data["probes"]
    r2 = probe["holdout"]["r2"]
    assert isinstance(r2, float) and r2 <= 0  # a mean of 500 is not learned at lr 1e-5
    assert probe["outcome"] == "stalled" and probe["category"] == "learning"
    assert f"R² {r2:.2f} on held-out data: predicts" in probe["summary"]
    assert probe["evidence"]["holdout_r2"] == pytest.approx(r2)
    assert hashlib.sha256(prices_csv.read_bytes()).hexdigest() == before  # only read
    assert "regression model predicts no better than the mean" in _text(report)


@pytest.mark.slow  # two worker starts (the reload): about 20 s
def test_a_compiled_regression_loss_makes_integer_targets_a_regression(probe_run, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    counts = rng.poisson(np.exp(0.5 * x[:, 0])).astype(np.int64)
    path = tmp_path / "counts.npz"
    np.savez(path, x=x, y=counts)
    _, data, _ = probe_run(model=f"{MODELS}:poisson_counts", data=str(path), lr=["0.01"],
                           steps=10)
    assert data["dataset"]["task"] == "regression"
    (probe,) = data["probes"]
    assert probe["settings"]["loss"] == "poisson" and probe["holdout"]["task"] == "regression"


@pytest.mark.slow  # the ladder measures, forecasts and verifies: over a minute
def test_the_memory_ladder_measures_a_regression_model(probe_run, regression_npz):
    _, data, _ = probe_run(model="builtin:mlp", data=str(regression_npz), lr=["0.001"],
                           steps=3, batch_size=["16", "64"], memory_budget="2GiB")
    memory = data["memory"]
    assert {16, 64} <= {p["batch_size"] for p in memory["points"]}
    assert all(p["peak_bytes"] for p in memory["points"])
    assert memory["forecast_batch_size"] == memory["training_samples"] == 400  # all fits
    assert set(outcomes_of(data)) == {"stable"}


# ------------------------------------------------------------------ the task decided


def test_task_classification_forces_classes_on_an_integer_valued_float_column(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    y = np.tile(np.array([0.0, 1.0, 2.0]), 20)
    path = tmp_path / "ints_as_floats.npz"
    np.savez(path, x=x, y=y)
    classes = load_dataset(str(path), task="classification")
    assert classes.task == "classification" and classes.n_classes == 3
    assert classes.summary().to_json()["class_counts"] == {"0": 16, "1": 16, "2": 16}
    assert load_dataset(str(path)).task == "classification"  # auto: whole numbers, classes
    target = load_dataset(str(path), task="regression")
    assert target.task == "regression" and target.y_train.dtype == np.float32
    assert set(np.unique(target.y_train)) <= {0.0, 1.0, 2.0}  # never re-encoded

    csv = tmp_path / "grades.csv"  # a float column meant as class names
    csv.write_text("a,b,grade\n" + "".join(f"{i},{i % 3},{0.5 + i % 2}\n" for i in range(40)))
    assert load_dataset(str(csv), target="grade").task == "regression"
    named = load_dataset(str(csv), target="grade", task="classification")
    assert named.class_names == ("0.5", "1.5")


def test_regression_sampling_is_random_and_keeps_the_targets(tmp_path):
    x, y = _linear(n=500)
    path = tmp_path / "reg.npz"
    np.savez(path, x=x, y=y[:, None])
    ds = load_dataset(str(path), max_samples=50, seed=3)
    assert ds.x_train.shape == (50, 4) and ds.y_train.shape == (50, 1)
    assert ds.x_val.shape[0] == 100
    assert np.isin(ds.y_train[:, 0], y).all()  # the user's values, as they were
    again = load_dataset(str(path), max_samples=50, seed=3)
    assert np.array_equal(ds.y_train, again.y_train)


def test_task_in_the_config_file(tmp_path):
    config = tmp_path / "stabcheck.toml"
    config.write_text('model = "builtin:mlp"\ndata = "d.npz"\ntask = "regression"\n')
    assert build_settings(config, {}).task == "regression"
    assert build_settings(config, {"task": "auto"}).task == "auto"
    with pytest.raises(ConfigError, match="task must be one of"):
        build_settings(None, {"model": "m", "data": "d", "task": "ranking"})


def test_bad_regression_targets_are_input_errors(tmp_path):
    path = tmp_path / "nan.npz"
    np.savez(path, x=np.zeros((10, 2)), y=np.r_[np.full(9, 0.5), np.nan])
    with pytest.raises(InputError, match="NaN/Inf"):
        load_dataset(str(path))
    csv = tmp_path / "words.csv"
    csv.write_text("a,t\n1,cat\n2,dog\n")
    with pytest.raises(InputError, match="not a number"):
        load_dataset(str(csv), target="t", task="regression")


# --------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "classification", "--loss", "mse"], "--task classification, but the loss 'mse'"),
    (["--class-weight", "balanced"], "class_weight 'balanced' asked for a regression target"),
    (["--loss", "sparse_categorical_crossentropy"],
     "the targets are floats with non-integer values"),
    (["--task", "classification"], "non-integer value"),
    (["--task", "regression", "--loss", "binary_crossentropy"], "takes class labels"),
    (["--imbalance", "0.1"], "holds a regression target (no classes)"),
])
@pytest.mark.e2e
def test_usage_errors_end_in_one_line(regression_npz, tmp_path, args, message):
    done = subprocess.run([*STABCHECK, "probe", "--model", "builtin:mlp", "--data",
                           str(regression_npz), "--steps", "2", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert message in lines[0]


@pytest.mark.slow  # usage errors: test_usage_errors_end_in_one_line
@pytest.mark.e2e
def test_a_compiled_classifier_on_a_float_target_is_a_usage_error(regression_npz, tmp_path):
    done = subprocess.run([*STABCHECK, "probe", "--model", f"{MODELS}:sparse_classifier",
                           "--data", str(regression_npz), "--steps", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "sparse_categorical_crossentropy' takes class labels" in last


# ------------------------------------------------------------------------ pure parts


def test_regression_metrics():
    true = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(true, np.array([[1.5], [2.0], [2.5], [4.0]]))
    assert m["mae"] == pytest.approx(0.25) and m["rmse"] == pytest.approx(np.sqrt(0.125))
    assert m["r2"] == pytest.approx(1 - 0.5 / 5.0)
    assert regression_metrics(true, np.full(4, 2.5))["r2"] == pytest.approx(0.0)
    assert regression_metrics(np.ones(4), np.ones(4))["r2"] is None  # constant target
    assert regression_metrics(true, np.array([1, np.nan, 3, 4]))["mae"] is None


def _run(r2: float) -> ProbeRun:
    settings = ProbeSettings("none", None, 1e-3, "none", 32, "adam", "mse")
    steps = tuple(StepRecord(i, 1.0 + 0.001 * (i % 2), 1.0) for i in range(1, 31))
    return ProbeRun(Probe("cw=none,lr=0.001,clip=none,bs=32", settings, 30),
                    Termination.COMPLETED, steps,
                    holdout=RegressionEval(80, 0.8, 1.0, r2, {"task": "regression"}))


def test_r2_at_or_below_zero_is_stalled_and_above_zero_stable():
    verdict = classify(_run(0.0))
    assert verdict.outcome is Outcome.STALLED and verdict.category.value == "learning"
    assert verdict.summary.startswith(
        "R² 0.00 on held-out data: predicts no better than the mean")
    assert classify(_run(-0.7)).summary.startswith("R² -0.70 on held-out data: predicts worse")
    stable = classify(_run(0.4))
    assert stable.outcome is Outcome.STABLE and "R² 0.40" in stable.summary


@pytest.mark.slow  # usage errors: test_usage_errors_end_in_one_line
@pytest.mark.e2e
def test_whole_number_prices_taken_for_classes_say_task_regression(tmp_path):
    rng = np.random.default_rng(0)
    rows = [",".join(f"{v:.3f}" for v in rng.normal(size=4)) + f",{rng.integers(1000, 9000)}"
            for _ in range(300)]
    csv = tmp_path / "prices.csv"
    csv.write_text("a,b,c,d,price\n" + "\n".join(rows) + "\n")
    done = subprocess.run([*STABCHECK, "probe", "--model", "builtin:mlp", "--data", str(csv),
                           "--target", "price", "--steps", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.endswith("if it is a quantity (a price, a count), pass --task regression")


@pytest.mark.slow  # a regression probe trains: the stable/diverging pair
def test_a_target_of_two_columns_trains_a_two_unit_output(probe_run, tmp_path):
    x, y = _linear()
    path = tmp_path / "two.npz"
    np.savez(path, x=x, y=np.stack([y, -y], axis=1))
    _, data, _ = probe_run(model="builtin:mlp", data=str(path), lr=["0.003"], steps=40)
    assert data["dataset"]["target"]["columns"] == 2
    assert data["config"]["model_info"]["output_units"] == 2
    (probe,) = data["probes"]
    assert probe["outcome"] == "stable" and probe["holdout"]["r2"] > 0.2
