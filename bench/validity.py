"""``make bench-validity``: does a probe's verdict predict the long run?

For every imbalanced problem of ``bench/validity_problems.py`` (small synthetic data built
with numpy, a factory, a batch size and a grid of class weight x learning rate x clip):

1. probe: one ``stabcheck probe --model bench/validity_problems.py:FACTORY --data P.npz
   --class-weight ... --lr ... --clip ... --batch-size B --seeds 1 --workers 1 --json ...``
   over the problem's grid (default steps, 100; a TOML config brings the
   ``[custom_class_weight]`` table where the grid has ``custom``);
2. long run (the ground truth): this file with ``--long-run NAME``, a fresh process per
   problem: for every setting and seeds 0 and 1, the factory's model recompiled with its
   own optimizer class at the setting's learning rate and clip, then a plain
   ``model.fit(x_train, y_train, batch_size=B, epochs=E, class_weight=...)`` on the
   training sample as stabcheck loads it, the class weights from
   ``stabcheck.inputs.classweights.class_weights_for`` (what the probe uses). Its fate:
   ``numerical`` (a non-finite loss or weight, the final epoch's loss > 10 x the loss
   before training, or an epoch's loss > 1000 x it), else ``learning`` (on the held-out
   data some class with at least 5 samples is never predicted, a single class included),
   else ``healthy``.

The probe's category (numerical / learning / ok; memory, crash, error: n/a) is compared with
the fate of the settings whose two seeds agree. Targets: >= 95% agreement, zero false
numerical alarms (probe numerical, long run healthy). Rows: ``bench/results/validity.json``.
Options: ``--quick`` (2 problems, 5 epochs), ``--only NAME[,NAME]``, ``--epochs E`` (20),
``--steps N`` (the probe's, default stabcheck's own), ``--tag T`` (rows to
``validity-T.json``), ``--reuse-long RESULTS`` (the long runs of an earlier results file,
not fitted again: for iterating on the probe side).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PROBLEMS_FILE = HERE / "validity_problems.py"
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import validity_problems as vp  # noqa: E402
from fidelity import PY, read_json, run, stabcheck_exe, stabcheck_source, versions  # noqa: E402

EPOCHS = 20
QUICK_EPOCHS = 5
SEEDS = (0, 1)
BLOWUP_RATIO = 10.0  # final epoch loss > BLOWUP_RATIO x the loss before training: numerical
# An epoch's loss above 1000 x the loss before training blew up, whatever the run settled
# into afterwards (the forum's 1:1000 weights at lr 0.1 peak at 1e9-2e16 x, then predict one
# class): numerical.
PEAK_BLOWUP_RATIO = 1000.0
# A class "never predicted" needs as many held-out samples as stabcheck's own rule asks
# (Thresholds.min_class_support): missing all 3 samples of a class happens by chance.
MIN_CLASS_SUPPORT = 5
AGREEMENT_TARGET = 0.95
PROBE_TIMEOUT_S = 300
PROBE_STEPS = 100  # stabcheck's default steps (config.py), used where --steps is not given
CATEGORY_OF_FATE = {"numerical": "numerical", "learning": "learning", "healthy": "ok"}


def log(msg: str) -> None:
    print(msg, flush=True)


def problems(names: list[str] | None, quick: bool) -> list[vp.Problem]:
    if names:
        known = {p.name: p for p in vp.PROBLEMS}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown problem(s): {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        return [p for p in vp.PROBLEMS if p.name in names]
    return [p for p in vp.PROBLEMS if p.quick or not quick]


def setting_key(cw: str, lr: float, clip: str) -> str:
    return f"cw={cw},lr={lr:g},clip={common.normalize_clip(clip)}"


# ------------------------------------------------------------------ the long-run process


def _optimizer(compiled, lr: float, clip: str):
    config = dict(compiled.get_config())
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        config[key] = None
    config["learning_rate"] = lr
    config.update(common.clip_kwargs(clip))
    return type(compiled).from_config(config)


def _predicted(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    return (p.reshape(-1) > 0.5).astype(np.int64)


def _at_probe_length(keras, xv, k: int, steps: int):
    """A callback that, after the probe's number of optimizer steps, records what the
    model predicts on the held-out split (inference mode), as the probe judges it."""

    class AtProbeLength(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.pred_counts: list[int] | None = None
            self.finite = True

        def on_train_batch_end(self, batch, logs=None) -> None:
            self.n += 1
            if self.n == steps:
                out = np.asarray(keras.ops.convert_to_numpy(self.model(xv, training=False)))
                self.finite = bool(np.isfinite(out).all())
                self.pred_counts = np.bincount(_predicted(out), minlength=k).tolist()

        def fate(self) -> str | None:
            if self.pred_counts is None:
                return None
            if not self.finite:
                return "numerical"
            return "learning" if 0 in self.pred_counts else "healthy"

    return AtProbeLength()


def fate_of(row: dict[str, Any]) -> tuple[str, str]:
    """The long run's fate from what it recorded (``initial_loss``, the epoch ``losses``
    with None for a non-finite one, ``weights_finite``, held-out ``pred_counts``) and why:
    ``numerical`` when a loss or weight went non-finite, the final epoch's loss ended above
    ``BLOWUP_RATIO`` x the loss before training, or an epoch's loss peaked above
    ``PEAK_BLOWUP_RATIO`` x it (it blew up, whatever it settled into after); else
    ``learning`` when a class with at least ``MIN_CLASS_SUPPORT`` held-out samples
    (``val_counts``) is never predicted; else ``healthy``."""
    initial = row["initial_loss"]
    losses = row["losses"]
    k = len(row["pred_counts"])
    if initial is None or not math.isfinite(initial) or any(v is None for v in losses) \
            or not row.get("weights_finite", True):
        return "numerical", "non-finite loss or weights"
    base = max(initial, 1e-12)
    if losses[-1] > BLOWUP_RATIO * base:
        return "numerical", (f"final loss {losses[-1]:.3g} > {BLOWUP_RATIO:g} x initial "
                             f"{initial:.3g}")
    peak = max(losses)
    if peak > PEAK_BLOWUP_RATIO * base:
        return "numerical", (f"epoch loss peaked at {peak:.3g}, {peak / base:.3g} x initial "
                             f"{initial:.3g} (> {PEAK_BLOWUP_RATIO:g} x)")
    counts = row["pred_counts"]
    support = row.get("val_counts") or [MIN_CLASS_SUPPORT] * k
    never = [i for i in range(k) if counts[i] == 0 and support[i] >= MIN_CLASS_SUPPORT]
    if never:
        return "learning", (f"predicts only class {counts.index(max(counts))}"
                            if len(never) == k - 1 else
                            f"never predicts class(es) {', '.join(map(str, never))}")
    return "healthy", "every class predicted, loss finite"


def long_run(name: str, data: Path, epochs: int, out: Path, probe_steps: int) -> int:
    t_import = time.perf_counter()
    import keras

    from stabcheck.inputs.classweights import class_weights_for
    from stabcheck.inputs.data import load_dataset

    import_s = time.perf_counter() - t_import
    problem = problems([name], False)[0]
    ds = load_dataset(str(data), seed=0)  # the probe's training sample and held-out split
    x, y, xv, yv = ds.x_train, ds.y_train, ds.x_val, ds.y_val
    k = ds.n_classes
    counts = np.bincount(ds.c_train, minlength=k).tolist()
    rows = []
    for cw, lr, clip in problem.settings():
        weights = class_weights_for(cw, counts, class_names=ds.class_names,
                                    custom=problem.custom or None)
        cw_dict = None if weights is None else {i: float(w) for i, w in enumerate(weights)}
        for seed in SEEDS:
            t0 = time.perf_counter()
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            row: dict[str, Any] = {"key": setting_key(cw, lr, clip), "seed": seed,
                                   "class_weights": cw_dict}
            try:
                model = getattr(vp, problem.factory)()
                model.compile(_optimizer(model.optimizer, lr, clip), model.loss)
                sw = None if cw_dict is None else np.array([cw_dict[int(c)] for c in y],
                                                           dtype=np.float32)
                initial = float(model.evaluate(x, y, sample_weight=sw, batch_size=512,
                                               verbose=0))
                at_probe = _at_probe_length(keras, xv, k, probe_steps)
                history = model.fit(x, y, batch_size=problem.batch_size, epochs=epochs,
                                    class_weight=cw_dict, verbose=0, shuffle=True,
                                    callbacks=[keras.callbacks.TerminateOnNaN(), at_probe])
                losses = [float(v) for v in history.history["loss"]]
                weights_finite = all(np.isfinite(w).all() for w in model.get_weights())
                pred = _predicted(model.predict(xv, batch_size=512, verbose=0))
                pred_counts = np.bincount(pred, minlength=k).tolist()
                row.update({"initial_loss": initial, "weights_finite": weights_finite,
                            "losses": [v if math.isfinite(v) else None for v in losses],
                            "pred_counts": pred_counts,
                            "val_counts": np.bincount(yv, minlength=k).tolist()})
                fate, why = fate_of(row)
                recall = [float(np.mean(pred[yv == c] == c)) if np.any(yv == c) else None
                          for c in range(k)]
                row.update({
                    "fate": fate, "why": why,
                    "fate_at_probe_steps": at_probe.fate(),
                    "pred_counts_at_probe_steps": at_probe.pred_counts,
                    "peak_over_initial": (max(v for v in losses if math.isfinite(v))
                                          / max(initial, 1e-12)
                                          if any(math.isfinite(v) for v in losses) else None),
                    "epochs_run": len(losses),
                    "recall": recall,
                    "macro_recall": float(np.mean([r for r in recall if r is not None])),
                })
            except Exception as exc:  # noqa: BLE001 - a failed run is a row, not a crash
                row.update({"fate": "error", "why": f"{type(exc).__name__}: {exc}"[:400]})
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            print(f"  {row['key']} seed {seed}: {row['fate']} ({row['why']}) "
                  f"{row['wall_s']:.1f} s", flush=True)
    out.write_text(json.dumps({"name": name, "epochs": epochs, "import_s": import_s,
                               "n_train": int(len(y)), "n_val": int(len(yv)),
                               "train_counts": counts, "rows": rows}, indent=1))
    return 0


# ---------------------------------------------------------------------- the driver


def run_probe(problem: vp.Problem, data: Path, steps: int | None, tmp: Path) -> dict:
    out = tmp / f"{problem.name}.probe.json"
    cmd = [stabcheck_exe(), "probe"]
    if problem.custom:
        config = tmp / f"{problem.name}.toml"
        table = "\n".join(f'"{k}" = {float(v)!r}' for k, v in problem.custom.items())
        config.write_text(f"[custom_class_weight]\n{table}\n")
        cmd.append(str(config))
    cmd += ["--model", f"{PROBLEMS_FILE}:{problem.factory}", "--data", str(data),
            "--class-weight", ",".join(problem.class_weights),
            "--lr", ",".join(f"{lr:g}" for lr in problem.lrs),
            "--clip", ",".join(problem.clips), "--batch-size", str(problem.batch_size),
            "--seeds", "1", "--seed", "0", "--workers", "1", "--fail-on", "none",
            "--json", str(out), "--journal", str(tmp / f"{problem.name}.jsonl"),
            "--timeout", str(PROBE_TIMEOUT_S)]
    if steps:
        cmd += ["--steps", str(steps)]
    figures = run(cmd, tmp, f"{problem.name}.probe")
    figures["command"] = " ".join(Path(c).name if c.startswith(str(tmp)) else c
                                  for c in cmd[1:])
    figures["result"] = read_json(out)
    return figures


def run_long(problem: vp.Problem, data: Path, epochs: int, steps: int, tmp: Path) -> dict:
    out = tmp / f"{problem.name}.long.json"
    cmd = [PY, str(Path(__file__).resolve()), "--long-run", problem.name, "--data", str(data),
           "--epochs", str(epochs), "--steps", str(steps), "--out", str(out)]
    figures = run(cmd, tmp, f"{problem.name}.long")
    figures["result"] = read_json(out)
    return figures


def reused_long(paths: list[Path], name: str) -> dict:
    """A problem's long runs from the first of earlier results files that has them
    (``--reuse-long``), their fates judged again by :func:`fate_of`: for iterating on the
    probe side without refitting."""
    found = [json.loads(p.read_text())["runs"] for p in paths]
    stored = next(runs[name] for runs in found if name in runs)
    rows = [dict(r) for r in stored["long_rows"]]
    for row in rows:
        if row.get("fate") != "error":
            row["fate"], row["why"] = fate_of(row)
    return {"wall_s": 0.0, "rc": stored.get("long_exit", 0),
            "result": {**stored.get("long", {}), "rows": rows}}


def probe_by_key(result: dict | None) -> dict[str, dict]:
    out = {}
    for p in (result or {}).get("probes", []):
        s = p.get("settings", {})
        try:
            key = setting_key(s["class_weight"], float(s["learning_rate"]), str(s["clip"]))
        except (KeyError, ValueError, TypeError):
            continue
        out.setdefault(key, p)
    return out


def _evidence_text(probe: dict) -> str:
    ev = probe.get("evidence")
    text = json.dumps(ev) if not isinstance(ev, str) else ev
    return text[:300]


def compare(problem: vp.Problem, probe: dict, long: dict) -> list[dict[str, Any]]:
    probes = probe_by_key(probe.get("result"))
    long_rows = (long.get("result") or {}).get("rows", [])
    rows = []
    for cw, lr, clip in problem.settings():
        key = setting_key(cw, lr, clip)
        p = probes.get(key)
        outcome = p.get("outcome") if p else "missing"
        category = p.get("category") if p else None
        probe_cat = category if category in ("numerical", "learning", "ok") else "n/a"
        runs = [r for r in long_rows if r["key"] == key]
        fates = [r.get("fate", "error") for r in runs]
        seeds_agree = len(fates) == len(SEEDS) and len(set(fates)) == 1 and fates[0] in \
            CATEGORY_OF_FATE
        truth = CATEGORY_OF_FATE[fates[0]] if seeds_agree else None
        counted = seeds_agree and probe_cat != "n/a"
        rows.append({
            "problem": problem.name, "setting": key, "class_weight": cw, "lr": lr,
            "clip": clip, "batch_size": problem.batch_size,
            "probe_outcome": outcome, "probe_category": probe_cat,
            "probe_steps": p.get("steps_completed") if p else None,
            "probe_evidence": _evidence_text(p) if p else None,
            "probe_warnings": (p or {}).get("warnings"),
            "probe_unpredicted_auc": ((p or {}).get("holdout") or {}).get("unpredicted_auc"),
            "probe_window_medians": ((p or {}).get("evidence") or {}).get(
                "loss_trend", {}).get("window_medians"),
            "fates": fates, "fate_why": [r.get("why") for r in runs],
            "fates_at_probe_steps": [r.get("fate_at_probe_steps") for r in runs],
            "peak_over_initial": [r.get("peak_over_initial") for r in runs],
            "go_agree": (((probe_cat == "ok") == (truth == "ok")) if counted else None),
            "macro_recall": [r.get("macro_recall") for r in runs],
            "pred_counts": [r.get("pred_counts") for r in runs],
            "long_wall_s": sum(r.get("wall_s", 0.0) for r in runs),
            "seeds_agree": seeds_agree, "counted": counted,
            "agree": (probe_cat == truth) if counted else None,
            "false_numerical_alarm": counted and probe_cat == "numerical" and truth == "ok",
        })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    log(f"  {'problem':<16} {'setting':<38} {'probe verdict':<30} {'seed 0':<10} "
        f"{'seed 1':<10} {'agree':>5}  {'fit @probe steps':<17} {'peak/init':>9}")
    for r in rows:
        f = r["fates"] + ["-"] * (2 - len(r["fates"]))
        agree = ("n/c" if r["agree"] is None else "yes" if r["agree"] else "NO")
        verdict = f"{r['probe_outcome']} ({r['probe_category']})" \
            if r["probe_category"] != "n/a" else r["probe_outcome"]
        early = "/".join(str(v) for v in r["fates_at_probe_steps"])
        peak = max((v for v in r["peak_over_initial"] if v is not None), default=None)
        peak_s = "n/a" if peak is None else f"{peak:.3g}"
        log(f"  {r['problem']:<16} {r['setting']:<38} {verdict:<30} {f[0]:<10} {f[1]:<10} "
            f"{agree:>5}  {early:<17} {peak_s:>9}")
    log("  (n/c: not counted: the two seeds' fates differ, or the probe has no category;")
    log("   fit @probe steps: the long runs' held-out predictions after as many steps as the")
    log("   probe, seed 0/1; peak/init: the largest epoch loss over the loss before training)")


def summarize(rows: list[dict[str, Any]], problems_run: list[vp.Problem]) -> dict[str, Any]:
    counted = [r for r in rows if r["counted"]]
    agreed = sum(bool(r["agree"]) for r in counted)
    alarms = [r["problem"] + " " + r["setting"] for r in rows if r["false_numerical_alarm"]]
    per_problem = {}
    for p in problems_run:
        mine = [r for r in rows if r["problem"] == p.name]
        c = [r for r in mine if r["counted"]]
        per_problem[p.name] = {"settings": len(mine), "counted": len(c),
                               "agreed": sum(bool(r["agree"]) for r in c),
                               "held_out": p.held_out}
    held = {p.name for p in problems_run if p.held_out}
    held_counted = [r for r in counted if r["problem"] in held]
    rate = agreed / len(counted) if counted else None
    go = sum(bool(r["go_agree"]) for r in counted)
    early = [r for r in counted if r["probe_category"] in ("learning", "ok")
             and len(set(r["fates_at_probe_steps"])) == 1 and r["fates_at_probe_steps"][0]]
    early_agree = sum(CATEGORY_OF_FATE.get(r["fates_at_probe_steps"][0]) == r["probe_category"]
                      for r in early)
    return {
        "go_no_go_agreed": go,
        "go_no_go_agreement": go / len(counted) if counted else None,
        "at_probe_steps_counted": len(early), "at_probe_steps_agreed": early_agree,
        "settings": len(rows), "counted": len(counted), "agreed": agreed,
        "agreement": rate, "false_numerical_alarms": alarms,
        "seeds_disagree": [r["problem"] + " " + r["setting"] for r in rows
                           if not r["seeds_agree"]],
        "per_problem": per_problem,
        "held_out_counted": len(held_counted),
        "held_out_agreed": sum(bool(r["agree"]) for r in held_counted),
        "targets": {
            "agreement": {"target": AGREEMENT_TARGET, "value": rate,
                          "met": rate is not None and rate >= AGREEMENT_TARGET},
            "false_numerical_alarms": {"target": 0, "value": len(alarms),
                                       "met": not alarms},
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"2 problems, {QUICK_EPOCHS} epochs per long run")
    parser.add_argument("--only", default=None, help="NAME[,NAME]: only these problems")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs of every long run (default {EPOCHS}, --quick "
                             f"{QUICK_EPOCHS})")
    parser.add_argument("--steps", type=int, default=None,
                        help="probe steps (default: stabcheck's own)")
    parser.add_argument("--tag", default=None,
                        help="write bench/results/validity-TAG.json instead of validity.json")
    parser.add_argument("--reuse-long", type=Path, action="append", default=None,
                        metavar="RESULTS",
                        help="take the long runs from earlier results files (their fates "
                             "judged again) instead of fitting them (repeatable)")
    # The long-run process (internal): --long-run NAME --data NPZ --epochs E --out JSON.
    parser.add_argument("--long-run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    chosen = problems(names, args.quick)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    git, source = common.git_info(), stabcheck_source()
    log(f"== Validity: probe verdict vs a {epochs}-epoch model.fit (seeds "
        f"{', '.join(map(str, SEEDS))}), {len(chosen)} problems, "
        f"{sum(len(p.settings()) for p in chosen)} settings, {os.cpu_count()} cores, "
        f"git {git['sha']}; stabcheck from {source}")
    rows: list[dict[str, Any]] = []
    runs: dict[str, dict[str, Any]] = {}
    long_total = probe_total = 0.0
    with tempfile.TemporaryDirectory(prefix="stabcheck-validity-") as tmp_name:
        tmp = Path(tmp_name)
        for problem in chosen:
            data = tmp / f"{problem.name}.npz"
            np.savez(data, **problem.data())
            log(f"- {problem.name}: {problem.what}; {len(problem.settings())} settings, "
                f"batch {problem.batch_size}: probe ...")
            probe = run_probe(problem, data, args.steps, tmp)
            probe_total += probe["wall_s"]
            log(f"  probe {probe['wall_s']:.0f} s (exit {probe['rc']}); long runs ...")
            if probe.get("stderr_tail"):
                log("  ! " + probe["stderr_tail"].strip().splitlines()[-1])
            long = (reused_long(args.reuse_long, problem.name) if args.reuse_long else
                    run_long(problem, data, epochs, args.steps or PROBE_STEPS, tmp))
            long_s = sum(r.get("wall_s", 0.0) for r in (long.get("result") or {}).get("rows", []))
            long_total += long["wall_s"]
            log(f"  long runs {long['wall_s']:.0f} s, {long_s:.0f} s of fitting "
                f"(exit {long['rc']})")
            if long.get("stderr_tail"):
                log("  ! " + long["stderr_tail"].strip().splitlines()[-1])
            mine = compare(problem, probe, long)
            rows += mine
            runs[problem.name] = {
                "probe_command": probe.get("command"), "probe_wall_s": probe["wall_s"],
                "probe_exit": probe["rc"], "long_wall_s": long["wall_s"],
                "long_exit": long["rc"],
                "long": {k: v for k, v in (long.get("result") or {}).items() if k != "rows"},
                "long_rows": (long.get("result") or {}).get("rows"),
                "dataset": (probe.get("result") or {}).get("dataset"),
            }
            log(f"  agree on {sum(bool(r['agree']) for r in mine)}/"
                f"{sum(r['counted'] for r in mine)} counted settings")
    log("")
    print_table(rows)
    log("")
    summary = summarize(rows, chosen)
    for r in rows:
        if r["agree"] is False or not r["seeds_agree"]:
            log(f"! {r['problem']} {r['setting']}: probe {r['probe_outcome']} "
                f"(steps {r['probe_steps']}); long run {' / '.join(r['fates'])}: "
                f"{' / '.join(str(w) for w in r['fate_why'])}")
            log(f"    probe evidence: {r['probe_evidence']}")
    log("")
    for name, p in summary["per_problem"].items():
        log(f"  {name:<16} {p['settings']:>2} settings, {p['counted']:>2} counted, "
            f"{p['agreed']:>2} agree" + ("  (held out)" if p["held_out"] else ""))
    if summary["held_out_counted"]:
        log(f"  held-out problems (never used to choose a threshold): "
            f"{summary['held_out_agreed']}/{summary['held_out_counted']} agree")
    rate = summary["agreement"]
    t = summary["targets"]
    log(f"  agreement on settings whose two seeds agree: "
        f"{summary['agreed']}/{summary['counted']}"
        + ("" if rate is None else f" = {100 * rate:.1f}%")
        + f" (target >= {100 * AGREEMENT_TARGET:.0f}%): "
        + ("met" if t["agreement"]["met"] else "NOT MET"))
    log(f"  false numerical alarms (probe numerical, long run healthy): "
        f"{len(summary['false_numerical_alarms'])} (target 0): "
        + ("met" if t["false_numerical_alarms"]["met"] else "NOT MET")
        + ("" if not summary["false_numerical_alarms"] else
           f" ({'; '.join(summary['false_numerical_alarms'])})"))
    log(f"  long runs: {long_total:.0f} s in total ({len(rows) * len(SEEDS)} fits of "
        f"{epochs} epochs, TF imports included); probes: {probe_total:.0f} s")
    if summary["go_no_go_agreement"] is not None:
        log(f"  (not a target) ok vs failed, whatever the category: "
            f"{summary['go_no_go_agreed']}/{summary['counted']}; learning/ok probes vs the "
            f"long run's own state after the probe's steps: "
            f"{summary['at_probe_steps_agreed']}/{summary['at_probe_steps_counted']}")
    met = sum(v["met"] for v in t.values())
    log(f"targets: {met}/{len(t)} met")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("validity.json" if not args.tag else f"validity-{args.tag}.json")
    out.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"), "wall_s": time.perf_counter() - t0,
        "epochs": epochs, "seeds": list(SEEDS), "quick": args.quick,
        "probe_steps": args.steps, "blowup_ratio": BLOWUP_RATIO,
        "long_runs_s": long_total, "probes_s": probe_total,
        "summary": summary, "rows": rows, "runs": runs, "git": git,
        "stabcheck_source": source, "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
    }, indent=1, default=str))
    log(f"rows: {out.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.long_run:
        return long_run(args.long_run, args.data, args.epochs or EPOCHS, args.out,
                        args.steps or PROBE_STEPS)
    return bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
