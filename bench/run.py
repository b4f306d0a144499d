"""``make bench``: the demo grid run several ways in one run, side by side, against the floor.

The grid: builtin:cnn on builtin:digits made long-tailed (imbalance 0.05), class_weight
none/balanced/x100, lr 1e-3/1e-2/1e-1, clip none/global_norm=1.0, batch size 32, 100 steps:
18 probes. The ways (each in its own subprocess, one at a time):

1. stabcheck: ``stabcheck probe ...`` (wall time; peak RSS of the stabcheck process itself,
   not its workers, sampled every 20 ms), then the same command with ``--executor ray
   --ray-address`` a running Ray cluster of this machine (``ray start --head``, before the
   timed run, as a team's cluster is: the executor's overhead against 1), and with
   ``--executor ray`` alone (a local cluster that starts and stops with the run: the
   overhead plus Ray's start and stop);
2. a plain in-process ``model.fit`` loop (``bench/fit_loop.py``): TF import, loop, per-probe
   and steady-state step times;
3. KerasTuner ``GridSearch`` over the same grid (``bench/tuner.py``);
4. a fresh process per setting (``bench/fit_loop.py --only I``, 18 times);
5. the floor: one TF import + the steady-state step time of every probe (both from 2);
6. how the cost grows: stabcheck at 2x and 4x the grid and at 2x the steps, against the
   floor scaled the same way.

Prints a table with the project's targets and writes every figure to
``bench/results/latest.json`` and ``bench/results/<UTC time>-<git sha>.json``.
Options: ``--quick`` (skip 4 and 6), ``--repeat N`` (median of N runs of 1 and 2).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import common  # noqa: E402

# RAY_AUTH_MODE: a cluster of `ray start` takes the runs' connections without a token.
ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
       "RAY_AUTH_MODE": "disabled"}
PY = sys.executable
TIMEOUT_S = 1800
RSS_INTERVAL_S = 0.020
TREE_INTERVAL_S = 0.2  # a scan of the process tree costs a few ms of CPU
MB = 1e6

TARGETS = {  # for the demo grid on two cores
    "stabcheck_over_floor": ("<=", 1.3),
    "fit_loop_over_stabcheck": (">=", 2.0),
    "tuner_over_stabcheck": (">=", 2.5),
    "fresh_over_stabcheck": (">=", 5.0),
    "stabcheck_peak_rss_mb": ("<", 200.0),
    "ray_overhead": ("<=", 0.15),  # Ray executor (running cluster) / local executor - 1
}
RAY_FLAGS = ("--executor", "ray")  # no --ray-address: a local cluster for the run
RAY_SETTLE_S = 10.0  # after `ray start`: its dashboard and runtime-env agents start (~5 CPU s)


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------ measuring


def _busy_cpu_s() -> tuple[float, float]:
    """(CPU seconds all cores spent busy since boot, seconds stolen by the hypervisor)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return busy, getattr(t, "steal", 0.0)


def _our_cpu_s() -> float:
    """CPU seconds of this process and of its waited-for descendants (workers included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """How much CPU the measured command used, and how much *other* processes used meanwhile
    (a concurrent test run on a two-core machine skews every timing)."""

    def __init__(self) -> None:
        self.busy0, self.steal0 = _busy_cpu_s()
        self.ours0 = _our_cpu_s()
        self.t0 = time.perf_counter()

    def stop(self, ours_at_least: float = 0.0) -> dict:
        """The figures so far; ``ours_at_least``: CPU seconds the command is known to have
        used that rusage may miss (processes reaped by a descendant that discards their
        times, as Ray's raylet does)."""
        wall = time.perf_counter() - self.t0
        busy, steal = _busy_cpu_s()
        ours = max(_our_cpu_s() - self.ours0, ours_at_least)
        foreign = max(0.0, (busy - self.busy0) - ours)
        cores = psutil.cpu_count() or 1
        return {
            "wall_s": wall,
            "cpu_s": ours,
            "foreign_cpu_s": foreign,
            "foreign_share": foreign / (wall * cores) if wall > 0 else 0.0,
            "steal_s": steal - self.steal0,
        }


class RssSampler(threading.Thread):
    """Peak RSS of one process (not its children), sampled every ``RSS_INTERVAL_S``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                rss = self.proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                break
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._halt.wait(RSS_INTERVAL_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()


class TreeCpuSampler(threading.Thread):
    """CPU seconds of a process and of every descendant seen, each as last sampled (every
    ``TREE_INTERVAL_S``): a lower bound that, unlike rusage, includes descendants whose
    parent discards their times (Ray's actors, reaped by the raylet)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.seen: dict[tuple[int, float], float] = {}
        self._halt = threading.Event()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                t = proc.cpu_times()
                self.seen[(proc.pid, proc.create_time())] = t.user + t.system
            except psutil.Error:
                pass

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(TREE_INTERVAL_S)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return sum(self.seen.values())


def run_cmd(cmd: list[str], logdir: Path, tag: str, *, sample_rss: bool = False,
            tree_cpu: bool = False) -> dict:
    """Run ``cmd`` to completion; wall time, exit code, CPU use, peak RSS if asked;
    ``tree_cpu``: also sample the CPU of its process tree (``TreeCpuSampler``)."""
    out_path, err_path = logdir / f"{tag}.out", logdir / f"{tag}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        watch = CpuWatch()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        sampler = RssSampler(proc.pid) if sample_rss else None
        tree = TreeCpuSampler(proc.pid) if tree_cpu else None
        for thread in (sampler, tree):
            if thread:
                thread.start()
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if sampler:
            sampler.stop()
        tree_s = tree.stop() if tree else 0.0
        figures = watch.stop(ours_at_least=tree_s)
    figures["rc"] = rc
    if tree:
        figures["tree_cpu_s"] = tree_s
    if sampler:
        figures["peak_rss_bytes"] = sampler.peak
        figures["rss_samples"] = sampler.samples
    if rc != 0:
        tail = err_path.read_text(errors="replace")[-3000:]
        figures["stderr_tail"] = tail
        log(f"  ! {tag} exited {rc}; stderr tail:\n{tail}")
    return figures


# ---------------------------------------------------------------------------- the ways


def run_with_result(cmd: list[str], logdir: Path, tag: str, out: Path) -> dict:
    """``run_cmd``, then the JSON the command wrote to ``out`` as ``figures["result"]``
    (or ``figures["error"]`` when it wrote none)."""
    figures = run_cmd(cmd, logdir, tag)
    try:
        figures["result"] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        figures["error"] = f"no result ({exc})"
        log(f"  ! {tag}: {figures['error']}")
    return figures


def stabcheck_exe() -> str:
    exe = Path(PY).parent / "stabcheck"
    return str(exe) if exe.exists() else (shutil.which("stabcheck") or "stabcheck")


def run_stabcheck(tmp: Path, tag: str, lrs=common.LRS, clips=common.CLIPS,
                  steps: int = common.STEPS, extra: tuple[str, ...] = ()) -> dict:
    """``stabcheck probe`` over the grid, ``extra`` flags appended (e.g. ``RAY_FLAGS``)."""
    json_path, journal = tmp / f"{tag}.json", tmp / f"{tag}.jsonl"
    cmd = [
        stabcheck_exe(), "probe",
        "--model", f"builtin:{common.MODEL}", "--data", common.DATA,
        "--imbalance", f"{common.IMBALANCE:g}",
        "--class-weight", ",".join(common.CLASS_WEIGHTS),
        "--lr", ",".join(f"{v:g}" for v in lrs),
        "--clip", ",".join(clips),
        "--batch-size", str(common.BATCH_SIZE), "--steps", str(steps),
        "--fail-on", "none", "--json", str(json_path), "--journal", str(journal),
        # The grid against the same grid: the finalists' re-probes under other seeds
        # (default --seeds 3: about 18 s more here) are work no fit loop does.
        "--seeds", "1",
        *extra,
    ]
    expected = len(common.CLASS_WEIGHTS) * len(lrs) * len(clips)
    log(f"- stabcheck [{tag}]: {expected} probes x {steps} steps ...")
    # Ray's actors are reaped by its raylet, which discards their CPU times: sample them.
    figures = run_cmd(cmd, tmp, tag, sample_rss=True, tree_cpu="ray" in extra)
    figures.update(command=" ".join(cmd[1:]), expected_probes=expected, steps=steps,
                   extra=list(extra))
    try:
        report = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        figures["error"] = f"no JSON result ({exc})"
        log(f"  ! {figures['error']}")
        return figures
    probes = report.get("probes", [])
    figures.update(
        n_probes=len(probes),
        outcomes=dict(collections.Counter(p.get("outcome") for p in probes)),
        steps_completed=sum(int(p.get("steps_completed") or 0) for p in probes),
        steps_planned=sum(int(p.get("steps_planned") or steps) for p in probes),
        sum_probe_duration_s=sum(float(p.get("duration_s") or 0.0) for p in probes),
        max_worker_peak_host_bytes=max((p.get("peak_host_bytes") or 0 for p in probes),
                                       default=0),
        worker_import_s=(report.get("environment") or {}).get("import_s"),
        workers=(report.get("config") or {}).get("workers"),
        probe_steps={
            repr(_stabcheck_key(p)): int(p.get("steps_completed") or 0) for p in probes},
        probe_outcomes={repr(_stabcheck_key(p)): p.get("outcome") for p in probes},
        executor=(report.get("environment") or {}).get("executor"),
    )
    if len(probes) != expected:
        figures["error"] = f"{len(probes)} probes in the result, {expected} expected"
        log(f"  ! {figures['error']}")
    log(f"  {figures['wall_s']:.1f} s, peak RSS {figures['peak_rss_bytes'] / MB:.0f} MB, "
        f"{figures['steps_completed']}/{figures['steps_planned']} steps run, "
        f"outcomes {figures['outcomes']}")
    return figures


def _stabcheck_key(probe: dict) -> tuple:
    s = probe.get("settings", {})
    return (s.get("class_weight"), round(float(s.get("learning_rate", 0.0)), 12),
            common.normalize_clip(str(s.get("clip", "none"))))


@contextlib.contextmanager
def running_ray_cluster(tmp: Path) -> Iterator[str]:
    """A Ray cluster of this machine (``ray start --head``, all its cores), up before the
    timed run as a team's cluster is; its address. ``ray stop`` after."""
    ray = str(Path(PY).parent / "ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = subprocess.run(
        [ray, "start", "--head", "--port", str(port), "--num-cpus", str(os.cpu_count() or 1),
         "--include-dashboard", "false", "--disable-usage-stats"],
        env=ENV, cwd=tmp, capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        raise RuntimeError(f"ray start failed: {start.stderr[-1000:]}")
    time.sleep(RAY_SETTLE_S)  # its agents finish starting: a team's cluster is idle, not booting
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop"], env=ENV, cwd=tmp, capture_output=True, timeout=120)


def outcome_mismatch(local: dict | None, other: dict | None) -> str | None:
    """Why two stabcheck runs of the same grid disagree on the probes' outcomes (the
    Counter of outcomes, then probe by probe), or None when they agree."""
    if not local or not other or "outcomes" not in local or "outcomes" not in other:
        return None
    if collections.Counter(local["outcomes"]) != collections.Counter(other["outcomes"]):
        return f"outcomes {local['outcomes']} locally, {other['outcomes']} on Ray"
    a, b = local.get("probe_outcomes") or {}, other.get("probe_outcomes") or {}
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if differ:
        return (f"same counts, but {len(differ)} probes differ, e.g. {differ[0]}: "
                f"{a.get(differ[0])} locally, {b.get(differ[0])} on Ray")
    return None


def run_fit_loop(tmp: Path, tag: str, only: int | None = None, quiet: bool = False) -> dict:
    out = tmp / f"{tag}.result.json"
    cmd = [PY, str(HERE / "fit_loop.py"), "--out", str(out)]
    if only is not None:
        cmd += ["--only", str(only)]
    if not quiet:
        log(f"- plain model.fit loop [{tag}] ...")
    figures = run_with_result(cmd, tmp, tag, out)
    if "error" in figures:
        return figures
    r = figures["result"]
    if not quiet:
        log(f"  {figures['wall_s']:.1f} s (TF import {r['import_s']:.2f} s, "
            f"loop {r['loop_s']:.1f} s, "
            f"median steady step {r['median_steady_step_s'] * 1e3:.2f} ms)")
    return figures


def run_tuner(tmp: Path) -> dict:
    out = tmp / "tuner.result.json"
    log("- KerasTuner GridSearch ...")
    figures = run_with_result([PY, str(HERE / "tuner.py"), "--out", str(out)], tmp, "tuner",
                              out)
    if "error" in figures:
        return figures
    r = figures["result"]
    n = len(common.grid())
    if r["n_trials"] != n or r["n_distinct_settings"] != n:
        figures["error"] = (f"{r['n_trials']} trials, {r['n_distinct_settings']} distinct "
                            f"settings; {n} expected")
        log(f"  ! tuner: {figures['error']}")
    log(f"  {figures['wall_s']:.1f} s (import {r['import_s']:.2f} s, search {r['search_s']:.1f} s, "
        f"{r['n_trials']} trials)")
    return figures


def run_fresh(tmp: Path) -> dict:
    n = len(common.grid())
    log(f"- a fresh process per setting ({n} processes) ...")
    watch = CpuWatch()
    runs = [run_fit_loop(tmp, f"fresh-{i:02d}", only=i, quiet=True) for i in range(n)]
    figures = watch.stop()
    figures["runs"] = [{k: r.get(k) for k in ("wall_s", "rc", "error")} for r in runs]
    figures["per_process_median_s"] = statistics.median(r["wall_s"] for r in runs)
    failed = [i for i, r in enumerate(runs) if r.get("rc") != 0 or r.get("error")]
    if failed:
        figures["error"] = f"processes {failed} failed"
    log(f"  {figures['wall_s']:.1f} s ({figures['per_process_median_s']:.2f} s per process)")
    return figures


# ----------------------------------------------------------------------------- figures


def floor_from(fit: dict) -> dict:
    """One TF import + every probe's steady-state step time x steps (both from the loop)."""
    r = fit["result"]
    return {
        "import_s": r["import_s"],
        "steady_steps_s": r["sum_steady_steps_s"],
        "total_s": r["import_s"] + r["sum_steady_steps_s"],
        "median_steady_step_s": r["median_steady_step_s"],
    }


def floor_for_steps_run(fit: dict, stab: dict) -> float | None:
    """The floor for the steps stabcheck actually ran (it stops decided probes early)."""
    steady = {repr(common.Setting(p["class_weight"], p["lr"], p["clip"]).key()): p["steady_step_s"]
              for p in fit["result"]["probes"]}
    ran = stab.get("probe_steps") or {}
    if set(ran) != set(steady):
        return None
    return fit["result"]["import_s"] + sum(steady[k] * n for k, n in ran.items())


def floor_model(import_s: float, step_s: float, n_probes: int, steps: int) -> float:
    return import_s + n_probes * steps * step_s


def verdict(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    op, target = TARGETS[name]
    ok = {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
    return "PASS" if ok else "MISS"


def representative(runs: list[dict]) -> dict | None:
    """The run whose wall time is the median one (the lower middle of an even count)."""
    if not runs:
        return None
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None




def versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("stabcheck", "tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def fmt_x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def fmt_s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


# ------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip the fresh-process-per-setting and scaling parts")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of stabcheck and of the fit loop (their median is used)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    t_bench = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    git = common.git_info()
    n_grid = len(common.grid())
    cores = psutil.cpu_count() or 1
    log(f"stabcheck bench: {n_grid} probes (cnn on digits, imbalance {common.IMBALANCE}, "
        f"batch {common.BATCH_SIZE}, {common.STEPS} steps), {cores} cores, commit {git['sha']}"
        f"{' (uncommitted changes)' if git['dirty'] else ''}")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="stabcheck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        log("- warming the page cache (one untimed import of TF, Keras, KerasTuner, stabcheck)")
        warm = run_cmd([PY, "-c", "import tensorflow, keras, keras_tuner, stabcheck.cli.app, "
                        "stabcheck.worker.probe"], tmp, "warmup")

        stab_runs, ray_runs, ray_started_runs, fit_runs = [], [], [], []
        for i in range(args.repeat):
            stab_runs.append(run_stabcheck(tmp, f"stabcheck-{i}"))
            with running_ray_cluster(tmp) as address:
                ray_runs.append(run_stabcheck(tmp, f"stabcheck-ray-{i}",
                                              extra=(*RAY_FLAGS, "--ray-address", address)))
            ray_started_runs.append(run_stabcheck(tmp, f"stabcheck-ray-started-{i}",
                                                  extra=RAY_FLAGS))
            fit_runs.append(run_fit_loop(tmp, f"fitloop-{i}"))
        tuner = run_tuner(tmp)
        fresh = None if args.quick else run_fresh(tmp)
        scaling_runs = {}
        if not args.quick:
            scaling_runs["2x grid"] = run_stabcheck(tmp, "stabcheck-2xgrid", lrs=common.LRS_2X)
            scaling_runs["4x grid"] = run_stabcheck(tmp, "stabcheck-4xgrid", lrs=common.LRS_2X,
                                                    clips=common.CLIPS_4X)
            scaling_runs["2x steps"] = run_stabcheck(tmp, "stabcheck-2xsteps",
                                                     steps=2 * common.STEPS)

    # ---- medians over repeats
    good_fit = [f for f in fit_runs if "result" in f and f.get("rc") == 0]
    good_stab = [s for s in stab_runs if s.get("rc") == 0 and not s.get("error")]
    stab_wall = med(s["wall_s"] for s in good_stab)
    stab_rss = med(s.get("peak_rss_bytes") for s in good_stab)
    good_ray = [s for s in ray_runs if s.get("rc") == 0 and not s.get("error")]
    ray_wall = med(s["wall_s"] for s in good_ray)
    good_started = [s for s in ray_started_runs if s.get("rc") == 0 and not s.get("error")]
    started_wall = med(s["wall_s"] for s in good_started)
    fit_wall = med(f["wall_s"] for f in good_fit)
    floors = [floor_from(f) for f in good_fit]
    floor = {k: med(fl[k] for fl in floors) for k in floors[0]} if floors else None
    floor_ran = med(floor_for_steps_run(f, s) for f, s in zip(fit_runs, stab_runs, strict=True)
                    if f in good_fit and s in good_stab)
    stab_rep = representative(good_stab)  # the run whose wall time is the median: breakdowns
    ray_rep = representative(good_ray)
    started_rep = representative(good_started)
    fit_rep = representative(good_fit)
    tuner_wall = tuner["wall_s"] if tuner.get("rc") == 0 and not tuner.get("error") else None
    fresh_wall = fresh["wall_s"] if fresh and not fresh.get("error") else None

    def ratio(a, b):
        return a / b if a is not None and b else None

    ratios = {
        "stabcheck_over_floor": ratio(stab_wall, floor and floor["total_s"]),
        "fit_loop_over_stabcheck": ratio(fit_wall, stab_wall),
        "tuner_over_stabcheck": ratio(tuner_wall, stab_wall),
        "fresh_over_stabcheck": ratio(fresh_wall, stab_wall),
        "stabcheck_peak_rss_mb": stab_rss / MB if stab_rss else None,
        "ray_over_local": ratio(ray_wall, stab_wall),
        "ray_started_over_local": ratio(started_wall, stab_wall),
    }
    ratios["ray_overhead"] = (None if ratios["ray_over_local"] is None
                              else ratios["ray_over_local"] - 1.0)
    ray_per_probe = (None if ray_wall is None or stab_wall is None
                     else (ray_wall - stab_wall) / n_grid)
    ray_mismatch = (outcome_mismatch(stab_rep, ray_rep)
                    or outcome_mismatch(stab_rep, started_rep))

    # ---- scaling
    scaling = {}
    if scaling_runs and floor and stab_wall:
        imp, step = floor["import_s"], floor["median_steady_step_s"]
        base_floor = floor_model(imp, step, n_grid, common.STEPS)
        scaling["demo grid"] = {"n_probes": n_grid, "steps": common.STEPS, "wall_s": stab_wall,
                                "growth": 1.0, "floor_s": base_floor, "floor_growth": 1.0,
                                "step_growth": 1.0}
        for name, run in scaling_runs.items():
            n, steps = run["expected_probes"], run["steps"]
            fl = floor_model(imp, step, n, steps)
            ok = run.get("rc") == 0 and not run.get("error")
            growth = run["wall_s"] / stab_wall if ok else None
            scaling[name] = {
                "n_probes": n, "steps": steps, "wall_s": run["wall_s"] if ok else None,
                "growth": growth, "floor_s": fl, "floor_growth": fl / base_floor,
                "step_growth": (n * steps) / (n_grid * common.STEPS),
                "verdict": ("n/a" if growth is None
                            else "PASS" if growth <= fl / base_floor else "MISS"),
                "peak_rss_mb": (run.get("peak_rss_bytes") or 0) / MB,
                "stabcheck_over_floor": run["wall_s"] / fl if ok else None,
            }

    # ---- contention
    measured = [*stab_runs, *ray_runs, *ray_started_runs, *fit_runs, tuner,
                *([fresh] if fresh else []), *scaling_runs.values()]
    foreign = sum(m.get("foreign_cpu_s", 0.0) for m in measured)
    walls = sum(m.get("wall_s", 0.0) for m in measured)
    foreign_share = foreign / (walls * cores) if walls else 0.0

    # ---- table
    rows = []  # (way, wall, its CPU seconds, others' CPU share while it ran, note)
    if stab_wall is not None:
        s0 = stab_rep
        early = (" (decided probes stopped early)"
                 if s0["steps_completed"] < s0["steps_planned"] else "")
        rows.append(("stabcheck", stab_wall, s0["cpu_s"], s0["foreign_share"],
                     f"{s0['n_probes']} probes, {s0['steps_completed']}/{s0['steps_planned']} "
                     f"steps run{early}; worker TF import {s0.get('worker_import_s') or 0:.1f} s, "
                     f"probes {s0['sum_probe_duration_s']:.1f} s"))
    if ray_wall is not None:
        s0 = ray_rep
        per = "n/a" if ray_per_probe is None else f"{ray_per_probe:+.2f} s"
        rows.append(("stabcheck, Ray executor (running cluster)", ray_wall, s0["cpu_s"],
                     s0["foreign_share"],
                     f"{per} per probe over the local executor (connecting, actors, "
                     f"polling); {s0['n_probes']} probes, "
                     f"{s0['steps_completed']}/{s0['steps_planned']} steps run"))
    if started_wall is not None:
        s0 = started_rep
        rows.append(("stabcheck, Ray executor (cluster of the run)", started_wall,
                     s0["cpu_s"], s0["foreign_share"],
                     f"{(started_wall - (stab_wall or 0)) / n_grid:+.2f} s per probe over the "
                     "local executor (Ray's start and stop included)"))
    if fit_wall is not None:
        r = fit_rep["result"]
        per = statistics.median(p["total_s"] for p in r["probes"])
        first = statistics.median(p["first_step_s"] for p in r["probes"])
        rows.append(("plain model.fit loop (1 process)", fit_wall, fit_rep["cpu_s"],
                     fit_rep["foreign_share"],
                     f"TF import {r['import_s']:.1f} s + loop {r['loop_s']:.1f} s; "
                     f"{per:.2f} s per probe, first step {first:.2f} s"))
    if tuner_wall is not None:
        r = tuner["result"]
        rows.append(("KerasTuner GridSearch (1 process)", tuner_wall, tuner["cpu_s"],
                     tuner["foreign_share"],
                     f"import {r['import_s']:.1f} s + search {r['search_s']:.1f} s, "
                     f"{r['n_trials']} trials"))
    if fresh_wall is not None:
        rows.append(("fresh process per setting", fresh_wall, fresh["cpu_s"],
                     fresh["foreign_share"],
                     f"{n_grid} processes one after another, "
                     f"{fresh['per_process_median_s']:.2f} s each"))
    if floor:
        rows.append(("floor (1 import + steady steps)", floor["total_s"], None, None,
                     f"import {floor['import_s']:.1f} s + steps {floor['steady_steps_s']:.1f} s "
                     f"({n_grid} x {common.STEPS} x {floor['median_steady_step_s'] * 1e3:.2f} ms "
                     f"median)"))
        if floor_ran is not None and abs(floor_ran - floor["total_s"]) > 0.01 * floor["total_s"]:
            rows.append(("floor for the steps stabcheck ran", floor_ran, None, None,
                         "for reference"))

    log("")
    repeats = f", median of {args.repeat} runs" if args.repeat > 1 else ""
    log(f"== Wall time, demo grid ({n_grid} probes x {common.STEPS} steps, batch "
        f"{common.BATCH_SIZE}, {cores} cores{repeats})")
    log(f"  {'way':<40} {'wall':>10} {'CPU':>8} {'others':>7}   breakdown")
    for name, wall, cpu, share, note in rows:
        cpu_shown = "" if cpu is None else f"{cpu:.1f} s"
        shown = "" if share is None else f"{share:.0%}"
        log(f"  {name:<40} {wall:8.1f} s {cpu_shown:>8} {shown:>7}   {note}")
    if args.repeat > 1:
        stab_walls = ", ".join(f"{r['wall_s']:.1f}" for r in stab_runs)
        ray_walls = ", ".join(f"{r['wall_s']:.1f}" for r in ray_runs)
        fit_walls = ", ".join(f"{r['wall_s']:.1f}" for r in fit_runs)
        log(f"  runs: stabcheck {stab_walls} s; Ray {ray_walls} s; fit loop {fit_walls} s")
    log("  (CPU: its own and its children's CPU time; others: the share of the machine's CPU")
    log("   that other processes used meanwhile)")
    log("")
    log("== Against the targets")
    labels = {
        "stabcheck_over_floor": "stabcheck / floor",
        "fit_loop_over_stabcheck": "speed-up vs plain model.fit loop",
        "tuner_over_stabcheck": "speed-up vs KerasTuner GridSearch",
        "fresh_over_stabcheck": "speed-up vs fresh process per setting",
        "stabcheck_peak_rss_mb": "stabcheck process peak RSS",
        "ray_overhead": "Ray executor overhead (Ray / local - 1)",
    }
    verdicts = {}
    for key, label in labels.items():
        value = ratios[key]
        op, target = TARGETS[key]
        verdicts[key] = verdict(key, value)
        shown = ("n/a" if value is None else f"{value:.0f} MB" if key.endswith("_mb")
                 else f"{value:+.1%}" if key.endswith("_overhead") else f"{value:.2f}x")
        tshown = (f"{op} {target:g} MB" if key.endswith("_mb")
                  else f"{op} {target:.0%}" if key.endswith("_overhead")
                  else f"{op} {target:g}x")
        log(f"  {label:<40} {shown:>9}   target {tshown:<10} {verdicts[key]}")
    if ratios["ray_over_local"] is not None:
        log(f"  (Ray / local {ratios['ray_over_local']:.2f}x: {ray_wall:.1f} s against "
            f"{stab_wall:.1f} s, {ray_per_probe:+.2f} s per probe over {n_grid} probes)")
    if ratios["ray_started_over_local"] is not None:
        log(f"  (a Ray cluster started and stopped by the run: "
            f"{ratios['ray_started_over_local'] - 1:+.1%}, {started_wall:.1f} s; no target: "
            f"it adds Ray's own start and stop, a fixed cost of a few seconds)")
    if ray_mismatch:
        log(f"! the Ray and local runs disagree on the probes' outcomes: {ray_mismatch}")
    if scaling:
        log("")
        log("== How the cost grows (stabcheck vs the floor scaled the same way)")
        log(f"  {'run':<10} {'probes':>6} {'steps':>5} {'stabcheck':>10} {'growth':>7} "
            f"{'floor':>8} {'floor growth':>12} {'steps growth':>12}  verdict")
        for name, s in scaling.items():
            log(f"  {name:<10} {s['n_probes']:>6} {s['steps']:>5} {fmt_s(s['wall_s']):>10} "
                f"{fmt_x(s['growth']):>7} {fmt_s(s['floor_s']):>8} {fmt_x(s['floor_growth']):>12} "
                f"{fmt_x(s['step_growth']):>12}  {s.get('verdict', '')}")
        log("  (PASS: total time grows no faster than the floor does)")
    log("")
    if foreign_share > 0.05:
        log(f"! other processes used {foreign_share:.0%} of the {cores} cores while this ran "
            f"({foreign:.0f} CPU s): the timings are skewed; rerun on a quiet machine")
    else:
        log(f"other processes used {foreign_share:.0%} of the {cores} cores while this ran")
    errors = [m.get("error") for m in measured if m.get("error")]
    errors += [f"exit {m['rc']}" for m in measured if m.get("rc") not in (0, None)]
    for e in errors:
        log(f"! {e}")

    total_s = time.perf_counter() - t_bench
    result = {
        "schema": 1,
        "started_utc": started.isoformat(timespec="seconds"),
        "git": git,
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "options": {"quick": args.quick, "repeat": args.repeat},
        "machine": {"cores": cores, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "memory_bytes": psutil.virtual_memory().total,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": versions(),
        "grid": {"model": f"builtin:{common.MODEL}", "data": common.DATA,
                 "imbalance": common.IMBALANCE, "class_weight": list(common.CLASS_WEIGHTS),
                 "lr": list(common.LRS), "clip": list(common.CLIPS),
                 "batch_size": common.BATCH_SIZE, "steps": common.STEPS, "n_probes": n_grid},
        "summary": {
            "stabcheck_wall_s": stab_wall,
            "stabcheck_peak_rss_bytes": stab_rss,
            "fit_loop_wall_s": fit_wall,
            "ray_wall_s": ray_wall,
            "ray_overhead_per_probe_s": ray_per_probe,
            "ray_outcomes_match": (None if stab_rep is None or ray_rep is None
                                   else ray_mismatch is None),
            "ray_outcomes_mismatch": ray_mismatch,
            "ray_started_wall_s": started_wall,
            "tuner_wall_s": tuner_wall,
            "fresh_process_wall_s": fresh_wall,
            "floor": floor,
            "floor_for_steps_run_s": floor_ran,
            "ratios": ratios,
            "targets": {k: list(v) for k, v in TARGETS.items()},
            "verdicts": verdicts,
            "scaling": scaling,
            "foreign_cpu_share": foreign_share,
            "errors": errors,
        },
        "runs": {"warmup": warm, "stabcheck": stab_runs, "stabcheck_ray": ray_runs,
                 "stabcheck_ray_started": ray_started_runs,
                 "fit_loop": fit_runs, "tuner": tuner,
                 "fresh_process": fresh, "scaling": scaling_runs},
        "bench_wall_s": total_s,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=1, default=str)
    (RESULTS / f"{stamp}-{git['sha']}.json").write_text(text)
    (RESULTS / "latest.json").write_text(text)
    log(f"figures: {RESULTS.relative_to(ROOT)}/latest.json and {stamp}-{git['sha']}.json")
    log(f"bench took {total_s:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
