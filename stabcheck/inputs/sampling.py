"""Sampling: the long tail ``--imbalance`` makes, the stratified held-out split, the capped
class-proportional samples, and the report's warning where a class keeps too few rows.

Pure functions of class indices and a seeded ``np.random.Generator``, so the same
arguments give the same rows.
"""

from __future__ import annotations

import math

import numpy as np

from stabcheck.protocol.dataset import Dataset
from stabcheck.text import plural

# "A few dozen": a class with fewer samples than this to train on or to be judged by has
# per-class figures that rest on too little (a recall of 30 samples moves in steps of 0.033
# and its standard error is up to 0.09, against the recommendation's 0.02 F1 tolerance; 30
# is the usual floor for a normal approximation of a proportion). The held-out sample grows
# to keep this many of every class where the held-out split has them (within
# --max-samples), and the report says where a class still has fewer.
RARE_CLASS_SAMPLES = 30
# A warning lists at most this many classes.
_LISTED = 3


def long_tail(c: np.ndarray, k: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices kept when class ``i`` keeps ``round(n_i * ratio ** (i / (k - 1)))``."""
    kept = []
    for cls in range(k):
        idx = np.flatnonzero(c == cls)
        if idx.size == 0:
            continue
        keep = int(math.floor(idx.size * ratio ** (cls / (k - 1)) + 0.5))
        keep = min(idx.size, max(2, keep))
        kept.append(rng.choice(idx, size=keep, replace=False))
    return np.sort(np.concatenate(kept))


def stratified_split(
    pool: np.ndarray, c: np.ndarray, k: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` (row indices) into (train, held out) with ``fraction`` of each class."""
    train, held = [], []
    pool_c = c[pool]
    for cls in range(k):
        idx = rng.permutation(pool[pool_c == cls])
        n_held = 0
        if fraction > 0 and idx.size >= 2:
            n_held = min(idx.size - 1, max(1, int(math.floor(idx.size * fraction + 0.5))))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return np.concatenate(train), np.concatenate(held)


def _quotas(counts: np.ndarray, cap: int) -> np.ndarray:
    """Rows per class for a proportional sample of ``cap`` rows (largest remainders).

    Every class with rows keeps at least one, even when that exceeds ``cap``.
    """
    total = int(counts.sum())
    if total <= cap:
        return counts.copy()
    exact = counts * (cap / total)
    quota = np.minimum(counts, np.maximum(np.floor(exact).astype(np.int64), counts > 0))
    short = cap - int(quota.sum())
    if short > 0:
        for cls in np.argsort(-(exact - np.floor(exact)), kind="stable"):
            if short == 0:
                break
            if quota[cls] < counts[cls]:
                quota[cls] += 1
                short -= 1
    while short < 0 and quota.max() > 1:
        quota[int(np.argmax(quota))] -= 1
        short += 1
    return quota


def class_counts(c: np.ndarray, k: int) -> tuple[int, ...]:
    return tuple(int(n) for n in np.bincount(c, minlength=k))


def _rows_for(target: int, count: int, total: int) -> int:
    """Rows of a proportional sample of ``total`` rows that hold ``target`` of a class of
    ``count`` (``_quotas`` floors a class's share: ceil keeps it at ``target``)."""
    return math.ceil(target * total / count)


def holdout_cap(counts: np.ndarray, cap: int, max_samples: int) -> int:
    """The held-out sample's cap: ``cap``, grown (up to ``max_samples``) as far as a class
    needs to keep ``RARE_CLASS_SAMPLES`` rows (or all it has) in a proportional sample."""
    total = int(counts.sum())
    quota = _quotas(counts, cap)
    needed = [_rows_for(min(RARE_CLASS_SAMPLES, int(n)), int(n), total)
              for n, q in zip(counts, quota, strict=True)
              if 0 < q < RARE_CLASS_SAMPLES and q < n]
    if not needed:
        return cap
    return max(cap, min(max(needed), max_samples))


def rare_class_warning(dataset: Dataset) -> str | None:
    """A sentence for the report where a class has fewer than ``RARE_CLASS_SAMPLES`` samples
    to train on or to be judged by (its recall and F1 rest on them), and how to raise them:
    the ``--max-samples`` that a proportional sample needs, and where the data itself holds
    fewer, a larger held-out split or more data. None where every class has enough, for a
    regression target, and where the sampling facts are unknown."""
    if dataset.task == "regression" or not dataset.train_pool_counts:
        return None
    k, names = dataset.n_classes, dataset.class_names
    train = np.bincount(dataset.c_train, minlength=k)
    held = np.bincount(dataset.c_val, minlength=k)
    sides = (  # (sample counts, pool counts, the pool's name, what gives it more)
        (train, np.asarray(dataset.train_pool_counts), "the training data", "more data"),
        (held, np.asarray(dataset.holdout_pool_counts),
         "x_val" if dataset.holdout_given else "the held-out split",
         "a larger x_val" if dataset.holdout_given
         else "a larger holdout (in the config) or more data"),
    )
    short = sorted((c for c in range(k)
                    if any(pool[c] > 0 and have[c] < RARE_CLASS_SAMPLES
                           for have, pool, _, _ in sides)),
                   key=lambda c: (min(train[c], held[c]), c))
    if not short:
        return None
    needed: list[int] = []
    lacking: dict[tuple[str, str], list[str]] = {}  # (pool, remedy) -> its classes
    for c in short:
        for have, pool, where, remedy in sides:
            if have[c] >= RARE_CLASS_SAMPLES:
                continue
            if pool[c] > have[c]:
                needed.append(_rows_for(min(RARE_CLASS_SAMPLES, int(pool[c])), int(pool[c]),
                                        int(pool.sum())))
            if pool[c] < RARE_CLASS_SAMPLES:
                lacking.setdefault((where, remedy), []).append(names[c])
    listed = "; ".join(f"class {names[c]}: {held[c]:,} held out, {train[c]:,} to train on"
                       for c in short[:_LISTED])
    more = f"; {len(short) - _LISTED} more" if len(short) > _LISTED else ""
    text = (f"per-class figures (recall, F1) rest on few samples: "
            f"{plural(len(short), 'class', 'classes')} "
            f"{'has' if len(short) == 1 else 'have'} fewer than {RARE_CLASS_SAMPLES} held "
            f"out or to train on ({listed}{more})")
    advice = []
    if needed:
        advice.append(f"--max-samples {_round_up(max(needed)):,} keeps more of them")
    for (where, remedy), which in lacking.items():
        shown = ", ".join(which[:_LISTED]) + (", ..." if len(which) > _LISTED else "")
        advice.append(f"{where} holds fewer than {RARE_CLASS_SAMPLES} of "
                      f"class{'es' if len(which) > 1 else ''} {shown}: {remedy}")
    return f"{text}: {'; '.join(advice)}"


def _round_up(rows: int) -> int:
    """A --max-samples to suggest: ``rows`` rounded up to two significant digits."""
    step = 10 ** max(0, len(str(rows)) - 2)
    return -(-rows // step) * step


def stratified_sample(
    pool: np.ndarray, c: np.ndarray, k: int, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """A shuffled, class-proportional sample of at most ``cap`` of ``pool``'s rows."""
    pool_c = c[pool]
    quota = _quotas(np.bincount(pool_c, minlength=k), cap)
    chosen = [rng.permutation(pool[pool_c == cls])[: quota[cls]] for cls in range(k) if quota[cls]]
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return rng.permutation(np.concatenate(chosen)).astype(np.int64)
