"""The Ray executor on a real Ray cluster of this machine: a head node without CPUs and two
one-CPU worker nodes (``ray.cluster_utils.Cluster``), so that two actors land on two
nodes; and, for Ctrl-C, the local cluster a run starts and stops itself.

Real probes, real deaths: a kernel OOM kill under the budget, a segfault, a SIGKILLed Ray
worker, a lost node, SIGINT. The test process never imports TensorFlow (the workers do);
it imports Ray to hold the cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from stabcheck.config.settings import build_settings
from stabcheck.results import RunReport
from stabcheck.run.engine import Progress, run_probe_grid
from tests.conftest import FIXTURES, outcomes, validate_result
from tests.run.test_interrupt import Run, alive, descendants, signal_when, wait_for_probes

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # a Ray cluster and TensorFlow workers

USER_MODELS = FIXTURES / "user_models.py"
NODE_MEMORY = 3 << 30  # each worker node's ``memory`` resource
# 4 quick probes on breast_cancer: stable ones and a NaN (x100 at lr 1.0).
GRID = {"model": "builtin:mlp", "data": "builtin:breast_cancer", "optimizer": "sgd",
        "class_weight": ["none", "x100"], "lr": ["0.01", "1.0"], "steps": 20}


@pytest.fixture(scope="module")
def cluster():
    """Three Ray nodes on this machine: the head (no CPUs: no probe lands there) and two
    worker nodes of one CPU each."""
    nodes = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 80 << 20, "include_dashboard": False,
        # a lost node is marked dead within about 2 s (Ray's defaults: up to a minute)
        "_system_config": {"health_check_period_ms": 500, "health_check_timeout_ms": 500,
                           "health_check_failure_threshold": 3}})
    for _ in range(2):
        nodes.add_node(num_cpus=1, memory=NODE_MEMORY, object_store_memory=80 << 20)
    nodes.wait_for_nodes()
    yield nodes
    nodes.shutdown()


def probe(cluster: Cluster, tmp_path: Path, progress: Callable[[Progress], None] | None = None,
          **flags) -> tuple[RunReport, dict]:
    """``stabcheck probe`` in-process on the cluster; the report and its validated JSON."""
    flags = {"executor": "ray", "ray_address": cluster.address, "seeds": 1, "timeout": 120,
             "journal": str(tmp_path / "journal.jsonl"), **flags}
    report = run_probe_grid(build_settings(None, flags), progress)
    assert not ray.is_initialized()  # the run disconnected from the cluster it joined
    return report, validate_result(report, tmp_path)


def evidence(report: RunReport, index: int) -> dict:
    return report.results[index].verdict.evidence


def test_the_grid_on_two_ray_nodes_gives_the_local_executors_verdicts(cluster, tmp_path):
    """Two actors on two nodes, the same probes as two local workers: the same verdicts
    and the same loss curves (one thread each, the same seed)."""
    on_ray, data = probe(cluster, tmp_path, workers=2, **GRID)
    local = run_probe_grid(build_settings(None, {
        **GRID, "seeds": 1, "workers": 2, "journal": str(tmp_path / "local.jsonl")}))
    assert outcomes(on_ray) == outcomes(local)
    assert {"stable", "non_finite"} <= set(outcomes(on_ray).values())
    for ray_result, local_result in zip(on_ray.results, local.results, strict=True):
        ray_losses = [s.loss for s in ray_result.run.steps]
        local_losses = [s.loss for s in local_result.run.steps]
        assert ray_losses == pytest.approx(local_losses, rel=1e-5, nan_ok=True)
    env = data["environment"]
    assert env["executor"] == "ray" and env["ray"]["nodes"] == 3 and env["ray"]["cpus"] == 2
    nodes = {r.run.cluster["node_id"] for r in on_ray.results}
    assert len(nodes) == 2, nodes  # one actor on each worker node
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    journaled = {r["id"] for r in map(json.loads, lines) if r["type"] == "probe"}
    assert journaled == {r.probe.id for r in on_ray.results}  # a line per job (stage)


def test_a_probe_oom_killed_under_its_budget_on_a_ray_node_is_oom_host(cluster, tmp_path,
                                                                       monkeypatch):
    """The actor runs the probe in a child process under --memory-budget (a cgroup here):
    the kernel kills the child, not the actor, which reports the kill as locally."""
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    monkeypatch.setenv("STABCHECK_TEST_HOG_MB", "2000")  # forwarded to the actors
    report, _ = probe(cluster, tmp_path, model=f"{USER_MODELS}:hog",
                      data="builtin:breast_cancer", class_weight=["none"],
                      lr=["0.001", "0.002", "0.003"], steps=5, memory_budget="1GiB", workers=1)
    assert [r.verdict.outcome.value for r in report.results] == ["stable"] + ["oom_host"] * 2
    killed = evidence(report, 1)
    assert killed["enforced_by"] == "kernel" and killed["signal"] == "SIGKILL(-9)"
    assert killed["budget_bytes"] == 1 << 30
    # the batch size ran out of memory: its next probe is not run again, as locally
    assert evidence(report, 2)["inferred_from"] == report.results[1].probe.id


def test_a_segfault_on_a_ray_node_is_crashed_with_its_signal(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    report, _ = probe(cluster, tmp_path, model=f"{USER_MODELS}:segv",
                      data="builtin:breast_cancer", class_weight=["none"],
                      lr=["0.001", "0.002", "0.003"], steps=5, workers=1)
    assert [r.verdict.outcome.value for r in report.results] == ["stable", "crashed", "stable"]
    assert evidence(report, 1)["signal"] == "SIGSEGV(-11)"


def test_a_probe_killed_by_rays_memory_monitor_is_oom_host_with_rays_evidence(tmp_path):
    """No budget: the probe's worker grows by 4 GB and the node crosses Ray's memory
    threshold (``RAY_memory_usage_threshold``, set 1.5 GB above what this machine uses
    now, for the local cluster the run starts), so Ray's memory monitor kills the actor:
    oom_host with Ray's OutOfMemoryError, the node and its memory at the kill."""
    memory = psutil.virtual_memory()
    threshold = (memory.total - memory.available + (1500 << 20)) / memory.total
    env = {**os.environ, "STABCHECK_TEST_TRIP_FILE": str(tmp_path / "trips"),
           "STABCHECK_TEST_HOG_MB": "4000", "RAY_memory_usage_threshold": f"{threshold:.4f}",
           "RAY_memory_monitor_refresh_ms": "100"}
    out = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "stabcheck", "probe", "--model", f"{USER_MODELS}:hog",
         "--data", "builtin:breast_cancer", "--class-weight", "none", "--lr", "0.001,0.002",
         "--steps", "5", "--seeds", "1", "--executor", "ray", "--workers", "1",
         "--json", str(out), "--journal", str(tmp_path / "j.jsonl")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]  # a memory verdict
    probes = json.loads(out.read_text())["probes"]
    assert [p["outcome"] for p in probes] == ["stable", "oom_host"]
    killed = probes[1]
    assert killed["evidence"]["enforced_by"] == "ray"
    cluster = killed["evidence"]["cluster"]
    assert cluster["error"] == "OutOfMemoryError" and cluster["oom"] is True
    assert "stabcheck.worker" in cluster["message"]  # Ray's table of the node's top users
    assert 0 < cluster["node_memory_used_bytes"] <= cluster["node_memory_total_bytes"]
    assert "killed by Ray for memory" in killed["summary"]
    assert "(raylet)" not in done.stdout  # Ray's own account stays off the report


def test_a_probe_past_its_timeout_on_a_ray_node_is_timeout(cluster, tmp_path, monkeypatch):
    """The actor's runner ends a probe that hangs past --timeout (its worker killed), as
    locally; the actor carries on with a fresh worker."""
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    report, _ = probe(cluster, tmp_path, model=f"{USER_MODELS}:hang",
                      data="builtin:breast_cancer", class_weight=["none"],
                      lr=["0.001", "0.002", "0.003"], steps=5, workers=1, timeout=8)
    assert [r.verdict.outcome.value for r in report.results] == ["stable", "timeout", "stable"]
    assert 8 <= report.results[1].run.duration_s < 30


def _when_hung(tmp_path: Path, act: Callable[[psutil.Process], None]) -> threading.Thread:
    """A thread that waits for the hanging probe (its worker's trip counter reached 8) and
    then calls ``act`` with the Ray actor process that hosts its worker."""

    def watch() -> None:
        trips = tmp_path / "trips"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if trips.exists() and (trips.read_text() or "0") == "8":
                worker = _worker_of(tmp_path)
                if worker is not None:
                    act(worker.parent())
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _worker_of(tmp_path: Path) -> psutil.Process | None:
    """The live probe worker whose environment names this test's trip file."""
    for proc in psutil.process_iter():
        try:
            if ("stabcheck.worker" in " ".join(proc.cmdline())
                    and proc.environ().get("STABCHECK_TEST_TRIP_FILE") == str(tmp_path / "trips")):
                return proc
        except psutil.Error:
            continue
    return None


def test_a_sigkilled_ray_worker_is_crashed_and_its_probe_worker_does_not_outlive_it(
        cluster, tmp_path, monkeypatch):
    """SIGKILL of the actor's process (a Ray worker) while its probe hangs: that probe is
    crashed with Ray's evidence (the pid, the node), the next probe gets a fresh actor,
    and the orphaned probe worker ends by itself."""
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    victims: list[psutil.Process] = []

    def kill(actor: psutil.Process) -> None:
        victims.extend([actor, *actor.children()])
        actor.send_signal(signal.SIGKILL)

    watcher = _when_hung(tmp_path, kill)
    report, _ = probe(cluster, tmp_path, model=f"{USER_MODELS}:hang",
                      data="builtin:breast_cancer", class_weight=["none"],
                      lr=["0.001", "0.002", "0.003"], steps=5, workers=1)
    watcher.join(1)
    assert victims, "the hanging probe's worker was never found"
    assert [r.verdict.outcome.value for r in report.results] == ["stable", "crashed", "stable"]
    lost = report.results[1]
    cluster_evidence = lost.verdict.evidence["cluster"]
    assert cluster_evidence["error"] == "ActorDiedError"
    assert cluster_evidence["pid"] == victims[0].pid
    assert not cluster_evidence["node_lost"]
    assert f"pid {victims[0].pid}" in lost.verdict.summary
    deadline = time.monotonic() + 10
    while any(alive(p) for p in victims[1:]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in victims[1:]), "the probe worker outlived its actor"


def test_a_lost_ray_node_is_crashed_naming_the_node(cluster, tmp_path, monkeypatch):
    """The node hosting the hanging probe's actor goes down (its raylet killed): the probe
    is crashed, its evidence names the lost node; the next probe runs on the other node."""
    monkeypatch.setenv("STABCHECK_TEST_TRIP_FILE", str(tmp_path / "trips"))
    removed: list = []

    def lose_node(actor: psutil.Process) -> None:
        raylets = {node.all_processes["raylet"][0].process.pid: node
                   for node in cluster.worker_nodes}
        node = raylets[actor.ppid()]  # Ray workers are their raylet's children
        removed.append(node)
        cluster.remove_node(node, allow_graceful=False)

    watcher = _when_hung(tmp_path, lose_node)
    try:
        report, _ = probe(cluster, tmp_path, model=f"{USER_MODELS}:hang",
                          data="builtin:breast_cancer", class_weight=["none"],
                          lr=["0.001", "0.002", "0.003"], steps=5, workers=1)
    finally:
        watcher.join(1)
        if removed:  # the cluster of the next tests has two worker nodes again
            cluster.add_node(num_cpus=1, memory=NODE_MEMORY, object_store_memory=80 << 20)
            cluster.wait_for_nodes()
    assert removed, "the hanging probe's node was never found"
    assert [r.verdict.outcome.value for r in report.results] == ["stable", "crashed", "stable"]
    lost = report.results[1].verdict
    assert lost.evidence["cluster"]["node_lost"] is True
    assert lost.evidence["cluster"]["node_id"] == removed[0].node_id
    assert "was lost" in lost.summary
    assert report.results[2].run.cluster["node_id"] != removed[0].node_id


def test_sigint_ends_a_run_on_its_own_local_ray_cluster_with_no_ray_process_left(tmp_path):
    """``--executor ray`` without an address starts a local cluster; Ctrl-C exits 130 with
    the partial report, and the cluster (GCS, raylet, actors, probe workers) is gone."""
    journal = tmp_path / "j.jsonl"
    # six settings: after the first result, the first rung's others and the contenders'
    # 400 steps are still to run when the signal comes (three settings are one stage,
    # whose probes can all end together before it)
    run = Run(["probe", "--model", "builtin:cnn", "--data", "builtin:digits",
               "--class-weight", "none", "--lr", "0.001,0.002,0.003,0.004,0.005,0.006",
               "--steps", "400", "--seeds", "1", "--executor", "ray",
               "--json", str(tmp_path / "r.json"), "--journal", str(journal)], tmp_path)
    names: set[str] = set()

    def ready() -> None:
        wait_for_probes(run, journal, 1, timeout=240)
        names.update(_name(p) for p in descendants(run.pid))

    code, before = signal_when(run, ready, signal.SIGINT)
    assert code == 130, run.stderr[-3000:]
    assert {"raylet", "gcs_server"} <= names, names  # Ray's own processes were there
    deadline = time.monotonic() + 15
    while any(alive(p) for p in before) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [f"{p.pid} {_name(p)}" for p in before if alive(p)]
    assert not left, left
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["interrupted"] is True and len(result["probes"]) >= 1
    assert "interrupted" in run.stdout.lower()


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "(gone)"
