"""From what a probe did to what it means: ``ProbeRun`` -> ``Verdict`` with evidence.

Pure functions, no I/O. The order of the rules is the order of certainty: the runner's
hard facts first (an error, a timeout, a death and its memory evidence:
``stabcheck.judge.deaths``), then the worker's non-finite report, then the shape of the
loss and gradient curves (here, with ``stabcheck.judge.trend``), then the held-out
predictions (``stabcheck.judge.predictions``) and whether a learning verdict is earned
yet (``stabcheck.judge.withheld``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.judge.deaths import death_verdict, exception_verdict, when
from stabcheck.judge.predictions import (
    predictions_verdict,
)
from stabcheck.judge.trend import (
    gradient_explosion,
    gradient_spike,
    gradient_trend,
    heavy_batches,
    loss_trend,
    untrained_loss,
)
from stabcheck.judge.verdicts import last_finite_loss, make_verdict
from stabcheck.judge.withheld import (
    across_rungs,
    climbed_note,
    not_warmed_up,
    plateau,
    still_learning,
)
from stabcheck.protocol.vocabulary import is_focal
from stabcheck.results import (
    HoldoutEval,
    Outcome,
    ProbeRun,
    RegressionEval,
    Termination,
    Verdict,
)


def classify(
    run: ProbeRun,
    class_names: Sequence[str] = (),
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    class_counts: Sequence[int] = (),
) -> Verdict:
    """The verdict on one probe run, with the per-class gradient shares in its evidence.

    Args:
        run: what the runner observed.
        class_names: display name per class index, for learning verdicts.
        thresholds: the numbers the curves are compared against.
        class_counts: training samples per class index (names the rarest class).
    """
    verdict = _classify(run, class_names, thresholds, class_counts)
    if run.step_info:
        verdict = Verdict(verdict.outcome, {**verdict.evidence, "training_step": run.step_info},
                          verdict.summary)
    shares = class_gradient_shares(run, class_names, class_counts)
    if shares is None:
        return verdict
    evidence = {**verdict.evidence, "class_gradients": shares}
    summary = verdict.summary
    if verdict.category.value == "numerical" and shares["ratio"] >= 2:
        summary += (f"; class {shares['rarest']} pulls {shares['ratio']:.0f}x as hard as class "
                    f"{shares['most_common']} (gradient norm at step {shares['step']})")
    return Verdict(verdict.outcome, evidence, summary)


def class_gradient_shares(
    run: ProbeRun, class_names: Sequence[str], class_counts: Sequence[int]
) -> dict[str, Any] | None:
    """Rarest vs most common class: the gradient norm of the loss restricted to each.

    Taken at the first measured step (before the failure had a chance to change the
    picture); None when the worker measured none or the counts are unknown.
    """
    if not run.class_grad_norms or not class_counts:
        return None
    step, norms = run.class_grad_norms[0]
    present = [int(c) for c in norms if class_counts[int(c)] > 0]
    if len(present) < 2:
        return None
    rare = min(present, key=lambda c: (class_counts[c], c))
    common = max(present, key=lambda c: (class_counts[c], -c))
    name = (lambda c: str(class_names[c])) if len(class_names) > max(present) else str
    rare_norm, common_norm = norms[str(rare)], norms[str(common)]
    ratio = rare_norm / common_norm if common_norm > 0 else math.inf
    return {"step": step, "rarest": name(rare), "most_common": name(common),
            "rarest_norm": rare_norm, "most_common_norm": common_norm, "ratio": ratio,
            "norms": {name(int(c)): v for c, v in norms.items()}}


def _classify(run: ProbeRun, class_names: Sequence[str], thresholds: Thresholds,
              class_counts: Sequence[int] = ()) -> Verdict:
    term = run.termination
    last = run.steps_completed
    if term is Termination.TIMEOUT:
        return make_verdict(Outcome.TIMEOUT, {"timeout_s": round(run.duration_s, 1), "step": last},
                            f"no progress report for {run.duration_s:.0f} s: ended "
                            f"{when(run, last)}")
    if term in (Termination.DIED, Termination.OVER_BUDGET):
        return death_verdict(run)
    if term is Termination.EXCEPTION:
        return exception_verdict(run)
    if term is Termination.NON_FINITE and run.nonfinite is not None:
        nf = run.nonfinite
        label = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(nf.value, nf.value)
        where = "loss" if nf.where == "loss" else f"{nf.variable} {nf.where}"
        return make_verdict(
            Outcome.NON_FINITE,
            {"step": nf.step, "where": nf.where, "variable": nf.variable, "value": nf.value,
             "last_finite_loss": last_finite_loss(run.steps)},
            f"{label} at step {nf.step} in {where}",
        )
    if term is Termination.NON_FINITE or any(not math.isfinite(s.loss) for s in run.steps):
        bad = next((s for s in run.steps if not math.isfinite(s.loss)), None)
        step = bad.step if bad else run.steps_completed
        return make_verdict(Outcome.NON_FINITE, {"step": step, "where": "loss", "variable": None,
                                             "value": "nan"},
                            f"non-finite loss at step {step}")
    return _curves_and_predictions(run, class_names, thresholds, class_counts)


def smoothed_losses(losses: Sequence[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average (as Lightning's and fastai's LR finders)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def _curves_and_predictions(
    run: ProbeRun, class_names: Sequence[str], t: Thresholds, class_counts: Sequence[int] = ()
) -> Verdict:
    losses = [s.loss for s in run.steps]
    norms = [s.grad_norm for s in run.steps]
    smooth = smoothed_losses(losses, t.ema_beta)
    warnings: list[str] = []
    extra: dict[str, Any] = {}
    if losses:
        trend = loss_trend(losses, t, start=untrained_loss(losses, run.step_info))
        flipped = _flipped_not_diverged(run, trend.evidence, class_names, t) \
            if trend.diverged else None
        if flipped is not None:
            extra["divergence_explained"] = flipped
            warnings.append(flipped["text"])
        elif trend.diverged:
            return _diverged(trend.evidence)
        extra["loss_trend"] = trend.evidence
        if trend.too_short:
            warnings.append(f"{len(losses)} steps are too few to judge the loss trend (at "
                            f"least {t.trend_min_steps}): raise --steps")
        if trend.spike is not None:
            spike = trend.spike
            extra["loss_spike"] = spike
            warnings.append(_spike_warning(spike, trend.evidence["window"]))
        heavy = heavy_batches(losses, t)
        if heavy is not None and trend.spike is None:
            extra["heavy_batches"] = heavy
    explosion = gradient_explosion(norms, t)
    if explosion is not None and _recovered(run, norms, t):
        extra["gradient_spike"] = {**explosion, "recovered": True}
        warnings.append(
            f"gradient norm spiked to {explosion['grad_norm']:.3g} at step {explosion['step']} "
            f"({explosion['ratio']:.0f}x its early level) and came back by step "
            f"{run.steps_completed}: not an explosion")
        explosion = None
    if explosion is not None:
        e = explosion
        return make_verdict(
            Outcome.EXPLODING_GRADIENTS, e,
            f"gradient norm {e['grad_norm']:.3g} at step {e['step']}: its median over "
            f"{t.spike_window} steps reached {e['ratio']:.0f}x its early level "
            f"{e['baseline']:.3g}",
        )
    spike = gradient_spike(norms, t)
    if spike is not None and "gradient_spike" not in extra:
        extra["gradient_spike"] = spike
    climbed = climbed_note(run, class_names, t)
    if climbed is not None:
        extra["climbed"] = climbed
        warnings.append(climbed["text"])
    holdout = run.holdout
    if isinstance(holdout, RegressionEval):
        return _with_warnings(_regression(run, holdout, smooth, t), extra, warnings)
    if smooth and holdout is not None and holdout.n:
        change, noise = loss_change(losses, t.early_window)
        chance = max(holdout.true_counts) / holdout.n
        flat = change < max(t.stall_rel_tolerance,
                            min(t.stall_noise_z * noise, t.stall_noise_cap))
        balanced = holdout.metrics.get("balanced_accuracy")
        present = sum(1 for c in holdout.true_counts if c > 0)
        uninformed = not isinstance(balanced, (int, float)) or not present or \
            balanced <= 1 / present + t.stall_balanced_margin
        stalled = None
        if flat and uninformed and holdout.accuracy <= chance + t.stall_chance_margin:
            within = " (within its batch-to-batch noise)" if change >= t.stall_rel_tolerance else ""
            where = "at" if holdout.accuracy >= chance - t.stall_chance_margin else "below"
            evidence = {"relative_loss_change": change, "relative_loss_noise": noise,
                        "holdout_accuracy": holdout.accuracy, "chance_accuracy": chance}
            if isinstance(balanced, (int, float)):
                evidence["balanced_accuracy"] = balanced
            stalled = make_verdict(
                Outcome.STALLED, evidence,
                f"loss moved {change:.1%} in {len(losses)} steps{within}; held-out accuracy "
                f"{holdout.accuracy:.1%} is {where} chance ({chance:.1%})",
            )
        verdict = stalled or predictions_verdict(run, class_names, t)
        not_judged = plateau(run, stalled, losses, class_counts, t) if stalled \
            else not_warmed_up(run, verdict, class_names, t)
        if not_judged is None and not stalled:
            not_judged = still_learning(run, verdict, losses, class_names, t)
        if not_judged is None and verdict is not None and verdict.outcome is not Outcome.STABLE:
            found = across_rungs(run, verdict, class_names, t)
            if found is not None and found.get("learning_verdict") == "not_judged":
                not_judged = found
            elif found is not None:
                verdict = Verdict(verdict.outcome, {**verdict.evidence, **found},
                                  f"{verdict.summary}; {found['rung_trend']['text']}")
        if not_judged is not None:
            extra.update(not_judged)
            warnings.append(not_judged["learning_verdict_reason"])
        elif verdict is not None and verdict.outcome is not Outcome.STABLE:
            return _with_warnings(verdict, extra, warnings)
        elif verdict is not None:  # stable, with a borderline warning
            extra.update(verdict.evidence)
            warnings.append(verdict.summary)
    evidence: dict[str, Any] = {"final_loss": smooth[-1] if smooth else None, **extra}
    summary = f"trained {len(losses)} steps, smoothed loss {smooth[-1]:.3g}" if smooth else ""
    if holdout is not None and holdout.n:
        evidence["holdout_accuracy"] = holdout.accuracy
        summary += f", held-out accuracy {holdout.accuracy:.1%}"
    if warnings:
        evidence["warnings"] = warnings
        summary += "; " + "; ".join(warnings)
    return make_verdict(Outcome.STABLE, evidence, summary)


def _regression(run: ProbeRun, holdout: RegressionEval, smooth: Sequence[float],
                t: Thresholds) -> Verdict:
    """A regression probe that trained without a numerical failure: ``stalled`` when its
    held-out R² is at or below ``stall_r2`` (no better than predicting the mean), else
    stable. No class verdicts: a regression target has no classes."""
    evidence: dict[str, Any] = {"final_loss": smooth[-1] if smooth else None,
                                "holdout_mae": holdout.mae, "holdout_rmse": holdout.rmse,
                                "holdout_r2": holdout.r2}
    scores = _regression_scores(holdout)
    r2 = holdout.r2
    if holdout.n and r2 is not None and r2 <= t.stall_r2:
        change, _noise = loss_change([s.loss for s in run.steps], t.early_window) \
            if run.steps else (0.0, 0.0)
        evidence["relative_loss_change"] = change
        worse = "no better than" if r2 >= -0.005 else "worse than"
        return make_verdict(
            Outcome.STALLED, evidence,
            f"R² {r2:.2f} on held-out data: predicts {worse} the mean"
            f" ({_regression_scores(holdout, r2=False)}; loss moved {change:.1%} in "
            f"{len(run.steps)} steps)",
        )
    summary = f"trained {len(run.steps)} steps, smoothed loss {smooth[-1]:.3g}" if smooth else ""
    if holdout.n and scores:
        summary += f", held-out {scores}"
    return make_verdict(Outcome.STABLE, evidence, summary)


def _regression_scores(holdout: RegressionEval, r2: bool = True) -> str:
    """``R² 0.87, MAE 0.31, RMSE 0.42`` (what is defined; ``r2`` False: without R²)."""
    parts = []
    shown = (("R²", holdout.r2),) if r2 else ()
    for label, value in (*shown, ("MAE", holdout.mae), ("RMSE", holdout.rmse)):
        if value is not None:
            parts.append(f"{label} {value:.2f}" if label == "R²" else f"{label} {value:.3g}")
    return ", ".join(parts)


def _spike_warning(spike: dict[str, Any], window: int) -> str:
    """``loss spiked to 12.6 at step 2 and recovered (...)``: a sustained excursion above
    ``divergence_factor`` x the start that the trend came back from."""
    text = f"loss spiked to {spike['peak_loss']:.3g} at step {spike['peak_step']} and "
    late, start = spike["late_median"], spike["start_loss"]
    if late < start:
        return text + (f"recovered (median of the last {window} steps {late:.3g}, below the "
                       f"{start:.3g} it started at)")
    return text + (f"came back to {late / start:.1f}x its start (median of the last "
                   f"{window} steps {late:.3g}, started at {start:.3g})")


def _flipped_not_diverged(run: ProbeRun, e: dict[str, Any], names: Sequence[str],
                          t: Thresholds) -> dict[str, Any] | None:
    """Evidence that a trend divergence of a class-weighted loss is the predictions
    flipping to the rare classes, not a blow-up: the typical (median) batch holds only
    common classes, whose loss rises as the model stops predicting them, while the
    weighted objective (the late window's mean, what fit's epoch loss shows) fell below
    the first window's; the held-out predictions are overcorrected. (The keras-io text
    model with x100 weights: the probe said diverged @33, its 3-epoch fit falls from 96.9
    to 1.6 and predicts every review positive.) None: the divergence stands."""
    if e.get("rule") not in ("above_start", "still_rising") or run.holdout is None:
        return None
    settings = run.probe.settings
    if settings.class_weights is None and not is_focal(settings.class_weight):
        return None
    early, late = e.get("early_mean"), e.get("late_mean")
    if not isinstance(early, float) or not isinstance(late, float) or late >= early:
        return None
    if not isinstance(run.holdout, HoldoutEval) or not run.holdout.n:
        return None
    verdict = predictions_verdict(run, names, t)
    if verdict is None or verdict.outcome is not Outcome.OVERCORRECTED:
        return None
    return {"rule": e["rule"], "late_median": e["late_median"], "start_loss": e["start_loss"],
            "early_mean": early, "late_mean": late,
            "text": (f"the median batch loss rose ({e['late_median']:.3g}, from a start "
                     f"of {e['start_loss']:.3g}) while the weighted loss "
                     f"fell (window mean {early:.3g} -> {late:.3g}): the predictions flipped "
                     "to the rare classes, an overcorrection, not a blow-up")}


def _recovered(run: ProbeRun, norms: Sequence[float], t: Thresholds) -> bool:
    """Whether a run whose gradient norm crossed the explosion ratio came back: it
    trained its planned steps and, at its last step, the norm's trend is an order of
    magnitude below the explosion level (``explosion_ratio`` / 10 of the baseline)."""
    if run.steps_completed < run.probe.steps:
        return False
    now = gradient_trend(norms, t)
    return now is not None and now["ratio"] < t.explosion_ratio / 10


def _with_warnings(verdict: Verdict, extra: dict[str, Any], warnings: list[str]) -> Verdict:
    """A learning verdict with the curves' evidence and warnings (a recovered spike)."""
    if not extra and not warnings:
        return verdict
    evidence = {**verdict.evidence, **extra}
    summary = verdict.summary
    if warnings:
        evidence["warnings"] = warnings
        summary += "; " + "; ".join(warnings)
    return Verdict(verdict.outcome, evidence, summary)


def _diverged(e: dict[str, Any]) -> Verdict:
    """The loss trend's divergence as a verdict."""
    if e["rule"] == "still_rising":
        medians = e["window_medians"][-3:]
        how = (f"the median loss of each of the last three {e['window']}-step windows rose "
               f"({' -> '.join(f'{m:.3g}' for m in medians)}), to {e['factor']:.3g}x its lowest "
               f"{e['lowest_median']:.3g}")
    else:
        last = "its last losses" if e["rule"] == "blown_up" else f"its last {e['window']} losses"
        how = f"the median of {last} is {e['factor']:.3g}x the start {e['start_loss']:.3g}"
    start, peak = e["start_loss"], e["peak_loss"]
    rise = f" ({peak / start:.3g}x)" if start > 0 else ""
    first = e.get("first_loss")
    origin = ("at the first step" if first is None else
              f"(the untrained model's expected loss: the first step's {first:.3g}, on a "
              f"batch of {first / start:.2f}x the data's mean class weight)")
    return make_verdict(
        Outcome.DIVERGED, e,
        f"loss diverged from step {e['step']}: it rose from {start:.3g} {origin} to "
        f"{peak:.3g}{rise} at step {e['peak_step']}, and {how}",
    )


def loss_change(losses: Sequence[float], window: int) -> tuple[float, float]:
    """How far the loss moved over a probe, and how far batch noise alone would move it.

    Compares the mean of the first ``window`` losses with the mean of the last ``window``
    (half the steps each when there are fewer than ``2 * window``). Returns the relative
    change ``|late - early| / |early|`` and the relative standard error of that difference
    for losses that only jitter: ``sigma * sqrt(2 / n) / |early|``, with the per-step noise
    ``sigma`` estimated from successive differences (``sigma^2 = mean(d^2) / 2``, von
    Neumann's estimator, which a trend hardly inflates).
    """
    n = min(window, len(losses) // 2)
    if n < 2:
        first, last = losses[0], losses[-1]
        return abs(last - first) / max(abs(first), 1e-12), 0.0
    early, late = losses[:n], losses[-n:]
    scale = max(abs(statistics.fmean(early)), 1e-12)
    change = abs(statistics.fmean(late) - statistics.fmean(early)) / scale
    steps = [b - a for a, b in zip(losses[:-1], losses[1:], strict=True)]
    sigma = math.sqrt(statistics.fmean(d * d for d in steps) / 2)
    return change, sigma * math.sqrt(2 / n) / scale


