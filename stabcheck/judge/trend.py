"""The trend of a probe's loss and gradient-norm curves, judged robustly.

Per-batch losses of weighted, imbalanced data are heavy-tailed: at batch 32 with 0.2%
positives most batches hold no positive and their loss falls towards zero, while the rare
batch that holds one (weighted 250x under ``balanced``) costs 1000x as much. A rule on the
minimum seen, or on an exponential moving average that one such batch lifts, calls every
such run diverged. The rules here compare medians instead: the median of a window
ignores a minority of expensive batches, and moves only when the typical batch does.

Pure functions on lists of floats; the classifier (``stabcheck.judge.classify``) and the worker's
early exit (``stabcheck.worker.training``) share them, so both apply the same rule.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stabcheck.config.thresholds import Thresholds


def rolling_median(values: Sequence[float], window: int) -> list[float]:
    """The trailing median of the last ``window`` values at each position (fewer at the
    start)."""
    return [statistics.median(values[max(0, i - window + 1): i + 1]) for i in range(len(values))]


def trend_window(n: int, t: Thresholds) -> int:
    """Steps per window of the trend rule: ``trend_window_fraction`` of the probe, at least
    ``trend_min_window``."""
    return max(t.trend_min_window, round(n * t.trend_window_fraction))


def window_medians(values: Sequence[float], window: int) -> list[tuple[int, float]]:
    """(first step, median) of consecutive windows of ``window`` steps, aligned on the end
    (the last window is the last ``window`` steps; a short first window is dropped)."""
    out = []
    end = len(values)
    while end - window >= 0:
        out.append((end - window + 1, statistics.median(values[end - window: end])))
        end -= window
    return out[::-1]


@dataclass(frozen=True)
class LossTrend:
    """What the loss curve says, robustly: diverged or not, and why.

    ``rule``: ``"blown_up"`` (the last ``spike_window`` losses' median passed
    ``early_stop_factor`` x the start: what the worker's early exit stops on),
    ``"above_start"`` (the late window's median, and the median of the last
    ``spike_window`` steps, are above ``divergence_factor`` x the start), ``"still_rising"``
    (the last three windows' medians rise, the last one and the last ``spike_window``
    steps' median above ``divergence_factor`` x the lowest) or None (not diverged). The
    last steps' median must agree: a swing that fills the late window but has come back
    by the last step is a recovered spike.
    """

    rule: str | None
    evidence: dict[str, Any]
    spike: dict[str, Any] | None  # a sustained excursion that recovered (not diverged)
    too_short: bool

    @property
    def diverged(self) -> bool:
        return self.rule is not None


def untrained_loss(losses: Sequence[float], step_info: Mapping[str, Any] | None) -> float:
    """The untrained model's expected loss: the first step's, over the first batch's mean
    class weight relative to the data's (``first_batch_weight``, the worker's step info).
    Under class weights the first batch can hold no rare sample (the keras-io fraud model:
    a first loss of 0.352 where the data's mean weight gives about twice that), and every
    later batch that holds one reads as a rise."""
    first = losses[0]
    weight = (step_info or {}).get("first_batch_weight")
    if isinstance(weight, (int, float)) and not isinstance(weight, bool) \
            and math.isfinite(weight) and weight > 0:
        return first / weight
    return first


def loss_trend(losses: Sequence[float], t: Thresholds, start: float | None = None
               ) -> LossTrend:
    """Judge a finite loss curve.

    The start is the untrained model's loss, before any update: the first step's, or
    ``start`` (``untrained_loss``: the first step's scaled to the data's mean class
    weight). Not the median of the first steps, which would already hold the training's
    effect (Adam can drive the loss of the easy class from 0.25 to 1e-10 within five
    steps).
    """
    n = len(losses)
    start = losses[0] if start is None else start
    short = n < t.trend_min_steps
    roll = rolling_median(losses, t.spike_window)
    peak_step = max(range(n), key=lambda i: losses[i]) + 1
    base = {"start_loss": start, "peak_loss": losses[peak_step - 1], "peak_step": peak_step,
            "steps": n}
    if start != losses[0]:
        base["first_loss"] = losses[0]
    # blown up beyond doubt: the worker's early exit (any length)
    if start > 0 and n >= t.spike_window and roll[-1] > t.early_stop_factor * start:
        onset = _onset(losses, roll, t.early_stop_factor * start, t.spike_window)
        return LossTrend("blown_up", {**base, "rule": "blown_up", "step": onset,
                                      "recent_median": roll[-1], "factor": roll[-1] / start,
                                      "decided_at_step": n}, None, short)
    if short:
        return LossTrend(None, {**base, "trend": "too_short"}, None, True)
    window = trend_window(n, t)
    windows = window_medians(losses, window)
    late = windows[-1][1]
    # The windows' means (the objective: fit's epoch loss) are evidence beside the
    # medians: under class weights a median that rises while the mean falls is the
    # common classes' loss rising as the predictions flip to the rare class
    # (stabcheck.judge.classify: an overcorrection, not a blow-up).
    evidence = {**base, "window": window, "late_median": late,
                "window_medians": [m for _, m in windows], "decided_at_step": n,
                "early_mean": statistics.fmean(losses[:window]),
                "late_mean": statistics.fmean(losses[-window:])}
    # the late window far above the start, and the last steps not back below it: a swing
    # that has come back under the start by the last step recovered; one that still sits
    # above it has not (the keras-io fraud model with x100 weights at lr 0.1, clipped: 13x
    # its start over the last 20 steps, the last 5 at 3.8x; its long run's epoch loss
    # climbs to 200x)
    if start > 0 and late > t.divergence_factor * start and roll[-1] > start:
        onset = _onset(losses, roll, t.divergence_factor * start, t.spike_window)
        return LossTrend("above_start", {**evidence, "rule": "above_start", "step": onset,
                                         "factor": late / start}, None, False)
    floor = t.trend_floor * abs(start)
    if len(windows) >= 3:
        (_, a), (_, b), (_, c) = windows[-3:]
        low = max(min(m for _, m in windows), floor)
        if a < b < c and low > 0 and c > t.divergence_factor * low \
                and roll[-1] > t.divergence_factor * low:
            lowest = min(range(len(windows)), key=lambda i: windows[i][1])
            onset = windows[lowest][0]
            return LossTrend("still_rising", {**evidence, "rule": "still_rising", "step": onset,
                                              "lowest_median": low, "factor": c / low}, None,
                             False)
    spike = None
    top = max(range(n), key=lambda i: roll[i])
    if start > 0 and roll[top] > t.divergence_factor * start:
        # the highest loss of the excursion: within the window of the trend's peak
        peak = max(range(max(0, top - t.spike_window + 1), top + 1), key=lambda i: losses[i])
        spike = {"peak_loss": losses[peak], "peak_step": peak + 1,
                 "trend_peak": roll[top], "trend_peak_step": top + 1, "start_loss": start,
                 "late_median": late}
    return LossTrend(None, {**evidence, "trend": "falling" if late < start else "flat"},
                     spike, False)


def _onset(losses: Sequence[float], roll: Sequence[float], level: float, window: int) -> int:
    """The step the blow-up began: the first of the last run of steps whose rolling median
    is above ``level``, moved back to the first raw loss above it in that window."""
    i = len(roll) - 1
    while i > 0 and roll[i - 1] > level:
        i -= 1
    for j in range(max(0, i - window + 1), i + 1):
        if losses[j] > level:
            return j + 1
    return i + 1


def heavy_batches(losses: Sequence[float], t: Thresholds) -> dict[str, Any] | None:
    """Isolated batches the trend ignored (heavy tails): losses above ``divergence_factor`` x
    the median of their window (at least ``trend_floor`` x the start): how many, and the
    highest; None when there are none or the curve is too short for windows."""
    if len(losses) < t.trend_min_steps or not losses[0] > 0:
        return None
    window = trend_window(len(losses), t)
    floor = t.trend_floor * losses[0]
    over = []
    for first, median in window_medians(losses, window):
        level = t.divergence_factor * max(median, floor)
        over += [i for i in range(max(1, first - 1), first - 1 + window) if losses[i] > level]
    if not over:
        return None
    top = max(over, key=lambda i: losses[i])
    return {"count": len(over), "highest": losses[top], "highest_step": top + 1}


def gradient_explosion(norms: Sequence[float], t: Thresholds) -> dict[str, Any] | None:
    """The step the gradient norm's trend reached ``explosion_ratio`` x its baseline, or None.

    The trend is the rolling median of ``spike_window`` steps: one batch holding a rare,
    heavily weighted sample is not an explosion. The baseline is the median over the first
    ``early_window`` steps, but at least ``gradient_floor`` x the first step's norm: a
    loss driven towards zero on the common class has vanishing gradients, and against a
    vanishing baseline any later batch looks like an explosion.
    """
    found = _gradient_baseline(norms, t)
    if found is None:
        return None
    measured, early, baseline = found
    values = [v for _, v in measured]
    roll = rolling_median(values, t.spike_window)
    for k in range(t.early_window, len(measured)):
        if roll[k] >= t.explosion_ratio * baseline:
            onset = next(j for j in range(max(0, k - t.spike_window + 1), k + 1)
                         if values[j] >= t.explosion_ratio * baseline)
            step, norm = measured[onset]
            return {"step": step, "grad_norm": norm, "trend_norm": roll[k],
                    "decided_at_step": measured[k][0], "early_median": early,
                    "baseline": baseline, "ratio": roll[k] / baseline}
    return None


def _gradient_baseline(
    norms: Sequence[float], t: Thresholds
) -> tuple[list[tuple[int, float]], float, float] | None:
    """(measured (step, norm) pairs, the median of the first ``early_window``, the
    baseline: that median, but at least ``gradient_floor`` x the first norm); None where
    too few norms were measured or the baseline is not positive."""
    measured = [(i + 1, v) for i, v in enumerate(norms) if not math.isnan(v)]
    if len(measured) <= t.early_window:
        return None
    early = statistics.median(v for _, v in measured[: t.early_window])
    first = measured[0][1]
    baseline = max(early, t.gradient_floor * first) if math.isfinite(first) else early
    if baseline <= 0:
        return None
    return measured, early, baseline


def gradient_trend(norms: Sequence[float], t: Thresholds) -> dict[str, Any] | None:
    """Where the gradient norm's trend (the rolling median of ``spike_window`` steps) is
    at the last step, against the baseline ``gradient_explosion`` uses; None where too
    few norms were measured."""
    found = _gradient_baseline(norms, t)
    if found is None:
        return None
    measured, _early, baseline = found
    values = [v for _, v in measured]
    last = rolling_median(values, t.spike_window)[-1]
    return {"trend_norm": last, "baseline": baseline, "ratio": last / baseline,
            "step": measured[-1][0]}


def gradient_spike(norms: Sequence[float], t: Thresholds) -> dict[str, Any] | None:
    """The largest single-batch gradient norm above ``explosion_ratio`` x the baseline that
    the trend rule ignored (evidence), or None."""
    found = _gradient_baseline(norms, t)
    if found is None:
        return None
    measured, _early, baseline = found
    step, norm = max(measured[t.early_window:], key=lambda sv: sv[1])
    if norm < t.explosion_ratio * baseline:
        return None
    return {"step": step, "grad_norm": norm, "baseline": baseline, "ratio": norm / baseline}


def blown_up(recent: Sequence[float], start: float, t: Thresholds) -> bool:
    """The worker's early exit: the median of the last ``spike_window`` losses is above
    ``early_stop_factor`` x the start (the same rule as ``loss_trend``'s ``blown_up``)."""
    if len(recent) < t.spike_window or not start > 0:
        return False
    return statistics.median(recent[-t.spike_window:]) > t.early_stop_factor * start


def early_stop_rule(t: Thresholds) -> dict[str, float]:
    """The worker's early exit as it travels to the worker (``WorkerInit.early_stop``)."""
    return {"factor": t.early_stop_factor, "min_steps": t.early_stop_min_steps,
            "window": t.spike_window}
