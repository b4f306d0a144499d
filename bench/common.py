"""What every way of the benchmark shares: the grids, the data, the class weights, the batches.

Numpy, the standard library and the stabcheck data/class-weight modules only (no
TensorFlow), so the driver (``run.py``) can import it without paying for a framework
import. The baselines (``fit_loop.py``, ``tuner.py``) import it *after* timing their own
TensorFlow import.

The grids of ``make bench`` (:data:`GRIDS`):

- ``small``: the 18-setting grid (builtin:cnn on builtin:digits made long-tailed, class
  weights none/balanced/x100, lr 1e-3/1e-2/1e-1, clip none/global_norm=1.0, batch 32,
  100 steps);
- ``demo``: the demo's 36, read from ``configs/demo.toml`` (the same 18 settings on
  builtin:digits-large x batch sizes 32 and 16384, 60 steps, a 768 MiB memory budget);
- ``apps``: a ``keras.applications`` model (``bench/apps.py``) on synthetic long-tailed
  32x32x3 images, 8 settings.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomllib

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"

MODEL = "cnn"  # stabcheck.worker.templates.build(MODEL, ...) == --model builtin:cnn
DATA = "builtin:digits"
IMBALANCE = 0.05
SEED = 0
BATCH_SIZE = 32
STEPS = 100
LOSS = "sparse_categorical_crossentropy"  # what stabcheck picks for these labels

CLASS_WEIGHTS = ("none", "balanced", "x100")
LRS = (0.001, 0.01, 0.1)
CLIPS = ("none", "global_norm=1.0")

# Larger grids for "how the cost grows" (stabcheck only).
LRS_2X = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
CLIPS_4X = ("none", "global_norm=1.0", "norm=1.0", "value=0.5")


@dataclass(frozen=True)
class Setting:
    class_weight: str
    lr: float
    clip: str
    batch_size: int = BATCH_SIZE

    @property
    def label(self) -> str:
        return f"cw={self.class_weight},lr={self.lr:g},clip={self.clip},bs={self.batch_size}"

    def key(self) -> tuple[str, float, str, int]:
        """Comparable with a stabcheck probe's settings (its clip reads 'global_norm=1')."""
        return (self.class_weight, round(self.lr, 12), normalize_clip(self.clip),
                int(self.batch_size))


def probe_key(settings: dict) -> tuple[str, float, str, int]:
    """:meth:`Setting.key` of a stabcheck probe's ``settings`` (from its JSON)."""
    return (str(settings.get("class_weight")), round(float(settings.get("learning_rate", 0.0)), 12),
            normalize_clip(str(settings.get("clip", "none"))),
            int(settings.get("batch_size") or 0))


def normalize_clip(clip: str) -> str:
    if clip == "none":
        return "none"
    kind, value = clip.split("=", 1)
    return f"{kind}={float(value):g}"


def grid(
    class_weights=CLASS_WEIGHTS, lrs=LRS, clips=CLIPS, batch_sizes=(BATCH_SIZE,)
) -> list[Setting]:
    """The settings in stabcheck's order: batch size, then class weight, then learning
    rate, then clip (``stabcheck.plan.plan_probes``)."""
    return [Setting(cw, lr, clip, bs)
            for bs, cw, lr, clip in itertools.product(batch_sizes, class_weights, lrs, clips)]


@dataclass(frozen=True)
class Grid:
    """One grid of ``make bench``: what stabcheck is given and what the fit loop repeats.

    Attributes:
        key: ``small``, ``demo`` or ``apps`` (``--grids``).
        title: the grid's line in the report.
        model: stabcheck's ``--model``: ``builtin:cnn``, or ``apps.py:FACTORY`` (a factory
            of ``bench/apps.py``; the bench passes its absolute path).
        data: stabcheck's ``--data``; ``apps`` is the ``.npz`` the bench writes from
            ``apps.data()`` before the runs.
        target: ``fit loop / stabcheck`` and ``fresh / stabcheck`` must reach it.
        config: a TOML file stabcheck is given instead of the grid's flags (the demo).
        memory_budget: bytes a probe, the fit loop and each fresh process may use.
    """

    key: str
    title: str
    model: str
    data: str
    imbalance: float | None
    class_weights: tuple[str, ...]
    lrs: tuple[float, ...]
    clips: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    steps: int
    target: float
    config: Path | None = None
    memory_budget: int | None = None
    timeout_s: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def settings(self) -> list[Setting]:
        return grid(self.class_weights, self.lrs, self.clips, self.batch_sizes)

    @property
    def n_settings(self) -> int:
        return len(self.settings())

    def stabcheck_args(self, data_path: Path | None = None) -> list[str]:
        """``stabcheck probe`` arguments that pin the grid (outputs are the caller's)."""
        if self.config is not None:
            return [str(self.config)]
        data = str(data_path) if self.data == "apps" else self.data
        model = (f"{HERE / self.model}" if self.model.startswith("apps.py:") else self.model)
        args = ["--model", model, "--data", data]
        if self.imbalance is not None:
            args += ["--imbalance", f"{self.imbalance:g}"]
        args += [
            "--class-weight", ",".join(self.class_weights),
            "--lr", ",".join(f"{v:g}" for v in self.lrs),
            "--clip", ",".join(self.clips),
            "--batch-size", ",".join(str(b) for b in self.batch_sizes),
            "--steps", str(self.steps),
        ]
        return args


_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "kib": 1 << 10,
               "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 1000**2, "gb": 1000**3}
# The keys of configs/demo.toml the fit loop reproduces; "json" and "timeout" only steer
# stabcheck's own run (the bench gives --json; the loop has no per-setting timeout).
_DEMO_KEYS = {"model", "data", "imbalance", "class_weight", "lr", "clip", "batch_size",
              "steps", "memory_budget", "timeout", "json"}


def _parse_size(text: str | int) -> int:
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"memory_budget {text!r}: expected e.g. 768MiB")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def demo_grid(path: Path = DEMO_CONFIG) -> Grid:
    """The demo's grid, as ``configs/demo.toml`` says (stabcheck runs the file itself)."""
    cfg = tomllib.loads(path.read_text())
    unknown = set(cfg) - _DEMO_KEYS
    if unknown:
        raise ValueError(f"{path}: keys the bench's fit loop does not reproduce: "
                         f"{sorted(unknown)}; teach bench/common.py about them")
    model = str(cfg["model"])
    if not model.startswith("builtin:"):
        raise ValueError(f"{path}: model {model!r}: the bench's fit loop builds builtin models")
    bs = tuple(int(b) for b in cfg["batch_size"])
    n = len(cfg["class_weight"]) * len(cfg["lr"]) * len(cfg["clip"]) * len(bs)
    return Grid(
        key="demo",
        title=(f"the demo's {n} ({model} on {cfg['data']}, batch {'/'.join(map(str, bs))}, "
               f"{cfg['steps']} steps, memory budget {cfg.get('memory_budget', 'none')})"),
        model=model,
        data=str(cfg["data"]),
        imbalance=cfg.get("imbalance"),
        class_weights=tuple(cfg["class_weight"]),
        lrs=tuple(float(v) for v in cfg["lr"]),
        clips=tuple(cfg["clip"]),
        batch_sizes=bs,
        steps=int(cfg["steps"]),
        target=3.0,
        config=path,
        memory_budget=_parse_size(cfg["memory_budget"]) if "memory_budget" in cfg else None,
        timeout_s=float(cfg["timeout"]) if "timeout" in cfg else None,
    )


SMALL = Grid(
    key="small",
    title=(f"18 settings (builtin:{MODEL} on {DATA}, imbalance {IMBALANCE:g}, batch "
           f"{BATCH_SIZE}, {STEPS} steps)"),
    model=f"builtin:{MODEL}", data=DATA, imbalance=IMBALANCE, class_weights=CLASS_WEIGHTS,
    lrs=LRS, clips=CLIPS, batch_sizes=(BATCH_SIZE,), steps=STEPS, target=3.0,
)

APPS_FACTORY = "mobilenet"  # a factory of bench/apps.py
APPS = Grid(
    key="apps",
    title="keras.applications MobileNet (alpha 0.25, weights=None) at 32x32x3, 8 settings "
          "(synthetic long-tailed images 400/160/64/24, batch 32, 50 steps)",
    model=f"apps.py:{APPS_FACTORY}", data="apps", imbalance=None,
    class_weights=("none", "balanced"), lrs=(0.001, 0.01), clips=("none", "global_norm=1.0"),
    batch_sizes=(32,), steps=50, target=1.5,
)


def grids() -> dict[str, Grid]:
    """The grids of ``make bench``, in the order they run."""
    return {"small": SMALL, "demo": demo_grid(), "apps": APPS}


def clip_kwargs(clip: str) -> dict[str, float]:
    """The Keras optimizer argument for a clip spec (as stabcheck's ``parse_clip`` reads it)."""
    if clip == "none":
        return {}
    kind, value = clip.split("=", 1)
    name = {"global_norm": "global_clipnorm", "norm": "clipnorm", "value": "clipvalue"}[kind]
    return {name: float(value)}


def load(g: Grid = SMALL, data_path: str | None = None):
    """The probes' training sample, exactly as stabcheck loads it for grid ``g``."""
    from stabcheck.inputs.data import load_dataset

    spec = data_path if g.data == "apps" else g.data
    if spec is None:
        raise ValueError(f"grid {g.key}: the .npz path is needed (--data)")
    return load_dataset(spec, imbalance=g.imbalance, seed=SEED)


def class_weight_dicts(dataset, strategies=CLASS_WEIGHTS) -> dict[str, dict[int, float] | None]:
    """``{strategy: fit(class_weight=...) dict or None}`` from stabcheck's own strategies."""
    from stabcheck.inputs.classweights import class_weights_for

    counts = np.bincount(dataset.c_train, minlength=dataset.n_classes)
    out: dict[str, dict[int, float] | None] = {}
    for strategy in strategies:
        weights = class_weights_for(strategy, counts.tolist(), class_names=dataset.class_names)
        out[strategy] = None if weights is None else {i: float(w) for i, w in enumerate(weights)}
    return out


def _batch_indices_copy(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    # Identical to stabcheck.worker.training.batch_indices; used only if that import fails.
    rng = np.random.default_rng(seed)
    needed = batch_size * steps
    epochs = [rng.permutation(n) for _ in range(math.ceil(needed / n))]
    return np.split(np.concatenate(epochs)[:needed], steps)


def ordered_rows(dataset, steps: int, batch_size: int = BATCH_SIZE
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    """x and y laid out so that ``fit(batch_size=batch_size, shuffle=False)`` sees
    stabcheck's batches (``batch_size`` at most the training sample).

    Call only where TensorFlow is already imported (stabcheck.worker.training imports it).
    """
    try:
        from stabcheck.worker.training import batch_indices

        source = "stabcheck.worker.training.batch_indices"
    except Exception:  # noqa: BLE001 - a package being edited must not stop the bench
        batch_indices, source = _batch_indices_copy, "bench copy of batch_indices"
    batches = batch_indices(len(dataset.x_train), batch_size, steps, SEED)
    flat = np.concatenate(batches)
    return dataset.x_train[flat], dataset.y_train[flat], source


def git_info() -> dict:
    """The commit the bench ran at, and whether the tree (or stabcheck/) had changes."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "sha": git("rev-parse", "--short", "HEAD") or "nogit",
        "dirty": bool(git("status", "--porcelain")),
        "stabcheck_dirty": bool(git("status", "--porcelain", "--", "stabcheck")),
    }


def run_logged(cmd: list[str], tmp: Path, tag: str, env: dict[str, str],
               timeout: float | None, stream: bool = False) -> dict:
    """Run ``cmd`` in ``tmp`` to completion or ``timeout`` seconds (None: no limit): exit
    code, wall time, and the tail of stderr when the exit code is neither 0 nor 1. Its
    stdout goes to ``tmp/TAG.out`` (or this process's stdout with ``stream``), its stderr
    to ``tmp/TAG.err``."""
    import time

    err_path = tmp / f"{tag}.err"
    t0 = time.perf_counter()
    with open(tmp / f"{tag}.out", "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=None if stream else out,  # noqa: S603
                                stderr=err, stdin=subprocess.DEVNULL)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    figures = {"rc": rc, "wall_s": time.perf_counter() - t0}
    if rc not in (0, 1):
        figures["stderr_tail"] = err_path.read_text(errors="replace")[-2000:]
    return figures
