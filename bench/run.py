"""``make bench``: three grids, each run several ways in one run, side by side.

The grids (``bench/common.py``):

- ``small``: 18 settings, builtin:cnn on builtin:digits made long-tailed (imbalance 0.05),
  class_weight none/balanced/x100, lr 1e-3/1e-2/1e-1, clip none/global_norm=1.0, batch
  32, 100 steps;
- ``demo``: the demo's 36 (``configs/demo.toml``: the same 18 on builtin:digits-large x
  batch sizes 32 and 16384, 60 steps, a 768 MiB memory budget);
- ``apps``: ``keras.applications.MobileNet`` (alpha 0.25, ``weights=None``) at 32x32x3 on
  synthetic long-tailed images (``bench/apps.py``), class_weight none/balanced x lr
  1e-3/1e-2 x clip none/global_norm=1.0, batch 32, 50 steps: 8 settings.

The ways, each grid (``bench/ways.py``; one subprocess at a time):

1. stabcheck's default run: ``stabcheck probe`` with only the flags that pin the grid
   and the outputs (``--fail-on none --json --journal``; 3 seeds: the recommendation's
   finalists are re-probed; for the demo, its memory ladder), wall time, peak RSS of the
   stabcheck process, and how it spent its steps;
2. a plain in-process ``model.fit`` loop (``bench/fit_loop.py``), every setting at
   ``--steps``, in the grid's memory budget (the demo's: a memory cgroup of 768 MiB, as
   stabcheck's workers get; the loop dies in the first batch-16384 setting, as a user's
   kernel does);
3. a fresh process per setting (``fit_loop.py --only I``), each in the budget (a batch
   size the budget ended is not tried again).

And on the 18-setting grid only: KerasTuner's ``GridSearch``, the floor (one TF import +
the fit loop's steady-state steps), stabcheck at 2x/4x the grid and 2x the steps, and
stabcheck on Ray (a running cluster, and one started by the run).

Prints a table per grid with the ratios ``fit loop / stabcheck`` and ``fresh /
stabcheck`` against the targets (>= 3x on the small grids, >= 1.5x on the applications
grid) and writes every figure to ``bench/results/latest.json`` and
``bench/results/<UTC time>-<git sha>.json``. Options: ``--quick`` (stabcheck and the fit
loop only), ``--repeat N`` (medians of N interleaved runs of 1 and 2), ``--grids``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import apps  # noqa: E402
import common  # noqa: E402
import ways  # noqa: E402
from measure import log, run_cmd  # noqa: E402

MB = 1e6
TARGETS = {  # the 18-setting grid's other figures, on two cores
    "stabcheck_over_floor": ("<=", 1.3),
    "tuner_over_stabcheck": (">=", 2.5),
    "stabcheck_peak_rss_mb": ("<", 200.0),
    "ray_overhead": ("<=", 0.15),  # Ray executor (running cluster) / local executor - 1
}


# ----------------------------------------------------------------------------- figures


def verdict(value: float | None, op: str, target: float) -> str:
    if value is None:
        return "n/a"
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


def ratio(a, b):
    return a / b if a is not None and b else None


def ok_stab(run: dict) -> bool:
    return run.get("rc") == 0 and not run.get("error")


def ok_fit(run: dict) -> bool:
    """A loop that ran to its end, or that the memory budget ended (a result)."""
    return not run.get("error") and (run.get("rc") == 0 or run["loop"]["oom_killed"])


def floor_from(fit: dict) -> dict | None:
    """One TF import + every probe's steady-state step time x steps (a loop that ran all)."""
    r = fit.get("result")
    if not r:
        return None
    return {
        "import_s": r["import_s"],
        "steady_steps_s": r["sum_steady_steps_s"],
        "total_s": r["import_s"] + r["sum_steady_steps_s"],
        "median_steady_step_s": r["median_steady_step_s"],
    }


def floor_for_steps_run(fit: dict, stab: dict) -> float | None:
    """The floor for the steps stabcheck ran: its grid probes' and its seed re-probes'."""
    r = fit.get("result")
    if not r:
        return None
    steady = {repr(common.Setting(p["class_weight"], p["lr"], p["clip"], p["batch_size"]).key()):
              p["steady_step_s"] for p in r["probes"]}
    ran = stab.get("probe_steps") or {}
    if set(ran) != set(steady):
        return None
    seeds = stab.get("seed_probe_steps") or []
    if any(k not in steady for k, _ in seeds):
        return None
    return (r["import_s"] + sum(steady[k] * n for k, n in ran.items())
            + sum(steady[k] * n for k, n in seeds))


def floor_model(import_s: float, step_s: float, n_probes: int, steps: int) -> float:
    return import_s + n_probes * steps * step_s


def fmt_x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def fmt_s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} s"


def versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("stabcheck", "tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "numpy",
                 "ray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def stabcheck_source() -> str:
    """The folder of the stabcheck package the runs import (``PYTHONPATH`` may name
    another copy than the working tree's), found without importing it."""
    spec = importlib.util.find_spec("stabcheck")
    origin = spec.origin if spec is not None else None
    return str(Path(origin).parent) if origin else "not found"


# ------------------------------------------------------------------------ one grid


def run_grid(tmp: Path, g: common.Grid, args, data_path: Path | None) -> dict:
    """Every way of grid ``g``; its runs and summary."""
    log(f"[grid {g.key}] {g.title}")
    stab_runs, fit_runs = [], []
    ray_runs, started_runs = [], []
    small = g.key == "small"
    for i in range(args.repeat):
        stab_runs.append(ways.run_stabcheck(tmp, g, f"stabcheck-{g.key}-{i}", data_path))
        if small and not args.quick:
            with ways.running_ray_cluster(tmp) as address:
                ray_runs.append(ways.run_stabcheck(
                    tmp, g, f"stabcheck-ray-{i}", extra=(*ways.RAY_FLAGS, "--ray-address",
                                                         address)))
            started_runs.append(ways.run_stabcheck(tmp, g, f"stabcheck-ray-started-{i}",
                                                   extra=ways.RAY_FLAGS))
        fit_runs.append(ways.run_fit_loop(tmp, g, f"fitloop-{g.key}-{i}", data_path))
    fresh = None if args.quick else ways.run_fresh(tmp, g, data_path)
    good_fit = [f for f in fit_runs if ok_fit(f)]
    no_budget = None
    if g.memory_budget and good_fit:  # the loop: every setting at --steps
        no_budget = ways.no_budget_estimate(tmp, g, representative(good_fit))
    tuner, scaling_runs = None, {}
    if small and not args.quick:
        tuner = ways.run_tuner(tmp)
        scaling_runs["2x grid"] = ways.run_stabcheck(
            tmp, dataclasses.replace(g, lrs=common.LRS_2X), "stabcheck-2xgrid")
        scaling_runs["4x grid"] = ways.run_stabcheck(
            tmp, dataclasses.replace(g, lrs=common.LRS_2X, clips=common.CLIPS_4X),
            "stabcheck-4xgrid")
        scaling_runs["2x steps"] = ways.run_stabcheck(
            tmp, dataclasses.replace(g, steps=2 * g.steps), "stabcheck-2xsteps")

    good_stab = [s for s in stab_runs if ok_stab(s)]
    stab_wall = med(s["wall_s"] for s in good_stab)
    fit_wall = med(f["wall_s"] for f in good_fit)
    fresh_wall = fresh["wall_s"] if fresh and not fresh.get("error") else None
    stab_rep, fit_rep = representative(good_stab), representative(good_fit)
    summary = {
        "stabcheck_wall_s": stab_wall,
        "stabcheck_peak_rss_bytes": med(s.get("peak_rss_bytes") for s in good_stab),
        "fit_loop_wall_s": fit_wall,
        "fresh_process_wall_s": fresh_wall,
        "fit_loop_over_stabcheck": ratio(fit_wall, stab_wall),
        "fresh_over_stabcheck": ratio(fresh_wall, stab_wall),
        "target": g.target,
        "spent": stab_rep.get("spent") if stab_rep else None,
        "fit_loop": fit_rep.get("loop") if fit_rep else None,
        "no_budget_estimate_s": (no_budget or {}).get("estimate_s"),
        "quick": bool(args.quick),
    }
    summary["no_budget_over_stabcheck"] = ratio(summary["no_budget_estimate_s"], stab_wall)
    if g.memory_budget:
        # The fit loop trains every setting at --steps: without the budget (what
        # a user's loop on a machine that holds the batch costs; estimated from one
        # batch-size setting timed). The loop the budget's OOM kill ended is a reference.
        summary["budgeted_fit_loop_over_stabcheck"] = summary["fit_loop_over_stabcheck"]
        summary["fit_loop_over_stabcheck"] = summary["no_budget_over_stabcheck"]
    summary["verdicts"] = {
        "fit_loop_over_stabcheck": verdict(summary["fit_loop_over_stabcheck"], ">=", g.target),
        "fresh_over_stabcheck": verdict(summary["fresh_over_stabcheck"], ">=", g.target),
    }
    floors = [fl for fl in (floor_from(f) for f in good_fit) if fl]
    floor = {k: med(fl[k] for fl in floors) for k in floors[0]} if floors else None
    summary["floor"] = floor
    summary["floor_for_steps_run_s"] = med(
        floor_for_steps_run(f, s) for f, s in zip(fit_runs, stab_runs, strict=True)
        if f in good_fit and s in good_stab)
    out = {"spec": _spec(g), "summary": summary,
           "runs": {"stabcheck": stab_runs, "fit_loop": fit_runs, "fresh_process": fresh,
                    "no_budget": no_budget}}
    if small:
        out["small_extras"] = _small_extras(
            summary, stab_wall, floor, tuner, scaling_runs, ray_runs, started_runs, stab_rep,
            g)
        out["runs"].update(tuner=tuner, scaling=scaling_runs, stabcheck_ray=ray_runs,
                           stabcheck_ray_started=started_runs)
    return out


def _spec(g: common.Grid) -> dict:
    return {"title": g.title, "model": g.model, "data": g.data, "imbalance": g.imbalance,
            "class_weight": list(g.class_weights), "lr": list(g.lrs), "clip": list(g.clips),
            "batch_size": list(g.batch_sizes), "steps": g.steps, "n_settings": g.n_settings,
            "memory_budget_bytes": g.memory_budget,
            "config": str(g.config.relative_to(ROOT)) if g.config else None,
            "target": g.target}


def _small_extras(summary, stab_wall, floor, tuner, scaling_runs, ray_runs, started_runs,
                  stab_rep, g) -> dict:
    good_ray = [s for s in ray_runs if ok_stab(s)]
    good_started = [s for s in started_runs if ok_stab(s)]
    ray_wall = med(s["wall_s"] for s in good_ray)
    started_wall = med(s["wall_s"] for s in good_started)
    tuner_wall = tuner["wall_s"] if tuner and ok_stab(tuner) else None
    ratios = {
        "stabcheck_over_floor": ratio(stab_wall, floor and floor["total_s"]),
        "tuner_over_stabcheck": ratio(tuner_wall, stab_wall),
        "stabcheck_peak_rss_mb": (summary["stabcheck_peak_rss_bytes"] / MB
                                  if summary["stabcheck_peak_rss_bytes"] else None),
        "ray_over_local": ratio(ray_wall, stab_wall),
        "ray_started_over_local": ratio(started_wall, stab_wall),
    }
    ratios["ray_overhead"] = (None if ratios["ray_over_local"] is None
                              else ratios["ray_over_local"] - 1.0)
    scaling = {}
    if scaling_runs and floor and stab_wall:
        imp, step = floor["import_s"], floor["median_steady_step_s"]
        n_grid = g.n_settings
        base_floor = floor_model(imp, step, n_grid, g.steps)
        scaling["18 settings"] = {"n_probes": n_grid, "steps": g.steps, "wall_s": stab_wall,
                                  "growth": 1.0, "floor_s": base_floor, "floor_growth": 1.0,
                                  "step_growth": 1.0}
        for name, run in scaling_runs.items():
            n, steps = run["expected_probes"], run["steps"]
            fl = floor_model(imp, step, n, steps)
            ok = ok_stab(run)
            growth = run["wall_s"] / stab_wall if ok else None
            scaling[name] = {
                "n_probes": n, "steps": steps, "wall_s": run["wall_s"] if ok else None,
                "growth": growth, "floor_s": fl, "floor_growth": fl / base_floor,
                "step_growth": (n * steps) / (n_grid * g.steps),
                "verdict": ("n/a" if growth is None
                            else "PASS" if growth <= fl / base_floor else "MISS"),
                "peak_rss_mb": (run.get("peak_rss_bytes") or 0) / MB,
                "stabcheck_over_floor": run["wall_s"] / fl if ok else None,
            }
    mismatch = (ways.outcome_mismatch(stab_rep, representative(good_ray))
                or ways.outcome_mismatch(stab_rep, representative(good_started)))
    return {
        "ray_wall_s": ray_wall,
        "ray_started_wall_s": started_wall,
        "ray_overhead_per_probe_s": (None if ray_wall is None or stab_wall is None
                                     else (ray_wall - stab_wall) / g.n_settings),
        "ray_outcomes_match": None if not good_ray else mismatch is None,
        "ray_outcomes_mismatch": mismatch,
        "tuner_wall_s": tuner_wall,
        "ratios": ratios,
        "verdicts": {k: verdict(ratios[k], *TARGETS[k]) for k in TARGETS},
        "scaling": scaling,
    }


# --------------------------------------------------------------------------- table


def _row(name: str, wall, cpu, share, note: str) -> None:
    cpu_shown = "" if cpu is None else f"{cpu:.1f} s"
    shown = "" if share is None else f"{share:.0%}"
    log(f"  {name:<44} {fmt_s(wall):>10} {cpu_shown:>8} {shown:>7}   {note}")


def print_grid(g: common.Grid, res: dict, repeat: int) -> None:
    s, runs = res["summary"], res["runs"]
    good_stab = [r for r in runs["stabcheck"] if ok_stab(r)]
    good_fit = [r for r in runs["fit_loop"] if ok_fit(r)]
    stab, fit = representative(good_stab), representative(good_fit)
    repeats = f", median of {repeat} runs" if repeat > 1 else ""
    log("")
    log(f"== {g.key}: {g.title}{repeats}")
    log(f"  {'way':<44} {'wall':>10} {'CPU':>8} {'others':>7}   breakdown")
    if stab:
        extra = (f", memory enforcement {stab['memory_enforcement']}"
                 if g.memory_budget else "")
        _row("stabcheck, default run", s["stabcheck_wall_s"], stab["cpu_s"],
             stab["foreign_share"],
             f"{stab['n_probes']} probes, {stab.get('seeds')} seeds; worker TF import "
             f"{stab.get('worker_import_s') or 0:.1f} s; peak RSS "
             f"{(stab.get('peak_rss_bytes') or 0) / MB:.0f} MB{extra}")
        log(f"    how the steps were spent: {stab['spent_line']}")
    extras = res.get("small_extras") or {}
    if extras.get("ray_wall_s") is not None:
        ray = representative([r for r in runs["stabcheck_ray"] if ok_stab(r)])
        per = extras["ray_overhead_per_probe_s"]
        _row("stabcheck, Ray executor (running cluster)", extras["ray_wall_s"], ray["cpu_s"],
             ray["foreign_share"], f"{per:+.2f} s per setting over the local executor")
    if extras.get("ray_started_wall_s") is not None:
        ray = representative([r for r in runs["stabcheck_ray_started"] if ok_stab(r)])
        _row("stabcheck, Ray executor (cluster of the run)", extras["ray_started_wall_s"],
             ray["cpu_s"], ray["foreign_share"], "Ray's start and stop included (no target)")
    if fit:
        loop = fit["loop"]
        if fit.get("result"):
            r = fit["result"]
            per = statistics.median(p["total_s"] for p in r["probes"])
            first = statistics.median(p["first_step_s"] for p in r["probes"])
            note = (f"{r['n_probes']} settings x {r['steps']} steps; TF import "
                    f"{r['import_s']:.1f} s + loop {r['loop_s']:.1f} s; {per:.2f} s a "
                    f"setting, first step {first:.2f} s")
        else:
            note = (f"the budget's OOM kill ended it in setting {loop['killed_in_index']} "
                    f"({loop['killed_in']}) after {loop['completed']} settings; TF import "
                    f"{loop['import_s'] or 0:.1f} s")
        _row("plain model.fit loop (1 process)", s["fit_loop_wall_s"], fit["cpu_s"],
             fit["foreign_share"], note)
    if runs.get("no_budget") and runs["no_budget"].get("estimate_s"):
        nb = runs["no_budget"]
        _row("  the same loop without the budget (est.)", nb["estimate_s"], None, None,
             f"every setting at --steps: {nb['n_settings']} settings x {nb['setting_s']:.1f} s "
             f"(one measured) after {nb['before_s']:.1f} s; the target's loop")
    fresh = runs.get("fresh_process")
    if fresh and s["fresh_process_wall_s"] is not None:
        skipped = (f"; {len(fresh['skipped'])} settings not tried after the budget's kill"
                   if fresh["skipped"] else "")
        _row("fresh process per setting", s["fresh_process_wall_s"], fresh["cpu_s"],
             fresh["foreign_share"],
             f"{fresh['n_processes']} processes, {fresh['per_process_median_s']:.2f} s each"
             f"{skipped}")
    tuner = runs.get("tuner")
    if tuner and extras.get("tuner_wall_s") is not None:
        r = tuner["result"]
        _row("KerasTuner GridSearch (1 process)", extras["tuner_wall_s"], tuner["cpu_s"],
             tuner["foreign_share"], f"import {r['import_s']:.1f} s + search "
             f"{r['search_s']:.1f} s, {r['n_trials']} trials")
    floor = s.get("floor")
    if floor:
        _row("floor (1 import + steady steps)", floor["total_s"], None, None,
             f"import {floor['import_s']:.1f} s + steps {floor['steady_steps_s']:.1f} s "
             f"({g.n_settings} x {g.steps} x {floor['median_steady_step_s'] * 1e3:.2f} ms median)")
        ran = s.get("floor_for_steps_run_s")
        if ran is not None:
            _row("floor for the steps stabcheck ran", ran, None, None,
                 "its grid probes' and seed re-probes' steps at the loop's step times")
    if repeat > 1:
        stab_walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs["stabcheck"])
        fit_walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs["fit_loop"])
        log(f"  runs: stabcheck {stab_walls} s; fit loop {fit_walls} s")
    if extras.get("ray_outcomes_mismatch"):
        log(f"  ! the Ray and local runs disagree on the probes' outcomes: "
            f"{extras['ray_outcomes_mismatch']}")
    scaling = extras.get("scaling")
    if scaling:
        log("  how the cost grows (stabcheck vs the floor scaled the same way):")
        log(f"    {'run':<12} {'probes':>6} {'steps':>5} {'stabcheck':>10} {'growth':>7} "
            f"{'floor':>8} {'floor growth':>12}  verdict")
        for name, row in scaling.items():
            log(f"    {name:<12} {row['n_probes']:>6} {row['steps']:>5} "
                f"{fmt_s(row['wall_s']):>10} {fmt_x(row['growth']):>7} "
                f"{fmt_s(row['floor_s']):>8} {fmt_x(row['floor_growth']):>12}  "
                f"{row.get('verdict', '')}")


def print_targets(results: dict) -> dict:
    log("")
    log("== Against the targets")
    verdicts = {}
    for key, res in results.items():
        s = res["summary"]
        for name, label in (("fit_loop_over_stabcheck", "fit loop / stabcheck"),
                            ("fresh_over_stabcheck", "fresh process per setting / stabcheck")):
            value, v = s[name], s["verdicts"][name]
            verdicts[f"{key}/{name}"] = v
            why = " (not run: --quick)" if value is None and s.get("quick") else ""
            log(f"  {key:<6} {label:<40} {fmt_x(value):>9}   target >= {s['target']:g}x"
                f"{'':<6} {v}{why}")
        if s.get("budgeted_fit_loop_over_stabcheck") is not None:
            log(f"  {key:<6} {'loop ended by the budget / stabcheck':<40} "
                f"{fmt_x(s['budgeted_fit_loop_over_stabcheck']):>9}   reference, no target")
    extras = (results.get("small") or {}).get("small_extras")
    if extras:
        labels = {"stabcheck_over_floor": "stabcheck / floor",
                  "tuner_over_stabcheck": "KerasTuner / stabcheck",
                  "stabcheck_peak_rss_mb": "stabcheck process peak RSS",
                  "ray_overhead": "Ray executor overhead (Ray / local - 1)"}
        for name, label in labels.items():
            value, (op, target) = extras["ratios"][name], TARGETS[name]
            v = extras["verdicts"][name]
            verdicts[f"small/{name}"] = v
            shown = ("n/a" if value is None else f"{value:.0f} MB" if name.endswith("_mb")
                     else f"{value:+.1%}" if name.endswith("_overhead") else f"{value:.2f}x")
            tshown = (f"{op} {target:g} MB" if name.endswith("_mb")
                      else f"{op} {target:.0%}" if name.endswith("_overhead")
                      else f"{op} {target:g}x")
            log(f"  {'small':<6} {label:<40} {shown:>9}   target {tshown:<10} {v}")
    return verdicts


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="stabcheck and the fit loop only (no fresh processes, KerasTuner, "
                             "scaling, Ray, unbudgeted estimate)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of stabcheck and of the fit loop per grid (medians)")
    parser.add_argument("--grids", default="small,demo,apps",
                        help="comma-separated: small, demo, apps (default: all three)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    all_grids = common.grids()
    chosen = [k.strip() for k in args.grids.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in all_grids]
    if unknown or not chosen:
        parser.error(f"--grids: unknown {unknown}; choose from {', '.join(all_grids)}")

    t_bench = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    git = common.git_info()
    cores = psutil.cpu_count() or 1
    source = stabcheck_source()
    log(f"stabcheck bench: grids {', '.join(chosen)}, {cores} cores, commit {git['sha']}"
        f"{' (uncommitted changes)' if git['dirty'] else ''}; stabcheck from {source}"
        f"{'; --quick' if args.quick else ''}")
    load_before = os.getloadavg()

    results = {}
    with tempfile.TemporaryDirectory(prefix="stabcheck-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data_path = tmp / "apps.npz"
        np.savez(data_path, **apps.data())
        log("- warming the page cache (one untimed import of TF, Keras, KerasTuner, stabcheck)")
        warm = run_cmd([sys.executable, "-c",
                        "import tensorflow, keras, stabcheck.worker.training\n"
                        "try:\n import keras_tuner\nexcept ImportError:\n pass"],
                       tmp, "warmup", cwd=tmp, env=ways.ENV)
        for key in chosen:
            g = all_grids[key]
            results[key] = run_grid(tmp, g, args, data_path if g.data == "apps" else None)

    for key, res in results.items():
        print_grid(all_grids[key], res, args.repeat)
    verdicts = print_targets(results)

    measured = []
    for res in results.values():
        runs = res["runs"]
        measured += [*runs["stabcheck"], *runs["fit_loop"]]
        measured += [r for r in (runs.get("fresh_process"), runs.get("tuner")) if r]
        measured += [*runs.get("stabcheck_ray", []), *runs.get("stabcheck_ray_started", []),
                     *(runs.get("scaling") or {}).values()]
    foreign = sum(m.get("foreign_cpu_s", 0.0) for m in measured)
    walls = sum(m.get("wall_s", 0.0) for m in measured)
    foreign_share = foreign / (walls * cores) if walls else 0.0
    log("")
    if foreign_share > 0.05:
        log(f"! other processes used {foreign_share:.0%} of the {cores} cores while this ran "
            f"({foreign:.0f} CPU s): the timings are skewed; rerun on a quiet machine")
    else:
        log(f"other processes used {foreign_share:.0%} of the {cores} cores while this ran")
    errors = [m["error"] for m in measured if m.get("error")]
    errors += [f"exit {m['rc']}" for m in measured
               if m.get("rc") not in (0, None) and not (m.get("loop") or {}).get("oom_killed")]
    for e in errors:
        log(f"! {e}")

    total_s = time.perf_counter() - t_bench
    result = {
        "schema": 2,
        "started_utc": started.isoformat(timespec="seconds"),
        "git": git,
        "stabcheck_source": source,
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "options": {"quick": args.quick, "repeat": args.repeat, "grids": chosen},
        "machine": {"cores": cores, "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "memory_bytes": psutil.virtual_memory().total,
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": versions(),
        "summary": {
            "grids": {k: {n: v for n, v in r["summary"].items() if n not in ("spent",)}
                      for k, r in results.items()},
            "small_extras": {k: v for k, v in ((results.get("small") or {})
                                               .get("small_extras") or {}).items()},
            "verdicts": verdicts,
            "foreign_cpu_share": foreign_share,
            "errors": errors,
        },
        "grids": results,
        "warmup": warm,
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
