"""``make bench-validity``: does a probe's verdict predict the long run?

For every imbalanced problem of ``bench/validity_problems.py`` (synthetic data built with
numpy, a factory, a batch size, a grid of class weight x learning rate x clip, the long
runs' epochs):

1. probe: one ``stabcheck probe --model bench/validity_problems.py:FACTORY --data P.npz
   --class-weight ... --lr ... --clip ... --batch-size B --seeds 1 --workers 1 --json ...``
   over the problem's grid (default steps; a TOML config brings the
   ``[custom_class_weight]`` table where the grid has ``custom``);
2. long run (the ground truth): this file with ``--long-run NAME``, a fresh process per
   problem: for every compared setting (the grid, or the problem's ``long_settings``) and
   seeds 0 and 1, the factory's model recompiled with its own optimizer class at the
   setting's learning rate and clip, then a plain ``model.fit(x, y, batch_size=B,
   epochs=E, class_weight=...)`` on the whole training split (as the user's long job
   trains; the probe samples at most 20,000 rows of it), the class weights from
   ``stabcheck.inputs.classweights.class_weights_for`` for the training counts. Its fate:
   ``numerical`` (a non-finite loss or weight, the final epoch's loss > 10 x the loss
   before training, or an epoch's loss > 1000 x it), else ``learning`` (on the held-out
   data some class with at least 5 samples is never predicted, a single class included,
   or the balanced accuracy over those classes is within 0.02 of chance), else
   ``healthy``.

The probe's category (numerical / learning / ok; memory, crash, error: n/a) is compared
with the fate of the settings whose two seeds agree. A probe whose learning verdict was
not judged (``evidence.learning_verdict == "not_judged"``, category ok: a setting that
was not a contender, or too short to tell) is counted apart: it makes no learning claim,
so against a healthy or a learning long run it is neither agreement nor disagreement
(the learning long runs it left unjudged are reported: the learning verdicts'
coverage); against a numerical long run its ok is a numerical miss. Targets: agreement
>= 95% on the original problems and on the held-out problems each; on the learning
settings (probe learning, or a judged probe whose long run ended learning) >= 90%;
zero false numerical alarms (probe numerical, long run healthy); every numerical long
run caught (probe numerical). Rows:
``bench/results/validity.json``. Options: ``--quick`` (2 problems, 5 epochs), ``--only
NAME[,NAME]``, ``--epochs E`` (every long run's epochs; default each problem's own, else
20), ``--steps N`` (the probe's, default stabcheck's own), ``--tag T`` (rows to
``validity-T.json``; a partial run without a tag writes ``validity-partial.json``),
``--reuse-long RESULTS`` (the long runs of an earlier results file, not fitted again: for
iterating on the probe side).
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
from fidelity import ENV, PY, read_json, stabcheck_exe, stabcheck_source, versions  # noqa: E402

EPOCHS = 20  # a long run's epochs where its problem names none
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
# A long run whose held-out balanced accuracy (the mean recall of the classes with
# MIN_CLASS_SUPPORT samples) is within this of chance (1 / their number) learned nothing,
# whatever handful of rows it gives the other class (the fraud example at balanced lr 0.1
# blows up in epoch 1, then calls 56,952 of 56,961 rows fraud): learning. The margin is
# stabcheck's own for a stalled probe's accuracy (Thresholds.stall_chance_margin).
CHANCE_MARGIN = 0.02
AGREEMENT_TARGET = 0.95  # on the original problems and on the held-out ones, each
LEARNING_AGREEMENT_TARGET = 0.90  # on the settings with a learning verdict or fate
PROBE_TIMEOUT_S = 300  # one probe (stabcheck --timeout)
# The probe command as a whole: its TensorFlow imports and summary, plus every probe's
# limit. A problem's long runs have no limit (some train for an hour on two cores); the
# long-run process writes its rows after every fit, so an interrupted one keeps them.
PROBE_RUN_SLACK_S = 600
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


def _predict(keras, model, x, batch: int = 256) -> np.ndarray:
    """The model's outputs on ``x`` in inference mode, ``batch`` rows at a time (a text
    model's held-out activations do not fit in memory at once)."""
    return np.concatenate([
        np.asarray(keras.ops.convert_to_numpy(model(x[i:i + batch], training=False)))
        for i in range(0, len(x), batch)])


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
                out = _predict(keras, self.model, xv)
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
    (``val_counts``) is never predicted, or when the held-out balanced accuracy over those
    classes (``recall``) is within ``CHANCE_MARGIN`` of chance; else ``healthy``."""
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
    recall = row.get("recall") or []
    supported = [r for r, n in zip(recall, support, strict=False)
                 if r is not None and n >= MIN_CLASS_SUPPORT]
    if len(supported) >= 2:
        balanced, chance = float(np.mean(supported)), 1.0 / len(supported)
        if balanced <= chance + CHANCE_MARGIN:
            return "learning", (f"no better than chance: held-out balanced accuracy "
                                f"{balanced:.3f} (chance {chance:.3f}), predicted counts "
                                f"{counts}")
    return "healthy", "every class predicted, loss finite"


def _training_rows(data: Path) -> int:
    with np.load(data) as arrays:
        return int(arrays["y"].shape[0])


def long_run(name: str, data: Path, epochs: int, out: Path, probe_steps: int) -> int:
    t_import = time.perf_counter()
    import keras

    from stabcheck.inputs.classweights import class_weights_for
    from stabcheck.inputs.data import load_dataset

    import_s = time.perf_counter() - t_import
    problem = problems([name], False)[0]
    # The whole training split and held-out split, with the labels as stabcheck reads
    # them: a cap at least the training rows keeps every row (the probe samples at most
    # its --max-samples, 20,000 by default, and as many held-out rows as it caps).
    ds = load_dataset(str(data), seed=0, max_samples=max(20_000, _training_rows(data)))
    x, y, xv, yv = ds.x_train, ds.y_train, ds.x_val, ds.y_val
    k = ds.n_classes
    counts = np.bincount(ds.c_train, minlength=k).tolist()
    head = {"name": name, "epochs": epochs, "import_s": import_s,
            "n_train": int(len(y)), "n_val": int(len(yv)), "train_counts": counts,
            "val_counts": np.bincount(yv, minlength=k).tolist()}
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
                pred = _predicted(_predict(keras, model, xv))
                pred_counts = np.bincount(pred, minlength=k).tolist()
                recall = [float(np.mean(pred[yv == c] == c)) if np.any(yv == c) else None
                          for c in range(k)]
                row.update({"initial_loss": initial, "weights_finite": weights_finite,
                            "losses": [v if math.isfinite(v) else None for v in losses],
                            "pred_counts": pred_counts, "recall": recall,
                            "val_counts": np.bincount(yv, minlength=k).tolist()})
                fate, why = fate_of(row)
                row.update({
                    "fate": fate, "why": why,
                    "fate_at_probe_steps": at_probe.fate(),
                    "pred_counts_at_probe_steps": at_probe.pred_counts,
                    "peak_over_initial": (max(v for v in losses if math.isfinite(v))
                                          / max(initial, 1e-12)
                                          if any(math.isfinite(v) for v in losses) else None),
                    "epochs_run": len(losses),
                    "steps_run": at_probe.n,
                    "macro_recall": float(np.mean([r for r in recall if r is not None])),
                })
            except Exception as exc:  # noqa: BLE001 - a failed run is a row, not a crash
                row.update({"fate": "error", "why": f"{type(exc).__name__}: {exc}"[:400]})
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            print(f"  {row['key']} seed {seed}: {row['fate']} ({row['why']}) "
                  f"{row['wall_s']:.1f} s", flush=True)
            _write_json(out, {**head, "rows": rows})  # kept if the process is ended later
    _write_json(out, {**head, "rows": rows, "complete": True})
    return 0


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


# ---------------------------------------------------------------------- the driver


def run(cmd: list[str], tmp: Path, tag: str, timeout: float | None,
        stream: bool = False) -> dict[str, Any]:
    """``common.run_logged`` with the bench's environment."""
    return common.run_logged(cmd, tmp, tag, ENV, timeout, stream)


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
    figures = run(cmd, tmp, f"{problem.name}.probe",
                  timeout=PROBE_RUN_SLACK_S + PROBE_TIMEOUT_S * len(problem.grid()))
    figures["command"] = " ".join(Path(c).name if c.startswith(str(tmp)) else c
                                  for c in cmd[1:])
    figures["result"] = read_json(out)
    return figures


def run_long(problem: vp.Problem, data: Path, epochs: int, steps: int, tmp: Path) -> dict:
    out = tmp / f"{problem.name}.long.json"
    cmd = [PY, str(Path(__file__).resolve()), "--long-run", problem.name, "--data", str(data),
           "--epochs", str(epochs), "--steps", str(steps), "--out", str(out)]
    figures = run(cmd, tmp, f"{problem.name}.long", timeout=None, stream=True)
    figures["result"] = read_json(out)
    return figures


def reused_long(paths: list[Path], name: str) -> dict | None:
    """A problem's long runs from the first of earlier results files that has them
    (``--reuse-long``), their fates judged again by :func:`fate_of`: for iterating on the
    probe side without refitting. None when no file has them."""
    found = [json.loads(p.read_text()).get("runs", {}) for p in paths]
    stored = next((runs[name] for runs in found if runs.get(name, {}).get("long_rows")), None)
    if stored is None:
        return None
    rows = [dict(r) for r in stored["long_rows"]]
    for row in rows:
        if row.get("fate") != "error":
            row["fate"], row["why"] = fate_of(row)
    return {"wall_s": stored.get("long_wall_s", 0.0), "rc": stored.get("long_exit", 0),
            "reused": True,
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


def _not_judged(probe: dict | None) -> bool:
    """Whether the probe withheld its learning verdict (its category is then ok)."""
    evidence = (probe or {}).get("evidence")
    return isinstance(evidence, dict) and evidence.get("learning_verdict") == "not_judged"


def _curve(values: list | None, points: int = 12) -> list | None:
    """``values`` thinned to about ``points`` medians of equal windows (None stays None
    where a whole window is None): the shape of a loss curve, small enough to print."""
    if not values:
        return None
    size = max(1, math.ceil(len(values) / points))
    out = []
    for i in range(0, len(values), size):
        window = [v for v in values[i:i + size] if isinstance(v, (int, float))]
        out.append(float(np.median(window)) if window else None)
    return out


def probe_fields(p: dict | None) -> dict[str, Any]:
    """What the rows keep of a probe of the JSON result (fields that newer stabcheck
    versions add are read with ``.get``: absent ones are None)."""
    p = p or {}
    evidence = p.get("evidence") if isinstance(p.get("evidence"), dict) else {}
    return {
        "probe_outcome": p.get("outcome", "missing"),
        "probe_steps": p.get("steps_completed"),
        "probe_steps_planned": p.get("steps_planned"),
        "probe_rungs": p.get("rungs"),
        "probe_decided_at_step": p.get("decided_at_step"),
        "probe_duration_s": p.get("duration_s"),
        "probe_summary": p.get("summary"),
        "probe_evidence": _evidence_text(p) if p else None,
        "probe_not_judged": _not_judged(p),
        "probe_not_judged_because": evidence.get("not_judged_because"),
        "probe_learning_verdict_reason": evidence.get("learning_verdict_reason"),
        "probe_warnings": p.get("warnings") or evidence.get("warnings"),
        "probe_unpredicted_auc": (p.get("holdout") or {}).get("unpredicted_auc")
        if isinstance(p.get("holdout"), dict) else None,
        "probe_window_medians": (evidence.get("loss_trend") or {}).get("window_medians")
        if isinstance(evidence.get("loss_trend"), dict) else None,
        "probe_loss_curve": _curve(p.get("loss_history")),
        "probe_holdout_pred_counts": (p.get("holdout") or {}).get("pred_counts")
        if isinstance(p.get("holdout"), dict) else None,
    }


def compare(problem: vp.Problem, probe: dict, long: dict) -> list[dict[str, Any]]:
    """A row per compared setting: the probe's verdict, both long runs' fates, and how
    the setting counts (see the module docstring)."""
    probes = probe_by_key(probe.get("result"))
    long_rows = (long.get("result") or {}).get("rows", [])
    rows = []
    for cw, lr, clip in problem.settings():
        key = setting_key(cw, lr, clip)
        p = probes.get(key)
        category = p.get("category") if p else None
        probe_cat = category if category in ("numerical", "learning", "ok") else "n/a"
        runs = [r for r in long_rows if r["key"] == key]
        fates = [r.get("fate", "error") for r in runs]
        seeds_agree = len(fates) == len(SEEDS) and len(set(fates)) == 1 and fates[0] in \
            CATEGORY_OF_FATE
        truth = CATEGORY_OF_FATE[fates[0]] if seeds_agree else None
        fields = probe_fields(p)
        not_judged = fields["probe_not_judged"] and probe_cat == "ok"
        # A withheld learning verdict makes no claim on learning: it is neither agreement
        # nor disagreement with a healthy or a learning long run (how many learning long
        # runs it left unjudged is reported apart: coverage). Its numerical verdict stands:
        # against a numerical long run its ok is a miss.
        judged = seeds_agree and probe_cat != "n/a"
        counted = judged and not (not_judged and truth in ("ok", "learning"))
        agree = (probe_cat == truth and not not_judged) if counted else None
        rows.append({
            "problem": problem.name, "held_out": problem.held_out, "setting": key,
            "class_weight": cw, "lr": lr, "clip": clip, "batch_size": problem.batch_size,
            "probe_category": probe_cat, **fields,
            "fates": fates, "fate_why": [r.get("why") for r in runs],
            "fates_at_probe_steps": [r.get("fate_at_probe_steps") for r in runs],
            "peak_over_initial": [r.get("peak_over_initial") for r in runs],
            "long_loss_curves": [_curve(r.get("losses")) for r in runs],
            "go_agree": (((probe_cat == "ok") == (truth == "ok")) if counted else None),
            "macro_recall": [r.get("macro_recall") for r in runs],
            "pred_counts": [r.get("pred_counts") for r in runs],
            "long_wall_s": sum(r.get("wall_s", 0.0) for r in runs),
            "seeds_agree": seeds_agree, "counted": counted,
            "not_judged": bool(not_judged), "agree": agree,
            "unjudged_learning": bool(not_judged and seeds_agree and truth == "learning"),
            "truth": truth,
            # Learning settings: the probe said learning or the long run ended learning.
            "learning_setting": counted and (probe_cat == "learning" or truth == "learning"),
            "false_numerical_alarm": counted and probe_cat == "numerical" and truth == "ok",
            "numerical_missed": truth == "numerical" and probe_cat != "numerical",
            "numerical_one_seed": not seeds_agree and "numerical" in fates,
        })
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    log(f"  {'problem':<14} {'setting':<38} {'probe verdict':<30} {'steps':>9} "
        f"{'seed 0':<10} {'seed 1':<10} {'agree':>5}  {'fit @probe steps':<17} "
        f"{'peak/init':>9}")
    for r in rows:
        f = r["fates"] + ["-"] * (2 - len(r["fates"]))
        agree = ("n/j" if r["not_judged"] and r["agree"] is None else
                 "n/c" if r["agree"] is None else "yes" if r["agree"] else "NO")
        verdict = f"{r['probe_outcome']} ({r['probe_category']})" \
            if r["probe_category"] != "n/a" else r["probe_outcome"]
        if r["not_judged"]:
            verdict = f"{r['probe_outcome']} (not judged)"
        steps = f"{r['probe_steps'] if r['probe_steps'] is not None else '-'}/" \
                f"{r['probe_steps_planned'] if r['probe_steps_planned'] is not None else '-'}"
        early = "/".join(str(v) for v in r["fates_at_probe_steps"])
        peak = max((v for v in r["peak_over_initial"] if v is not None), default=None)
        peak_s = "n/a" if peak is None else f"{peak:.3g}"
        log(f"  {r['problem']:<14} {r['setting']:<38} {verdict:<30} {steps:>9} "
            f"{f[0]:<10} {f[1]:<10} {agree:>5}  {early:<17} {peak_s:>9}")
    log("  (steps: the probe's completed/planned; n/c: not counted: the two seeds' fates")
    log("   differ, or the probe has no category; n/j: learning not judged, long run")
    log("   healthy; fit @probe steps: the long runs' held-out predictions after as many")
    log("   steps as the probe, seed 0/1; peak/init: the largest epoch loss over the loss")
    log("   before training)")


def _rate(rows: list[dict[str, Any]]) -> tuple[int, int, float | None]:
    agreed = sum(bool(r["agree"]) for r in rows)
    return agreed, len(rows), (agreed / len(rows) if rows else None)


def summarize(rows: list[dict[str, Any]], problems_run: list[vp.Problem],
              timings: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    timings = timings or {}
    counted = [r for r in rows if r["counted"]]
    agreed, n_counted, rate = _rate(counted)
    alarms = [r["problem"] + " " + r["setting"] for r in rows if r["false_numerical_alarm"]]
    per_problem = {}
    for p in problems_run:
        mine = [r for r in rows if r["problem"] == p.name]
        c = [r for r in mine if r["counted"]]
        learning = [r for r in c if r["learning_setting"]]
        per_problem[p.name] = {
            "settings": len(mine), "counted": len(c),
            "agreed": sum(bool(r["agree"]) for r in c),
            "not_judged": sum(r["not_judged"] for r in mine),
            "not_judged_counted": sum(r["not_judged"] and r["counted"] for r in mine),
            "learning_counted": len(learning),
            "learning_agreed": sum(bool(r["agree"]) for r in learning),
            "numerical_long": sum(r["truth"] == "numerical" for r in mine),
            "numerical_missed": sum(r["numerical_missed"] for r in mine),
            "false_numerical_alarms": sum(r["false_numerical_alarm"] for r in mine),
            "held_out": p.held_out,
            **timings.get(p.name, {}),
        }
    sets = {}
    for name, held in (("original", False), ("held_out", True)):
        mine = [r for r in counted if r["held_out"] is held]
        if not any(p.held_out is held for p in problems_run):
            continue
        a, n, v = _rate(mine)
        sets[name] = {"agreed": a, "counted": n, "agreement": v,
                      "not_judged": sum(r["not_judged"] for r in rows if r["held_out"] is held),
                      "target": AGREEMENT_TARGET,
                      "met": v is not None and v >= AGREEMENT_TARGET}
    learning = [r for r in counted if r["learning_setting"]]
    l_agreed, l_n, l_rate = _rate(learning)
    numerical = [r for r in rows if r["truth"] == "numerical"]
    missed = [r["problem"] + " " + r["setting"] for r in numerical if r["numerical_missed"]]
    go = sum(bool(r["go_agree"]) for r in counted)
    early = [r for r in counted if r["probe_category"] in ("learning", "ok")
             and len(set(r["fates_at_probe_steps"])) == 1 and r["fates_at_probe_steps"][0]]
    early_agree = sum(CATEGORY_OF_FATE.get(r["fates_at_probe_steps"][0]) == r["probe_category"]
                      for r in early)
    targets = {
        f"agreement_{name}": {"target": AGREEMENT_TARGET, "value": st["agreement"],
                              "met": st["met"]}
        for name, st in sets.items()
    }
    targets["learning_agreement"] = {"target": LEARNING_AGREEMENT_TARGET, "value": l_rate,
                                     "counted": l_n,
                                     "met": l_rate is None or l_rate >= LEARNING_AGREEMENT_TARGET}
    targets["false_numerical_alarms"] = {"target": 0, "value": len(alarms), "met": not alarms}
    targets["numerical_caught"] = {"target": len(numerical),
                                   "value": len(numerical) - len(missed), "missed": missed,
                                   "met": not missed}
    return {
        "go_no_go_agreed": go,
        "go_no_go_agreement": go / n_counted if n_counted else None,
        "at_probe_steps_counted": len(early), "at_probe_steps_agreed": early_agree,
        "settings": len(rows), "counted": n_counted, "agreed": agreed,
        "agreement": rate, "sets": sets,
        "learning_counted": l_n, "learning_agreed": l_agreed, "learning_agreement": l_rate,
        "not_judged": [r["problem"] + " " + r["setting"] for r in rows if r["not_judged"]],
        # learning long runs whose probe withheld its learning verdict (not a contender,
        # or too short): the learning verdicts' coverage, not a target
        "unjudged_learning": [r["problem"] + " " + r["setting"] for r in rows
                              if r.get("unjudged_learning")],
        "false_numerical_alarms": alarms,
        "numerical_long_runs": len(numerical), "numerical_missed": missed,
        "numerical_one_seed": [r["problem"] + " " + r["setting"] + " (" + "/".join(r["fates"])
                               + f", probe {r['probe_outcome']})"
                               for r in rows if r["numerical_one_seed"]],
        "seeds_disagree": [r["problem"] + " " + r["setting"] for r in rows
                           if not r["seeds_agree"]],
        "per_problem": per_problem,
        "held_out_counted": (sets.get("held_out") or {}).get("counted", 0),
        "held_out_agreed": (sets.get("held_out") or {}).get("agreed", 0),
        "targets": targets,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_summary(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    for r in rows:
        if r["agree"] is False or not r["seeds_agree"] or r["not_judged"]:
            label = ("not judged" if r["not_judged"] and r["agree"] is None else
                     "disagree" if r["agree"] is False else "seeds differ")
            log(f"! {label}: {r['problem']} {r['setting']}: probe {r['probe_outcome']} "
                f"(steps {r['probe_steps']}/{r['probe_steps_planned']}); long run "
                f"{' / '.join(r['fates'])}: {' / '.join(str(w) for w in r['fate_why'])}")
            log(f"    probe: {r['probe_summary'] or r['probe_evidence']}")
            if r["not_judged"]:
                log(f"    not judged because {r['probe_not_judged_because']}: "
                    f"{r['probe_learning_verdict_reason']}")
    log("")
    log(f"  {'problem':<14} {'settings':>8} {'counted':>7} {'agree':>5} {'not judged':>10} "
        f"{'learning':>8} {'numerical':>9} {'probes':>8} {'long runs':>9}")
    for name, p in summary["per_problem"].items():
        nj = f"{p['not_judged']}" + (f" ({p['not_judged_counted']} c)"
                                      if p["not_judged_counted"] else "")
        learning = f"{p['learning_agreed']}/{p['learning_counted']}"
        numerical = f"{p['numerical_long'] - p['numerical_missed']}/{p['numerical_long']}"
        probe_s = p.get("probe_wall_s")
        long_s = p.get("long_wall_s")
        log(f"  {name:<14} {p['settings']:>8} {p['counted']:>7} {p['agreed']:>5} {nj:>10} "
            f"{learning:>8} {numerical:>9} "
            f"{'-' if probe_s is None else f'{probe_s:.0f} s':>8} "
            f"{'-' if long_s is None else f'{long_s:.0f} s':>9}"
            + ("  (held out)" if p["held_out"] else "")
            + ("  (long runs reused)" if p.get("long_reused") else ""))
    log("  (agree: of the counted settings; not judged: probes whose learning verdict was")
    log("   withheld, (N c): of them counted as disagreement; learning: agree/counted on")
    log("   the learning settings; numerical: long runs numerical on both seeds that the")
    log("   probe called numerical)")
    t = summary["targets"]
    for name, st in summary["sets"].items():
        log(f"  agreement, {name.replace('_', '-')} problems: {st['agreed']}/{st['counted']}"
            f" = {_pct(st['agreement'])} (target >= {100 * AGREEMENT_TARGET:.0f}%): "
            + ("met" if st["met"] else "NOT MET")
            + (f"; {st['not_judged']} not judged" if st["not_judged"] else ""))
    log(f"  agreement on learning settings (probe learning or long run learning): "
        f"{summary['learning_agreed']}/{summary['learning_counted']} = "
        f"{_pct(summary['learning_agreement'])} (target >= "
        f"{100 * LEARNING_AGREEMENT_TARGET:.0f}%): "
        + ("met" if t["learning_agreement"]["met"] else "NOT MET"))
    log(f"  false numerical alarms (probe numerical, long run healthy): "
        f"{len(summary['false_numerical_alarms'])} (target 0): "
        + ("met" if t["false_numerical_alarms"]["met"] else "NOT MET")
        + ("" if not summary["false_numerical_alarms"] else
           f" ({'; '.join(summary['false_numerical_alarms'])})"))
    log(f"  numerical long runs caught by a numerical probe: "
        f"{summary['numerical_long_runs'] - len(summary['numerical_missed'])}/"
        f"{summary['numerical_long_runs']} (target: all): "
        + ("met" if t["numerical_caught"]["met"] else "NOT MET")
        + ("" if not summary["numerical_missed"] else
           f"; missed: {'; '.join(summary['numerical_missed'])}"))
    if summary["numerical_one_seed"]:
        log(f"  (not counted) numerical on one seed only: "
            f"{'; '.join(summary['numerical_one_seed'])}")
    log(f"  all problems: {summary['agreed']}/{summary['counted']} = "
        f"{_pct(summary['agreement'])}; not judged: {len(summary['not_judged'])}")
    unjudged = summary.get("unjudged_learning") or []
    log(f"  (coverage, not a target) learning long runs whose probe withheld its learning "
        f"verdict: {len(unjudged)}" + (f": {'; '.join(unjudged)}" if unjudged else ""))
    if summary["go_no_go_agreement"] is not None:
        log(f"  (not a target) ok vs failed, whatever the category: "
            f"{summary['go_no_go_agreed']}/{summary['counted']}; learning/ok probes vs the "
            f"long run's own state after the probe's steps: "
            f"{summary['at_probe_steps_agreed']}/{summary['at_probe_steps_counted']}")
    met = sum(v["met"] for v in t.values())
    log(f"targets: {met}/{len(t)} met")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"2 problems, {QUICK_EPOCHS} epochs per long run")
    parser.add_argument("--only", default=None, help="NAME[,NAME]: only these problems")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs of every long run (default: each problem's own, else "
                             f"{EPOCHS}; --quick {QUICK_EPOCHS})")
    parser.add_argument("--steps", type=int, default=None,
                        help="probe steps (default: stabcheck's own)")
    parser.add_argument("--tag", default=None,
                        help="write bench/results/validity-TAG.json instead of validity.json")
    parser.add_argument("--reuse-long", type=Path, action="append", default=None,
                        metavar="RESULTS",
                        help="take the long runs from earlier results files (their fates "
                             "judged again) instead of fitting them (repeatable); a problem "
                             "none of them has is fitted")
    # The long-run process (internal): --long-run NAME --data NPZ --epochs E --out JSON.
    parser.add_argument("--long-run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def epochs_for(problem: vp.Problem, args: argparse.Namespace) -> int:
    """A problem's long-run epochs: ``--epochs``, else 5 with ``--quick``, else the
    problem's own (its keras-io example's length), else ``EPOCHS``."""
    if args.epochs:
        return args.epochs
    if args.quick:
        return QUICK_EPOCHS
    return problem.epochs or EPOCHS


def results_path(args: argparse.Namespace) -> Path:
    """``validity-TAG.json`` with ``--tag``; ``validity.json`` for a full run (the file the
    repository keeps); ``validity-partial.json`` for a partial one without a tag, so that
    it never overwrites the full run's rows."""
    if args.tag:
        return RESULTS / f"validity-{args.tag}.json"
    partial = args.quick or args.only or args.epochs or args.steps or args.reuse_long
    return RESULTS / ("validity-partial.json" if partial else "validity.json")


def bench(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    chosen = problems(names, args.quick)
    epochs = {p.name: epochs_for(p, args) for p in chosen}
    git, source = common.git_info(), stabcheck_source()
    out = results_path(args)
    lengths = sorted(set(epochs.values()))
    log(f"== Validity: probe verdict vs a "
        f"{'/'.join(map(str, lengths))}-epoch model.fit (seeds "
        f"{', '.join(map(str, SEEDS))}), {len(chosen)} problems, "
        f"{sum(len(p.settings()) for p in chosen)} settings, {os.cpu_count()} cores, "
        f"git {git['sha']}; stabcheck from {source}; rows to {out.relative_to(ROOT)}")
    rows: list[dict[str, Any]] = []
    runs: dict[str, dict[str, Any]] = {}
    timings: dict[str, dict[str, Any]] = {}
    long_total = probe_total = 0.0

    def save(complete: bool) -> dict[str, Any]:
        summary = summarize(rows, [p for p in chosen if p.name in runs], timings)
        RESULTS.mkdir(parents=True, exist_ok=True)
        _write_json(out, json.loads(json.dumps({
            "started": started.isoformat(timespec="seconds"),
            "wall_s": time.perf_counter() - t0, "complete": complete,
            "epochs": epochs, "seeds": list(SEEDS), "quick": args.quick,
            "probe_steps": args.steps, "blowup_ratio": BLOWUP_RATIO,
            "long_runs_s": long_total, "probes_s": probe_total,
            "summary": summary, "rows": rows, "runs": runs, "git": git,
            "stabcheck_source": source, "versions": versions(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
        }, default=str)))
        return summary

    with tempfile.TemporaryDirectory(prefix="stabcheck-validity-") as tmp_name:
        tmp = Path(tmp_name)
        for problem in chosen:
            data = tmp / f"{problem.name}.npz"
            t_data = time.perf_counter()
            np.savez(data, **problem.data())
            data_s = time.perf_counter() - t_data
            log(f"- {problem.name}: {problem.what}; {len(problem.grid())} probes, "
                f"{len(problem.settings())} settings with long runs of "
                f"{epochs[problem.name]} epochs, batch {problem.batch_size} (data "
                f"{data_s:.0f} s): probe ...")
            probe = run_probe(problem, data, args.steps, tmp)
            probe_total += probe["wall_s"]
            log(f"  probe {probe['wall_s']:.0f} s (exit {probe['rc']}); long runs ...")
            if probe.get("stderr_tail"):
                log("  ! " + probe["stderr_tail"].strip().splitlines()[-1])
            long = reused_long(args.reuse_long, problem.name) if args.reuse_long else None
            if long is None:
                long = run_long(problem, data, epochs[problem.name],
                                args.steps or PROBE_STEPS, tmp)
            long_rows = (long.get("result") or {}).get("rows", [])
            long_s = sum(r.get("wall_s", 0.0) for r in long_rows)
            long_total += long["wall_s"]
            log(f"  long runs {long['wall_s']:.0f} s, {long_s:.0f} s of fitting "
                f"(exit {long['rc']})" + (" (reused)" if long.get("reused") else ""))
            if long.get("stderr_tail"):
                log("  ! " + long["stderr_tail"].strip().splitlines()[-1])
            mine = compare(problem, probe, long)
            rows += mine
            probe_result = probe.get("result") or {}
            timings[problem.name] = {
                "probe_wall_s": probe["wall_s"], "long_wall_s": long["wall_s"],
                "long_fit_s": long_s, "long_reused": bool(long.get("reused")),
                "epochs": (long.get("result") or {}).get("epochs", epochs[problem.name]),
                "fit_s_per_epoch": (long_s / sum(r.get("epochs_run", 0) for r in long_rows)
                                    if any(r.get("epochs_run") for r in long_rows)
                                    else None),
                "probe_duration_s": sum(p.get("duration_s") or 0.0
                                        for p in probe_result.get("probes", [])),
            }
            runs[problem.name] = {
                "probe_command": probe.get("command"), "probe_wall_s": probe["wall_s"],
                "probe_exit": probe["rc"], "long_wall_s": long["wall_s"],
                "long_exit": long["rc"], "long_reused": bool(long.get("reused")),
                "long": {k: v for k, v in (long.get("result") or {}).items() if k != "rows"},
                "long_rows": long_rows,
                "dataset": probe_result.get("dataset"),
                # Every probe of the grid, those without long runs included.
                "probes": [{"id": p.get("id"), "outcome": p.get("outcome"),
                            "category": p.get("category"), "summary": p.get("summary"),
                            **{f: p.get(f) for f in ("steps_completed", "steps_planned",
                                                     "rungs", "decided_at_step",
                                                     "duration_s")},
                            "not_judged": _not_judged(p)}
                           for p in probe_result.get("probes", [])],
            }
            n_counted = sum(r["counted"] for r in mine)
            log(f"  agree on {sum(bool(r['agree']) for r in mine)}/{n_counted} counted "
                f"settings; not judged {sum(r['not_judged'] for r in mine)}")
            save(complete=False)
    log("")
    print_table(rows)
    log("")
    summary = save(complete=True)
    print_summary(rows, summary)
    log(f"  long runs: {long_total:.0f} s in total ({len(rows) * len(SEEDS)} fits, TF "
        f"imports included); probes: {probe_total:.0f} s")
    log(f"rows: {out.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.long_run:
        problem = problems([args.long_run], False)[0]
        return long_run(args.long_run, args.data, args.epochs or problem.epochs or EPOCHS,
                        args.out, args.steps or PROBE_STEPS)
    return bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
