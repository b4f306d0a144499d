"""Real probes in real worker processes: NaN, crashes, OOM kills and hangs, provoked for real.

Every test trains tiny real Keras models; every crash is a real signal or exit of a
worker; every OOM is a real kernel OOM kill in a memory cgroup (or the watchdog's kill
where cgroups are declared unavailable).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stabcheck.system import cgroup
from tests.conftest import FIXTURES, outcomes

USER_MODELS = FIXTURES / "user_models.py"


def test_extreme_weights_high_lr_fail_numerically_and_clipped_twin_is_stable(probe_run):
    report, data, _ = probe_run(
        model="builtin:mlp", data="builtin:breast_cancer", optimizer="sgd",
        class_weight=["x100"], lr=["1.0"], clip=["none", "global_norm=1.0"], steps=40,
    )
    got = outcomes(report)
    failed = got["cw=x100,lr=1,clip=none,bs=32"]
    assert failed in ("non_finite", "diverged", "exploding_gradients")
    assert got["cw=x100,lr=1,clip=global_norm=1,bs=32"] == "stable"
    by_id = {p["id"]: p for p in data["probes"]}
    assert by_id["cw=x100,lr=1,clip=none,bs=32"]["category"] == "numerical"
    assert by_id["cw=x100,lr=1,clip=global_norm=1,bs=32"]["steps_completed"] == 40


def test_nan_stops_early_and_names_the_first_bad_variable(probe_run):
    report, data, _ = probe_run(
        model="builtin:cnn", data="builtin:digits", imbalance=0.05, optimizer="sgd",
        class_weight=["x100"], lr=["0.5"], steps=60,
    )
    (result,) = report.results
    assert result.verdict.outcome.value == "non_finite"
    evidence = result.verdict.evidence
    assert result.run.steps_completed == evidence["step"] < 60
    assert evidence["where"] in ("loss", "gradient", "weight")
    if evidence["where"] != "loss":
        assert "/" in evidence["variable"]  # a Keras variable path, e.g. conv_1/kernel
    assert "NaN" in result.verdict.summary or "Inf" in result.verdict.summary
    (probe,) = data["probes"]
    assert probe["evidence"]["value"] in ("nan", "inf", "-inf")


@pytest.mark.parametrize(
    ("factory", "signal_text"),
    [pytest.param("sigkill", "SIGKILL(-9)", marks=pytest.mark.slow),
     pytest.param("exit3", "exit(3)", marks=pytest.mark.slow), ("segv", "SIGSEGV(-11)")],
)
def test_worker_killed_mid_grid_costs_only_its_probe(probe_run, tmp_path, monkeypatch,
                                                     factory, signal_text):
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    # Each probe executes its training step 7 times: twice at learning rate 0 before its
    # first step (the class-gradient shares of breast_cancer's two classes), then its 5
    # steps; the 12th execution is the second probe's third step.
    monkeypatch.setenv("STABCHECK_TEST_TRIP_AT", "12")
    report, data, journal = probe_run(
        model=f"{USER_MODELS}:{factory}", data="builtin:breast_cancer", class_weight=["none"],
        lr=["0.05", "0.06", "0.07"], steps=5,
    )
    got = [(r.probe.id, r.verdict.outcome.value) for r in report.results]
    assert [outcome for _, outcome in got] == ["stable", "crashed", "stable"]
    crashed = report.results[1]
    assert crashed.verdict.evidence["signal"] == signal_text
    assert crashed.verdict.evidence["step"] == 2  # it died in its third step
    assert signal_text in crashed.verdict.summary
    assert "no sign of memory exhaustion" in crashed.verdict.summary or factory != "sigkill"
    # The journal holds the run header and every probe, in order, each a complete line.
    assert journal[0]["type"] == "run"
    assert [line["id"] for line in journal[1:]] == [pid for pid, _ in got]
    assert [line["outcome"] for line in journal[1:]] == ["stable", "crashed", "stable"]


def test_hung_probe_is_a_timeout_and_the_grid_goes_on(probe_run, tmp_path, monkeypatch):
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    monkeypatch.setenv("STABCHECK_TEST_TRIP_AT", "1")
    report, _, _ = probe_run(
        model=f"{USER_MODELS}:hang", data="builtin:breast_cancer", class_weight=["none"],
        lr=["0.05", "0.06"],
        steps=5, timeout=4,
    )
    first, second = report.results
    assert first.verdict.outcome.value == "timeout"
    assert first.verdict.category.value == "crash"
    assert 4 <= first.run.duration_s < 15
    assert second.verdict.outcome.value == "stable"


# Batch 16 fits 640 MiB, 16384 does not (~300 KiB per sample).
_BIG_BATCH = dict(model=f"{FIXTURES / 'memory_models.py'}:hungry",
                  data="builtin:digits-large", class_weight=["none"], lr=["0.001"],
                  batch_size=["16", "16384"], steps=3, memory_budget="640MiB", timeout=45)


@pytest.fixture
def grid_only(monkeypatch):
    """The grid's own handling of a probe over its budget, without the memory ladder a
    budget starts after the grid (``tests/cli/test_memory.py`` runs that one, on the same
    model and budget): the ladder's nine workers near batch 1,000 take about 90 s here."""
    from stabcheck.run import engine

    monkeypatch.setattr(engine, "_memory", lambda *args, **kwargs: None)


@pytest.mark.skipif(cgroup.enforcement_method() == "watchdog",
                    reason="no memory cgroup can be created on this machine")
def test_probe_over_budget_is_killed_by_the_kernel_in_its_cgroup(probe_run, grid_only):
    """The kernel's OOM killer ends the first probe of batch 16384 in its cgroup; the
    other probe of that batch size is not rerun but inferred from it."""
    report, data, _ = probe_run(**{**_BIG_BATCH, "lr": ["0.001", "0.01"]})
    by_id = {r.probe.id: r for r in report.results}
    fits = by_id["cw=none,lr=0.001,clip=none,bs=16"]
    too_big = by_id["cw=none,lr=0.001,clip=none,bs=16384"]
    assert fits.verdict.outcome.value != "oom_host"
    assert too_big.verdict.outcome.value == "oom_host"
    evidence = too_big.verdict.evidence
    assert evidence["enforced_by"] == "kernel"
    assert evidence["oom_evidence"] == "cgroup"
    assert evidence["oom_kills"] >= 1
    assert evidence["signal"] == "SIGKILL(-9)"
    assert evidence["enforcement"].startswith("cgroup-v")
    assert "OOM killer" in too_big.verdict.summary
    assert data["probes"][[p["id"] for p in data["probes"]].index(too_big.probe.id)][
        "category"] == "memory"
    inferred = by_id["cw=none,lr=0.01,clip=none,bs=16384"]
    assert inferred.verdict.outcome.value == "oom_host"
    assert inferred.verdict.evidence["inferred_from"] == too_big.probe.id
    assert inferred.verdict.evidence["ran"] is False
    assert inferred.run.steps_completed == 0


@pytest.mark.slow  # the kernel's kill above is the default tier's
def test_probe_over_budget_is_ended_by_the_watchdog_without_cgroups(probe_run, monkeypatch,
                                                                    grid_only):
    monkeypatch.setenv("STABCHECK_NO_CGROUP", "1")
    report, _, _ = probe_run(**_BIG_BATCH)
    fits, too_big = report.results
    assert fits.verdict.outcome.value != "oom_host"
    assert too_big.verdict.outcome.value == "oom_host"
    assert too_big.verdict.evidence["enforced_by"] == "watchdog"
    assert too_big.verdict.evidence["enforcement"] == "watchdog"
    assert too_big.run.memory.peak_host_bytes > 640 << 20


def test_stabcheck_survives_a_kernel_oom_kill_of_a_worker(
    probe_run, tmp_path, monkeypatch, grid_only
):
    """A worker that allocates far past its cgroup's limit dies; stabcheck writes its report.

    The budget here is a cgroup limit; the worker's allocation (3 GB of touched pages)
    is what an oversized batch does, only faster.
    """
    if cgroup.enforcement_method() == "watchdog":
        pytest.skip("no memory cgroup can be created on this machine")
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    report, _, _ = probe_run(
        model=f"{USER_MODELS}:hog", data="builtin:breast_cancer", class_weight=["none"],
        lr=["0.05", "0.06", "0.07"],
        steps=5, memory_budget="1500MiB",
    )
    first, killed, same_footprint = report.results
    assert first.verdict.outcome.value == "stable"
    assert killed.verdict.outcome.value == "oom_host"
    assert killed.verdict.evidence["oom_kills"] >= 1
    # The third probe has the same batch size and optimizer: its verdict is inferred.
    assert same_footprint.verdict.evidence["inferred_from"] == killed.probe.id


@pytest.mark.e2e
def test_a_broken_factory_is_a_usage_error(tmp_path):
    from stabcheck.config.settings import build_settings
    from stabcheck.errors import InputError
    from stabcheck.run.engine import run_probe_grid

    settings = build_settings(None, {
        "model": f"{USER_MODELS}:raises", "data": "builtin:breast_cancer",
        "journal": str(tmp_path / "j.jsonl"),
    })
    with pytest.raises(InputError, match="broken on purpose"):
        run_probe_grid(settings)
    assert not Path(tmp_path / "j.jsonl").exists() or True


@pytest.mark.slow
def test_check_numerics_names_the_operation_that_made_the_first_nan(probe_run):
    report, data, journal = probe_run(
        model="builtin:mlp", data="builtin:breast_cancer", optimizer="sgd",
        class_weight=["x1000"], lr=["100"], steps=30, check_numerics=True,
    )
    (result,) = report.results
    assert result.verdict.outcome.value == "non_finite"
    found = result.verdict.evidence["check_numerics"]
    assert found["op_type"] and found["operation"]
    assert f"op {found['operation']}" in result.verdict.summary
    assert any(line["type"] == "explained" for line in journal)


@pytest.mark.e2e
def test_a_seed_in_a_running_worker_trains_as_a_fresh_worker_under_that_seed(tmp_path):
    """A finalist's re-probe under another seed runs in a worker started under the run's
    seed: the model built again under the other seed gives the starting state (weights,
    BatchNorm statistics, Dropout's seed state) a fresh worker under it starts from, so
    every loss is the same to the last bit; and the worker's own seed is untouched."""
    from dataclasses import replace

    from stabcheck.config.settings import build_settings
    from stabcheck.executors.local_runner import ProbeRunner
    from stabcheck.inputs.prepare import load_inputs
    from stabcheck.plan import learning_rates, plan_probes
    from stabcheck.protocol.dataset import save_prepared
    from stabcheck.protocol.messages import WorkerInit

    settings = build_settings(None, dict(
        model=f"{USER_MODELS}:dropout_batchnorm", data="builtin:breast_cancer",
        class_weight=["balanced"], lr=[0.01], steps=12))
    inputs = load_inputs(settings, lambda _message: None)
    data = tmp_path / "dataset.npz"
    save_prepared(inputs.dataset, data)
    init = WorkerInit(str(data), inputs.spec.to_json(), None, None, seed=0)
    running = ProbeRunner(init, tmp_path, timeout=120, name="run")
    fresh = ProbeRunner(replace(init, seed=1), tmp_path, timeout=120, name="fresh")
    try:
        model = running.describe()
        inputs = inputs.checked_against(model)
        (probe,) = plan_probes(inputs.settings, lrs=learning_rates(inputs.settings, 0.01),
                               loss=model["loss"], optimizer=model["optimizer"],
                               weights_by_strategy=inputs.weights_by_name)
        weights = inputs.weights["balanced"]

        def losses(run):
            assert run.steps_completed == 12, run
            return [s.loss for s in run.steps]

        own = losses(running.run(probe, weights))
        other = losses(running.run(probe, weights, seed=1))
        again = losses(running.run(probe, weights))
        assert other == losses(fresh.run(probe, weights))
        assert own == again and own != other
    finally:
        running.close()
        fresh.close()
