"""``make bench-fidelity``: does a stabcheck probe train a model as ``model.fit`` does?

For every model of the zoo (``bench/zoo.py``) the same training run is done two ways, each
in a fresh Python process, one after the other (never side by side, so memory peaks are
clean):

1. fit: this file with ``--fit-one NAME``: ``keras.utils.set_random_seed``, stabcheck's
   training sample (``stabcheck.inputs.data.load_dataset``), the zoo's factory (compiled as it
   compiles itself), then ``model.fit`` on stabcheck's batches in stabcheck's order
   (``stabcheck.worker.training.batch_indices``), one step per epoch, so that
   ``history["loss"]`` is each step's loss. It writes the losses and its peak private
   resident memory (VmHWM - RssFile - RssShmem) as JSON;
2. probe: ``stabcheck probe --model bench/zoo.py:<factory>`` with the same data, batch
   size, steps, seed and learning rate, no class weights, no clipping, one worker.

The probe runs first, and the fit trains as many steps as the probe did: a probe whose
held-out predictions miss classes is evaluated and trains on past ``--steps`` (the
collapse extension, up to 4x), as the ``trains_on`` entries' probes are made to (the
benchmark says when one did not). An entry with several learning rates
runs them as a grid in one worker and compares the probe that ran last (the journal's
order) with a fit at its learning rate (``--fit-one NAME --lr LR``).

It prints a row per model (the probe's outcome, both peaks and their ratio, the largest
per-step relative loss difference) and whether the targets are met:

- every model trains (its probe's outcome is not error, crashed, timeout or out of memory);
- probe peak <= 1.10 x fit peak + 64 MiB;
- per-step losses agree to 1e-4 relative for the deterministic models (those with
  Dropout are reported, not judged).

The rows go to ``bench/results/fidelity.json``. Options: ``--quick`` (the zoo's quick
entries, 5 steps; a ``trains_on`` entry keeps its own), ``--only NAME[,NAME]``,
``--steps N``, ``--seed S``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
ZOO_FILE = HERE / "zoo.py"
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import zoo  # noqa: E402

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
PY = sys.executable
TIMEOUT_S = 600
QUICK_STEPS = 5
MIB = 1 << 20

MEMORY_RATIO = 1.10  # probe peak <= MEMORY_RATIO x fit peak + MEMORY_SLACK_BYTES
MEMORY_SLACK_BYTES = 64 * MIB
LOSS_RTOL = 1e-4  # per-step |probe - fit| / max(|fit|, 1e-8), deterministic models
NOT_TRAINED = frozenset({"error", "crashed", "timeout", "oom_host", "oom_gpu"})


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------ the fit process


def probe_batches(n: int, batch_size: int, steps: int, seed: int) -> list:
    """The row indices of every batch a probe trains on (stabcheck's own function)."""
    from stabcheck.worker.training import batch_indices

    return batch_indices(n, batch_size, steps, seed)


def training_rows(data: Path, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, source): the rows and labels a probe trains on, as stabcheck loads them.

    Where stabcheck refuses the data (a float regression target), the ``.npz`` arrays as
    saved, so that ``fit`` still has a figure to show.
    """
    from stabcheck.errors import StabcheckError
    from stabcheck.inputs.data import load_dataset

    try:
        dataset = load_dataset(str(data), seed=seed)
    except StabcheckError as exc:
        with np.load(data) as npz:
            x, y = np.asarray(npz["x"], dtype=np.float32), np.asarray(npz["y"])
        return x, y, f"the .npz as saved (stabcheck.inputs.data refused it: {exc})"
    return dataset.x_train, dataset.y_train, "stabcheck.inputs.data.load_dataset"


def _configure_tensorflow() -> None:
    """Threads and GPU memory as stabcheck's worker sets them for a single worker."""
    import tensorflow as tf

    threads = max(1, os.cpu_count() or 1)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def _batch_sequence(x: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Any:
    """A ``keras.utils.PyDataset`` of ``batches`` in order; ``requested`` records which
    batch indices Keras asked for, to check that no epoch started over."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.requested: list[int] = []

        def __len__(self) -> int:
            return len(batches)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            self.requested.append(int(i))
            return x[batches[i]], y[batches[i]]

    return Batches()


def fit_one(name: str, data: Path, steps: int, seed: int, out: Path,
            learning_rate: float | None = None) -> int:
    """The fit side of one comparison: train zoo entry ``name`` (at ``learning_rate``
    where given, else as its factory compiled it) and write its figures."""
    t0 = time.perf_counter()
    import keras

    _configure_tensorflow()
    import_s = time.perf_counter() - t0
    entry = _entries([name])[0]
    x, y, data_source = training_rows(data, seed)
    keras.utils.set_random_seed(seed)  # as the worker does, before building
    model = getattr(zoo, entry.factory)()
    if not model.built:  # as stabcheck's prepare_model does (subclassed models)
        model(x[:1])
    if learning_rate is not None:  # a probe of a grid at another rate than the factory's
        model.optimizer.learning_rate = learning_rate
    batches = probe_batches(len(x), entry.batch_size, steps, seed)
    sequence = _batch_sequence(x, y, batches)
    t_fit = time.perf_counter()
    history = model.fit(sequence, steps_per_epoch=1, epochs=steps, verbose=0, shuffle=False)
    fit_s = time.perf_counter() - t_fit
    from stabcheck.system.procfs import peak_private_rss

    peak = peak_private_rss()  # as the worker measures its own
    losses = [float(v) for v in history.history["loss"]]
    result = {
        "name": name,
        "losses": [v if math.isfinite(v) else None for v in losses],
        "peak_private_bytes": peak,
        "data": data_source,
        "batch_order": "stabcheck.worker.training.batch_indices",
        "batches_in_order": sequence.requested[-steps:] == list(range(steps)),
        "requested": sequence.requested,
        "n_train": int(len(x)),
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "import_s": import_s,
        "fit_s": fit_s,
        "keras_version": keras.__version__,
        "dtype_policy": keras.config.dtype_policy().name,
        "stabcheck_source": str(Path(sys.modules["stabcheck"].__file__).parent),
    }
    out.write_text(json.dumps(result, indent=1))
    return 0


# ---------------------------------------------------------------------- the driver


def _entries(names: list[str] | None, quick: bool = False) -> list[zoo.ZooEntry]:
    """The zoo entries asked for, in the zoo's order."""
    if names:
        known = {e.name: e for e in zoo.ZOO}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown zoo model(s): {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        return [e for e in zoo.ZOO if e.name in names]
    return [e for e in zoo.ZOO if e.quick or not quick]


def stabcheck_exe() -> str:
    exe = Path(PY).parent / "stabcheck"
    return str(exe) if exe.exists() else (shutil.which("stabcheck") or "stabcheck")


def stabcheck_source() -> str:
    """The folder of the stabcheck package the runs import (``PYTHONPATH`` may name
    another copy than the working tree's; the runs start in a neutral folder so that
    it is the one found), found without importing it."""
    spec = importlib.util.find_spec("stabcheck")
    origin = spec.origin if spec is not None else None
    return str(Path(origin).parent) if origin else "not found"


def run(cmd: list[str], tmp: Path, tag: str) -> dict[str, Any]:
    """``common.run_logged`` with the bench's environment and timeout."""
    return common.run_logged(cmd, tmp, tag, ENV, TIMEOUT_S + 120)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_fit(entry: zoo.ZooEntry, data: Path, steps: int, seed: int, tmp: Path,
            learning_rate: float | None = None) -> dict:
    out = tmp / f"{entry.name}.fit.json"
    cmd = [PY, str(Path(__file__).resolve()), "--fit-one", entry.name, "--data", str(data),
           "--steps", str(steps), "--seed", str(seed), "--out", str(out)]
    if learning_rate is not None:
        cmd += ["--lr", repr(learning_rate)]
    figures = run(cmd, tmp, f"{entry.name}.fit")
    figures["result"] = read_json(out)
    return figures


def learning_rates(entry: zoo.ZooEntry) -> tuple[float, ...]:
    return entry.learning_rates or (zoo.LEARNING_RATE,)


def run_probe(entry: zoo.ZooEntry, data: Path, steps: int, seed: int, tmp: Path) -> dict:
    out = tmp / f"{entry.name}.probe.json"
    journal = tmp / f"{entry.name}.jsonl"
    rates = ",".join(f"{lr:g}" for lr in learning_rates(entry))
    cmd = [stabcheck_exe(), "probe", "--model", f"{ZOO_FILE}:{entry.factory}",
           "--data", str(data), "--lr", rates, "--class-weight", "none",
           "--clip", "none", "--batch-size", str(entry.batch_size), "--steps", str(steps),
           "--seed", str(seed), "--seeds", "1", "--workers", "1", "--json", str(out),
           "--journal", str(journal), "--timeout", str(TIMEOUT_S)]
    figures = run(cmd, tmp, f"{entry.name}.probe")
    figures["command"] = " ".join(cmd[1:])
    figures["result"] = read_json(out)
    figures["compared"] = compared_probe(figures["result"], journal)
    return figures


def compared_probe(result: dict[str, Any] | None, journal: Path) -> dict[str, Any] | None:
    """The probe a row compares with ``fit``: the one that ran last in its worker (the
    journal records results as they arrive; one worker runs them one after another)."""
    probes = (result or {}).get("probes") or []
    if len(probes) <= 1:
        return probes[0] if probes else None
    try:
        lines = [json.loads(line) for line in journal.read_text().splitlines() if line]
    except (OSError, ValueError):
        lines = []
    order = [line.get("id") for line in lines if line.get("type") == "probe"]
    by_id = {p["id"]: p for p in probes}
    last = next((by_id[i] for i in reversed(order) if i in by_id), None)
    return last or probes[-1]


def fit_steps(steps: int, probe: dict[str, Any]) -> int:
    """The steps the fit trains: as many as the compared probe trained where it trained
    past the planned ``steps`` (an extension), else the planned steps (a probe that
    stopped early is compared with the planned run)."""
    done = (probe.get("compared") or {}).get("steps_completed")
    return int(done) if done and done > steps else steps


# --------------------------------------------------------------------- comparing


def loss_differences(probe: list, fit: list) -> list[float]:
    """|probe - fit| / max(|fit|, 1e-8) per step both ran (inf where only one is finite)."""
    out = []
    for p, f in zip(probe, fit, strict=False):
        if p is None or f is None:
            out.append(0.0 if p is None and f is None else math.inf)
        else:
            out.append(abs(p - f) / max(abs(f), 1e-8))
    return out


def median_loss_ratio(probe: list, fit: list) -> float | None:
    """The median of fit / probe over the steps where both losses are finite and nonzero."""
    ratios = [f / p for p, f in zip(probe, fit, strict=False) if p and f is not None]
    return float(np.median(ratios)) if ratios else None


def _evidence_text(probe: dict[str, Any]) -> str:
    evidence = probe.get("evidence") or {}
    if evidence.get("message"):
        return f"{evidence.get('exception_type') or 'exception'}: {evidence['message']}"
    return probe.get("summary") or json.dumps(evidence)


def compare(entry: zoo.ZooEntry, steps: int, fit: dict, probe: dict) -> dict[str, Any]:
    """One row of the report: what each run did and which targets it meets."""
    fit_result = fit.get("result") or {}
    probe_json = probe.get("result") or {}
    probes = probe_json.get("probes") or []
    first = probe.get("compared")
    if first is None:  # stabcheck refused the run (exit 2) or broke (exit 3)
        tail = (probe.get("stderr_tail") or "").strip().splitlines()
        outcome, evidence = f"exit {probe['rc']}", tail[-1] if tail else ""
        probe_losses, probe_peak = [], None
    else:
        outcome, evidence = first["outcome"], _evidence_text(first)
        probe_losses, probe_peak = first.get("loss_history") or [], first.get("peak_host_bytes")
    fit_losses = fit_result.get("losses") or []
    fit_peak = fit_result.get("peak_private_bytes")
    training = ((first or {}).get("evidence") or {}).get("training_step") or {}
    diffs = loss_differences(probe_losses, fit_losses)
    compared = len(diffs)
    max_diff = max(diffs) if diffs else None
    trained = first is not None and outcome not in NOT_TRAINED and bool(fit_losses)
    limit = MEMORY_RATIO * fit_peak + MEMORY_SLACK_BYTES if fit_peak else None
    memory_ok = None  # not checked where the probe did not train: its peak proves nothing
    if trained and limit is not None and probe_peak is not None:
        memory_ok = probe_peak <= limit
    loss_ok = None  # not judged (random numbers in training) or nothing to compare
    if entry.deterministic and compared:
        loss_ok = compared == steps == len(fit_losses) and max_diff <= LOSS_RTOL
    return {
        "name": entry.name,
        "note": entry.note,
        "factory": entry.factory,
        "deterministic": entry.deterministic,
        "batch_size": entry.batch_size,
        "steps": steps,
        "steps_planned": (first or {}).get("steps_planned"),
        "trains_on": entry.trains_on,
        # evaluated at a rung, then trained on (the rungs' steps, in pairs)
        "extended": list(zip([r["step"] for r in (first or {}).get("rungs") or []][:-1],
                             [r["step"] for r in (first or {}).get("rungs") or []][1:],
                             strict=True))
        or [(e["at_step"], e["to_step"]) for e in training.get("extended") or []],
        "probes_in_worker": len(probes),
        "compared_probe": (first or {}).get("id"),
        "evaluation_extra_bytes": training.get("evaluation_extra_bytes"),
        "evaluation_resident_bytes": training.get("evaluation_resident_bytes"),
        "outcome": outcome,
        "evidence": evidence,
        "probe_exit": probe["rc"],
        "probe_steps": len(probe_losses),
        "probe_peak_bytes": probe_peak,
        "fit_peak_bytes": fit_peak,
        "peak_ratio": probe_peak / fit_peak if probe_peak and fit_peak else None,
        "memory_limit_bytes": limit,
        "max_rel_loss_diff": max_diff,
        "steps_compared": compared,
        "median_fit_over_probe_loss": median_loss_ratio(probe_losses, fit_losses),
        "trained": trained,
        "memory_ok": memory_ok,
        "loss_ok": loss_ok,
        "probe_losses": probe_losses,
        "fit_losses": fit_losses,
        "fit": {k: v for k, v in fit_result.items() if k != "losses"},
        "fit_exit": fit["rc"],
        "fit_stderr_tail": fit.get("stderr_tail"),
        "fit_wall_s": fit["wall_s"],
        "probe_wall_s": probe["wall_s"],
        "probe_command": probe["command"],
        "probe_stderr_tail": probe.get("stderr_tail"),
    }


# ---------------------------------------------------------------------- reporting


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.0f}"


def _flag(value: bool | None, good: str, bad: str) -> str:
    return "n/a" if value is None else (good if value else bad)


def _trained(row: dict[str, Any]) -> str:
    """Planned -> trained steps for a probe that trained past its planned ones."""
    planned = row.get("steps_planned")
    if planned and planned != row["probe_steps"]:
        return f"{planned}->{row['probe_steps']}"
    return str(row["probe_steps"])


def print_table(rows: list[dict[str, Any]]) -> None:
    log(f"  {'model':<25} {'det':>3} {'outcome':<17} {'trained':>7} {'probe MiB':>9} "
        f"{'fit MiB':>8} {'ratio':>6} {'mem':>4} {'eval+ MiB':>9} {'max rel loss diff':>17} "
        f"{'steps':>7} {'loss':>6}")
    for r in rows:
        ratio = "n/a" if r["peak_ratio"] is None else f"{r['peak_ratio']:.2f}x"
        diff = "n/a" if r["max_rel_loss_diff"] is None else f"{r['max_rel_loss_diff']:.1e}"
        loss = ("n/j" if not r["deterministic"]
                else _flag(r["loss_ok"], "ok", "DIFF"))
        log(f"  {r['name']:<25} {'yes' if r['deterministic'] else 'no':>3} "
            f"{r['outcome']:<17} {_trained(r):>7} {_mib(r['probe_peak_bytes']):>9} "
            f"{_mib(r['fit_peak_bytes']):>8} {ratio:>6} {_flag(r['memory_ok'], 'ok', 'OVER'):>4} "
            f"{_mib(r['evaluation_extra_bytes']):>9} {diff:>17} "
            f"{r['steps_compared']:>3}/{r['steps']:<3} {loss:>6}")
    log("  (det: deterministic; trained: planned->trained steps where a probe trained past")
    log("   its steps, the fit trains as many; mem: probe peak <= 1.10 x fit peak + 64 MiB;")
    log("   eval+: how far held-out evaluation rose above the training peak, reported apart;")
    log("   loss: per-step losses within 1e-4 relative, n/j = not judged: the model draws")
    log("   random numbers; *_two_probes: the later of two probes in one worker)")


def print_findings(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["outcome"] != "stable":
            log(f"! {r['name']}: {r['outcome']}: {r['evidence'][:600]}")
        if r["trains_on"] and not r["extended"]:
            log(f"! {r['name']}: meant to train past its {r['steps_planned']} steps, it did "
                f"not ({r['outcome']}): the row compares no evaluated-then-trained probe")
        if r["fit_exit"] != 0 or not r["fit_losses"]:
            tail = (r["fit_stderr_tail"] or "").strip().splitlines()
            log(f"! {r['name']}: the fit run failed (exit {r['fit_exit']}): "
                f"{tail[-1] if tail else 'no losses'}")
        elif not r["fit"].get("batches_in_order", True):
            log(f"! {r['name']}: fit did not take the batches in order")
        ratio = r["median_fit_over_probe_loss"]
        if r["loss_ok"] is False and ratio is not None:
            log(f"  {r['name']}: fit / probe loss, median over steps: {ratio:.4g}")


def targets(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target: met or not, the models that miss it and those it cannot be checked
    on (no figure: the probe did not run or did not train); both keep it from being met."""
    judged = [r for r in rows if r["deterministic"]]
    checks = {
        "trains": (rows, lambda r: r["trained"]),
        "memory": (rows, lambda r: r["memory_ok"]),
        "loss": (judged, lambda r: r["loss_ok"]),
    }
    out = {}
    for key, (subset, ok) in checks.items():
        missed = [r["name"] for r in subset if ok(r) is False]
        unchecked = [r["name"] for r in subset if ok(r) is None]
        out[key] = {"met": not missed and not unchecked,
                    "passed": len(subset) - len(missed) - len(unchecked), "of": len(subset),
                    "missed": missed, "unchecked": unchecked}
    return out


def print_targets(verdicts: dict[str, dict[str, Any]]) -> None:
    labels = {"trains": "every model trains",
              "memory": "probe peak <= 1.10 x fit peak + 64 MiB",
              "loss": "losses agree to 1e-4 (deterministic models)"}
    for key, label in labels.items():
        v = verdicts[key]
        state = "met" if v["met"] else "NOT MET"
        parts = [f"missed: {', '.join(v['missed'])}"] if v["missed"] else []
        parts += [f"n/a: {', '.join(v['unchecked'])}"] if v["unchecked"] else []
        detail = f" ({'; '.join(parts)})" if parts else ""
        log(f"  {label:<46} {v['passed']:>2}/{v['of']:<2} {state}{detail}")
    met = sum(v["met"] for v in verdicts.values())
    log(f"targets: {met}/{len(verdicts)} met"
        + ("" if met == len(verdicts) else
           f"; not met: {', '.join(k for k, v in verdicts.items() if not v['met'])}"))




def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("stabcheck", "tensorflow-cpu", "tensorflow", "keras", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"only the zoo's quick models, {QUICK_STEPS} steps (those that "
                        "train past their steps keep theirs)")
    parser.add_argument("--only", default=None, help="NAME[,NAME]: only these zoo models")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps of every model (default: the zoo's, or --quick's)")
    parser.add_argument("--seed", type=int, default=0)
    # The fit process (internal): --fit-one NAME --data NPZ --out JSON.
    parser.add_argument("--fit-one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    started = dt.datetime.now(dt.timezone.utc)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    entries = _entries(names, args.quick)
    git, source = common.git_info(), stabcheck_source()
    tree = source == str(ROOT / "stabcheck")
    dirty = " with uncommitted changes" if tree and git["stabcheck_dirty"] else ""
    log(f"== Fidelity: stabcheck probe vs model.fit, {len(entries)} models, seed {args.seed}, "
        f"{os.cpu_count()} cores, git {git['sha']}; stabcheck from {source}{dirty}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="stabcheck-fidelity-") as tmp_name:
        tmp = Path(tmp_name)
        for entry in entries:
            quick = args.quick and not entry.trains_on  # those keep the steps they need
            steps = args.steps or (QUICK_STEPS if quick else entry.steps)
            data = tmp / f"{entry.name}.npz"
            np.savez(data, **entry.data())
            rates = learning_rates(entry)
            log(f"- {entry.name}: batch {entry.batch_size}, {steps} steps"
                + (f", {len(rates)} probes in one worker" if len(rates) > 1 else "")
                + ": probe ...")
            probe = run_probe(entry, data, steps, args.seed, tmp)
            compared = probe["compared"] or {}
            fit_for = fit_steps(steps, probe)
            log(f"  probe {probe['wall_s']:.0f} s (exit {probe['rc']}): "
                f"{compared.get('outcome', 'no probe')}, {fit_for} steps; fit ...")
            lr = (compared.get("settings") or {}).get("learning_rate")
            fit = run_fit(entry, data, fit_for, args.seed, tmp,
                          float(lr) if lr is not None and entry.learning_rates else None)
            rows.append(compare(entry, fit_for, fit, probe))
            log(f"  fit {fit['wall_s']:.0f} s (exit {fit['rc']})")
    log("")
    print_table(rows)
    log("")
    print_findings(rows)
    log("")
    verdicts = targets(rows)
    print_targets(verdicts)
    total_s = time.perf_counter() - t0
    result = {
        "schema": 1,
        "started_utc": started.isoformat(timespec="seconds"),
        "git": git,
        "stabcheck_source": source,
        "command": " ".join(["bench/fidelity.py", *sys.argv[1:]]),
        "options": {"quick": args.quick, "only": names, "steps": args.steps, "seed": args.seed},
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        "targets": {"memory_ratio": MEMORY_RATIO, "memory_slack_bytes": MEMORY_SLACK_BYTES,
                    "loss_rtol": LOSS_RTOL, "not_trained": sorted(NOT_TRAINED)},
        "verdicts": verdicts,
        "rows": rows,
        "bench_wall_s": total_s,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fidelity.json").write_text(json.dumps(result, indent=1, default=str))
    log(f"rows: {(RESULTS / 'fidelity.json').relative_to(ROOT)}; bench took {total_s:.0f} s")
    broken = [r["name"] for r in rows if r["fit_exit"] != 0 or not r["fit_losses"]]
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fit_one:
        steps = args.steps or _entries([args.fit_one])[0].steps
        return fit_one(args.fit_one, args.data, steps, args.seed, args.out, args.lr)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
