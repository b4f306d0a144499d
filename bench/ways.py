"""The ways ``make bench`` runs a grid, each in its own subprocess, and what it reads back.

- ``stabcheck``: its default run (``stabcheck probe`` with only the flags that pin the
  grid and the outputs: ``--fail-on none --json --journal``), optionally on Ray;
- ``fit loop``: ``bench/fit_loop.py`` (one process, every setting), in the grid's memory
  budget where it has one;
- ``fresh``: ``bench/fit_loop.py --only I``, one process per setting, each in the budget;
- ``tuner``: KerasTuner's ``GridSearch`` over the 18-setting grid (``bench/tuner.py``).

Every command starts in the run's temporary folder, never in the checkout: stabcheck's
workers start with ``python -m``, which puts the working directory first on ``sys.path``,
so a neutral folder makes them import the stabcheck that ``PYTHONPATH`` names.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import common
import spent
from measure import CpuWatch, log, run_cmd

HERE = Path(__file__).resolve().parent
# RAY_AUTH_MODE: a cluster of `ray start` takes the runs' connections without a token.
ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
       "RAY_AUTH_MODE": "disabled"}
PY = sys.executable
MB = 1e6
RAY_FLAGS = ("--executor", "ray")  # no --ray-address: a local cluster for the run
RAY_SETTLE_S = 10.0  # after `ray start`: its dashboard and runtime-env agents start (~5 CPU s)


def _run(cmd: list[str], tmp: Path, tag: str, **kwargs) -> dict:
    return run_cmd(cmd, tmp, tag, cwd=tmp, env=ENV, **kwargs)


def stabcheck_exe() -> str:
    exe = Path(PY).parent / "stabcheck"
    return str(exe) if exe.exists() else (shutil.which("stabcheck") or "stabcheck")


# ------------------------------------------------------------------------ stabcheck


def run_stabcheck(tmp: Path, g: common.Grid, tag: str, data_path: Path | None = None,
                  extra: tuple[str, ...] = ()) -> dict:
    """stabcheck's default run of grid ``g`` (``extra`` flags appended, e.g. ``RAY_FLAGS``)."""
    json_path, journal = tmp / f"{tag}.json", tmp / f"{tag}.jsonl"
    cmd = [stabcheck_exe(), "probe", *g.stabcheck_args(data_path),
           "--fail-on", "none", "--json", str(json_path), "--journal", str(journal), *extra]
    expected = g.n_settings
    log(f"- stabcheck [{tag}]: {expected} settings x {g.steps} steps, default run ...")
    # Ray's actors are reaped by its raylet, which discards their CPU times: sample them.
    figures = _run(cmd, tmp, tag, sample_rss=True, tree_cpu="ray" in extra)
    figures.update(command=" ".join(cmd[1:]), expected_probes=expected, steps=g.steps,
                   extra=list(extra))
    try:
        report = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        figures["error"] = f"{tag}: no JSON result ({exc})"
        log(f"  ! {figures['error']}")
        return figures
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        lines = []
    probes = report.get("probes") or []
    seeds = report.get("seed_probes") or []
    figures.update(
        n_probes=len(probes),
        outcomes=dict(collections.Counter(p.get("outcome") for p in probes)),
        steps_completed=sum(int(p.get("steps_completed") or 0) for p in probes),
        steps_planned=sum(int(p.get("steps_planned") or g.steps) for p in probes),
        sum_probe_duration_s=sum(float(p.get("duration_s") or 0.0) for p in probes),
        max_worker_peak_host_bytes=max((p.get("peak_host_bytes") or 0 for p in probes),
                                       default=0),
        worker_import_s=(report.get("environment") or {}).get("import_s"),
        workers=(report.get("config") or {}).get("workers"),
        seeds=report.get("seeds"),
        probe_steps={repr(common.probe_key(p.get("settings") or {})):
                     int(p.get("steps_completed") or 0) for p in probes},
        seed_probe_steps=[[repr(common.probe_key(p.get("settings") or {})),
                           int(p.get("steps_completed") or 0)] for p in seeds],
        probe_outcomes={repr(common.probe_key(p.get("settings") or {})): p.get("outcome")
                        for p in probes},
        executor=(report.get("environment") or {}).get("executor"),
        memory_enforcement=(report.get("environment") or {}).get("memory_enforcement"),
        spent=spent.spent(report, lines, steps=g.steps),
    )
    figures["spent_line"] = spent.line(figures["spent"], n_settings=expected, steps=g.steps)
    if len(probes) != expected:
        figures["error"] = f"{tag}: {len(probes)} probes in the result, {expected} expected"
        log(f"  ! {figures['error']}")
    log(f"  {figures['wall_s']:.1f} s, peak RSS {figures['peak_rss_bytes'] / MB:.0f} MB, "
        f"outcomes {figures['outcomes']}")
    log(f"  how the steps were spent: {figures['spent_line']}")
    return figures


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


# ------------------------------------------------------------------------- fit loop


def _progress(path: Path) -> tuple[dict, list[dict], dict | None]:
    """(the loop's begin record, the settings it finished, the one it started last and
    did not finish) from its progress lines."""
    begin, done, started = {}, [], {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        lines = []
    for text in lines:
        try:
            record = json.loads(text)
        except ValueError:
            continue  # a line cut by the kill
        if "begin" in record:
            begin = record
        elif "start" in record:
            started[record["start"]] = record
        elif "done" in record:
            done.append(record["probe"])
            started.pop(record["done"], None)
    return begin, done, (next(iter(started.values())) if started else None)


def run_fit_loop(tmp: Path, g: common.Grid, tag: str, data_path: Path | None = None,
                 only: int | None = None, quiet: bool = False, budget: bool = True) -> dict:
    """``bench/fit_loop.py`` on grid ``g`` (every setting, or ``only`` one), in ``g``'s
    memory budget unless ``budget`` is False. A loop the budget ends is a result: what it
    finished and where it died are read from its progress lines."""
    out, progress = tmp / f"{tag}.result.json", tmp / f"{tag}.progress.jsonl"
    progress.unlink(missing_ok=True)
    cmd = [PY, str(HERE / "fit_loop.py"), "--grid", g.key, "--out", str(out),
           "--progress", str(progress)]
    if data_path is not None:
        cmd += ["--data", str(data_path)]
    if only is not None:
        cmd += ["--only", str(only)]
    limit = g.memory_budget if budget else None
    if not quiet:
        shown = f", in a {limit / 2**20:.0f} MiB memory budget" if limit else ""
        log(f"- plain model.fit loop [{tag}]{shown} ...")
    figures = _run(cmd, tmp, tag, memory_budget=limit)
    begin, done, died_in = _progress(progress)
    killed = bool((figures.get("memory") or {}).get("oom_killed"))
    figures["loop"] = {
        "settings": 1 if only is not None else g.n_settings,
        "completed": len(done),
        "killed_in": died_in["label"] if killed and died_in else None,
        "killed_in_index": died_in["start"] if killed and died_in else None,
        "killed_after_s": died_in["t"] if killed and died_in else None,
        "oom_killed": killed,
        "import_s": begin.get("import_s"),
        "prep_s": begin.get("prep_s"),
    }
    try:
        figures["result"] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        if not killed:
            figures["error"] = f"{tag}: no result ({exc})"
            log(f"  ! {figures['error']}")
        figures["partial"] = {"probes": done}  # what a killed loop finished
        if not quiet and killed:
            log(f"  {figures['wall_s']:.1f} s: the kernel ended it (memory budget, "
                f"{figures['memory']['enforcement']}) in setting {died_in and died_in['start']} "
                f"({died_in and died_in['label']}) after {len(done)} settings "
                f"(TF import {begin.get('import_s') or 0:.1f} s)")
        return figures
    if not quiet:
        r = figures["result"]
        log(f"  {figures['wall_s']:.1f} s (TF import {r['import_s']:.2f} s, "
            f"loop {r['loop_s']:.1f} s, "
            f"median steady step {r['median_steady_step_s'] * 1e3:.2f} ms)")
    return figures


def run_fresh(tmp: Path, g: common.Grid, data_path: Path | None = None) -> dict:
    """One ``fit_loop.py --only I`` process per setting, one after another, each in the
    grid's memory budget. A batch size whose process the budget ended is not tried again
    (the user learns from the first kill that it does not fit, as stabcheck infers it)."""
    settings = g.settings()
    log(f"- a fresh process per setting ({len(settings)} settings) ...")
    watch = CpuWatch()
    runs, skipped, dead_sizes = [], [], set()
    for i, s in enumerate(settings):
        if s.batch_size in dead_sizes:
            skipped.append(i)
            continue
        run = run_fit_loop(tmp, g, f"fresh-{g.key}-{i:02d}", data_path, only=i, quiet=True)
        run["index"] = i
        runs.append(run)
        if run["loop"]["oom_killed"]:
            dead_sizes.add(s.batch_size)
    figures = watch.stop()
    figures["runs"] = [{k: r.get(k) for k in ("index", "wall_s", "rc", "error", "loop")}
                       for r in runs]
    figures["n_processes"] = len(runs)
    figures["skipped"] = skipped
    figures["oom_killed"] = [r["index"] for r in runs if r["loop"]["oom_killed"]]
    figures["per_process_median_s"] = statistics.median(r["wall_s"] for r in runs)
    failed = [r["index"] for r in runs
              if (r.get("rc") != 0 and not r["loop"]["oom_killed"]) or r.get("error")]
    if failed:
        figures["error"] = f"fresh processes {failed} of grid {g.key} failed"
    killed = (f", {len(figures['oom_killed'])} ended by the memory budget, "
              f"{len(skipped)} settings of that batch size not tried" if dead_sizes else "")
    log(f"  {figures['wall_s']:.1f} s ({len(runs)} processes, "
        f"{figures['per_process_median_s']:.2f} s each{killed})")
    return figures


def no_budget_estimate(tmp: Path, g: common.Grid, fit: dict) -> dict | None:
    """What the fit loop would cost without the budget: it runs every setting the budget
    ended. One such setting is run without the budget in a fresh process; the estimate is
    the loop up to where the budget ended it, plus that setting's time for each setting of
    the batch sizes that did not fit."""
    loop = fit.get("loop") or {}
    if not loop.get("oom_killed") or loop.get("killed_in_index") is None:
        return None
    index = loop["killed_in_index"]
    dead = g.settings()[index].batch_size
    n_dead = sum(1 for s in g.settings() if s.batch_size == dead)
    log(f"- one batch-{dead} setting without the budget (for the unbudgeted loop's estimate)")
    one = run_fit_loop(tmp, g, f"nobudget-{g.key}", only=index, quiet=True, budget=False)
    probes = (one.get("result") or {}).get("probes") or []
    if one.get("rc") != 0 or not probes:
        return {"error": "the setting failed without the budget too", "run": one}
    per = probes[0]["total_s"]
    before = (loop.get("import_s") or 0.0) + (loop.get("prep_s") or 0.0) + loop["killed_after_s"]
    estimate = before + n_dead * per
    log(f"  {per:.1f} s for one setting at batch {probes[0]['trained_batch_size']} x "
        f"{probes[0]['steps']} steps: the loop without the budget ~{estimate:.0f} s")
    return {"setting_s": per, "n_settings": n_dead, "before_s": before,
            "estimate_s": estimate, "run": one}


def run_tuner(tmp: Path) -> dict:
    out = tmp / "tuner.result.json"
    log("- KerasTuner GridSearch (18-setting grid) ...")
    figures = _run([PY, str(HERE / "tuner.py"), "--out", str(out)], tmp, "tuner")
    try:
        figures["result"] = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        figures["error"] = f"tuner: no result ({exc})"
        log(f"  ! {figures['error']}")
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
