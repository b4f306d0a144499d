"""From what a probe did to what it means: ``ProbeRun`` -> ``Verdict`` with evidence.

Pure functions, no I/O. The order of the rules is the order of certainty: the runner's
hard facts first (an error, a timeout, a death and its memory evidence), then the
worker's non-finite report, then the shape of the loss and gradient curves, then the
held-out predictions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.judge.prior import prior_loss
from stabcheck.judge.trend import (
    gradient_explosion,
    gradient_spike,
    gradient_trend,
    heavy_batches,
    loss_trend,
    trend_window,
    untrained_loss,
)
from stabcheck.memory.oom import is_oom_message
from stabcheck.protocol.vocabulary import is_focal
from stabcheck.results import (
    HoldoutEval,
    Outcome,
    ProbeRun,
    RegressionEval,
    StepRecord,
    Termination,
    Verdict,
    signal_name,
)
from stabcheck.units import human_bytes


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
        return _verdict(Outcome.TIMEOUT, {"timeout_s": round(run.duration_s, 1), "step": last},
                        f"no progress report for {run.duration_s:.0f} s: ended "
                        f"{_when(run, last)}")
    if term in (Termination.DIED, Termination.OVER_BUDGET):
        return _death(run)
    if term is Termination.EXCEPTION:
        return _exception(run)
    if term is Termination.NON_FINITE and run.nonfinite is not None:
        nf = run.nonfinite
        label = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(nf.value, nf.value)
        where = "loss" if nf.where == "loss" else f"{nf.variable} {nf.where}"
        return _verdict(
            Outcome.NON_FINITE,
            {"step": nf.step, "where": nf.where, "variable": nf.variable, "value": nf.value,
             "last_finite_loss": _last_finite_loss(run.steps)},
            f"{label} at step {nf.step} in {where}",
        )
    if term is Termination.NON_FINITE or any(not math.isfinite(s.loss) for s in run.steps):
        bad = next((s for s in run.steps if not math.isfinite(s.loss)), None)
        step = bad.step if bad else run.steps_completed
        return _verdict(Outcome.NON_FINITE, {"step": step, "where": "loss", "variable": None,
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
        return _verdict(
            Outcome.EXPLODING_GRADIENTS, e,
            f"gradient norm {e['grad_norm']:.3g} at step {e['step']}: its median over "
            f"{t.spike_window} steps reached {e['ratio']:.0f}x its early level "
            f"{e['baseline']:.3g}",
        )
    spike = gradient_spike(norms, t)
    if spike is not None and "gradient_spike" not in extra:
        extra["gradient_spike"] = spike
    climbed = _climbed_note(run, class_names, t)
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
            stalled = _verdict(
                Outcome.STALLED, evidence,
                f"loss moved {change:.1%} in {len(losses)} steps{within}; held-out accuracy "
                f"{holdout.accuracy:.1%} is {where} chance ({chance:.1%})",
            )
        verdict = stalled or _predictions(run, class_names, t)
        not_judged = _plateau(run, stalled, losses, class_counts, t) if stalled \
            else _not_warmed_up(run, verdict, class_names, t)
        if not_judged is None and not stalled:
            not_judged = _still_learning(run, verdict, losses, class_names, t)
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
    return _verdict(Outcome.STABLE, evidence, summary)


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
        return _verdict(
            Outcome.STALLED, evidence,
            f"R² {r2:.2f} on held-out data: predicts {worse} the mean"
            f" ({_regression_scores(holdout, r2=False)}; loss moved {change:.1%} in "
            f"{len(run.steps)} steps)",
        )
    summary = f"trained {len(run.steps)} steps, smoothed loss {smooth[-1]:.3g}" if smooth else ""
    if holdout.n and scores:
        summary += f", held-out {scores}"
    return _verdict(Outcome.STABLE, evidence, summary)


def _regression_scores(holdout: RegressionEval, r2: bool = True) -> str:
    """``R² 0.87, MAE 0.31, RMSE 0.42`` (what is defined; ``r2`` False: without R²)."""
    parts = []
    shown = (("R²", holdout.r2),) if r2 else ()
    for label, value in (*shown, ("MAE", holdout.mae), ("RMSE", holdout.rmse)):
        if value is not None:
            parts.append(f"{label} {value:.2f}" if label == "R²" else f"{label} {value:.3g}")
    return ", ".join(parts)


def _climbed_note(run: ProbeRun, names: Sequence[str], t: Thresholds) -> dict[str, Any] | None:
    """A probe that trained past its planned steps (a contender whose learning verdict
    was unsettled there): ``trained on from 100 to 400 steps: class 1 was not predicted
    at step 100, predicted by step 400``; None for one that did not."""
    planned = run.probe.steps
    at = next((r for r in run.rungs if r.step == planned), None)
    if at is None or run.steps_completed <= planned or not isinstance(at.holdout, HoldoutEval):
        return None
    h = at.holdout
    missed = [c for c, n in enumerate(h.pred_counts)
              if n == 0 and c < len(h.true_counts) and h.true_counts[c] >= t.min_class_support]
    ran = run.steps_completed
    text = f"trained on from {planned} to {ran} steps"
    if missed:
        name = _namer(names, len(h.true_counts))
        holdout = run.holdout
        last = holdout.pred_counts if isinstance(holdout, HoldoutEval) else ()
        still = [c for c in missed if c < len(last) and last[c] == 0]
        found = [c for c in missed if c not in still]

        def which(classes: list[int]) -> str:
            return f"class{'es' if len(classes) != 1 else ''} {_names(classes, name)}"

        text += (f": {which(missed)} {'was' if len(missed) == 1 else 'were'} not predicted "
                 f"at step {planned}")
        if found:
            text += f"; {which(found) if still else 'all'} predicted by step {ran}"
        if still:
            text += f"; {which(still) if found else 'all'} still not predicted"
    else:
        text += f": its learning verdict was unsettled at step {planned}"
    return {"at_step": planned, "to_step": ran, "pred_counts": list(h.pred_counts),
            "text": text}


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
    verdict = _predictions(run, names, t)
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
    return _verdict(
        Outcome.DIVERGED, e,
        f"loss diverged from step {e['step']}: it rose from {start:.3g} {origin} to "
        f"{peak:.3g}{rise} at step {e['peak_step']}, and {how}",
    )


def _not_warmed_up(run: ProbeRun, verdict: Verdict | None, names: Sequence[str],
                   t: Thresholds) -> dict[str, Any] | None:
    """Evidence that the held-out predictions in inference mode are not the trained
    model's yet, so they are not judged: the model's BatchNormalization moving statistics
    are not warmed up after the probe's steps (``bn_warmup_residual``), and with batch
    statistics the predictions do not show the problem ``verdict`` found (or, with no
    verdict, are more than ``bn_accuracy_gap`` more accurate). None: the predictions stand.
    """
    holdout = run.holdout
    assert holdout is not None
    warm = holdout.metrics.get("bn_warmup")
    batch = holdout.metrics.get("batch_statistics")
    if not isinstance(warm, dict) or not isinstance(warm.get("residual"), (int, float)):
        return None
    if warm["residual"] <= t.bn_warmup_residual or not isinstance(batch, dict) \
            or not batch.get("n"):
        return None
    learning = verdict is not None and verdict.outcome is not Outcome.STABLE
    if learning:
        stats = HoldoutEval(int(batch["n"]), float(batch["accuracy"]),
                            tuple(batch["true_counts"]), tuple(batch["pred_counts"]),
                            tuple(batch["recall"]), dict(batch))
        again = _predictions(_with_holdout(run, stats), names, t)
        if again is not None and again.outcome is verdict.outcome:
            return None  # batch statistics show it too: the verdict stands
    elif float(batch["accuracy"]) - holdout.accuracy <= t.bn_accuracy_gap:
        return None  # the two modes agree: nothing to withhold
    momentum = warm.get("momentum")
    if isinstance(momentum, (int, float)) and 0 < momentum < 1:
        needed = math.ceil(math.log(t.bn_warmup_residual) / math.log(momentum))
        warm = {**warm, "steps_needed": needed}
    evidence: dict[str, Any] = {
        "learning_verdict": "not_judged", "not_judged_because": "bn_warmup",
        "withheld_verdict": verdict.outcome.value if learning else None,
        "bn_warmup": warm, "batch_statistics": batch}
    if learning:
        evidence["withheld_summary"] = verdict.summary
        seen = f"in inference mode {verdict.summary}"
    else:
        seen = f"in inference mode held-out accuracy is {holdout.accuracy:.1%}"
    needed_text = (f"; about {warm['steps_needed']} steps warm them up"
                   if "steps_needed" in warm else "")
    evidence["learning_verdict_reason"] = (
        f"not enough steps to judge the held-out predictions: the BatchNormalization moving "
        f"statistics still hold {warm['residual']:.0%} of their initial values after "
        f"{warm['steps']} steps (momentum {warm['momentum']:g}{needed_text}); {seen}, with "
        f"batch statistics held-out accuracy is {float(batch['accuracy']):.1%} (predicted "
        f"counts {list(batch['pred_counts'])})")
    return evidence


def _still_learning(run: ProbeRun, verdict: Verdict | None, losses: Sequence[float],
                    names: Sequence[str], t: Thresholds) -> dict[str, Any] | None:
    """Evidence that a ``minority_collapse`` or an ``overcorrected`` is too early to call:
    every class never predicted (the rare ones of a collapse, the common one the weights
    hold under the threshold, ``hides_the_common_class``) is already ranked above the
    others by the model's own score
    for it (one-vs-rest ROC-AUC at least ``still_learning_auc`` and ``still_learning_z``
    standard errors above chance) and the loss is still falling (the median of the last
    window of the trend rule below that of the first), so the decision threshold has not
    moved past those classes yet, while the model is learning them. None: it stands.
    """
    if verdict is None or not (verdict.outcome is Outcome.MINORITY_COLLAPSE
                               or hides_the_common_class(verdict)):
        return None
    holdout = run.holdout
    assert holdout is not None
    ranked = {item.get("class"): item.get("auc")
              for item in holdout.metrics.get("unpredicted_auc") or []
              if isinstance(item, dict)}
    never = [c for c in range(len(holdout.true_counts))
             if holdout.true_counts[c] >= t.min_class_support and holdout.pred_counts[c] == 0]
    window = min(trend_window(len(losses), t), len(losses) // 2)
    if not never or window < 2:
        return None
    first, last = statistics.median(losses[:window]), statistics.median(losses[-window:])
    if not last < first:
        return None
    classes = []
    for c in never:
        auc = ranked.get(c)
        z = _auc_z(auc, holdout, c)
        if z is None or auc < t.still_learning_auc or z < t.still_learning_z:
            return None
        classes.append({"class": _namer(names, len(holdout.true_counts))(c), "auc": auc,
                        "z": z, "held_out": holdout.true_counts[c]})
    if len(classes) == 1:
        what = f"class {classes[0]['class']}"
        aucs = f"ROC-AUC {classes[0]['auc']:.2f}"
    else:
        what = "classes " + ", ".join(item["class"] for item in classes)
        aucs = "ROC-AUC " + ", ".join(f"{item['auc']:.2f} for {item['class']}"
                                      for item in classes)
    steps = len(losses)
    held = sum(item["held_out"] for item in classes)
    reason = (
        f"too short to tell: {what} never predicted yet on the held-out split ({held} "
        f"samples), but the model already ranks {'it' if len(classes) == 1 else 'them'} "
        f"above the others ({aucs}) and its loss is still falling (median {first:.3g} over "
        f"the first {window} steps, {last:.3g} over the last): a longer run may predict "
        f"{'it' if len(classes) == 1 else 'them'}"
        + (f"; probe --steps {4 * steps} or more to judge"
           if steps >= run.probe.horizon else ""))
    return {"learning_verdict": "not_judged", "not_judged_because": "still_learning",
            "withheld_verdict": verdict.outcome.value, "withheld_summary": verdict.summary,
            "still_learning": {"classes": classes, "first_median": first,
                               "last_median": last, "window": window,
                               "steps_to_judge": 4 * steps},
            "learning_verdict_reason": reason}


def _auc_z(auc: Any, holdout: HoldoutEval, c: int) -> float | None:
    """How many standard errors the one-vs-rest ROC-AUC ``auc`` of class ``c`` is above
    chance (the Mann-Whitney statistic's standard error when the scores rank nothing,
    ``sqrt((n1 + n2 + 1) / (12 n1 n2))``); None without a finite AUC or both sides."""
    if not isinstance(auc, (int, float)) or not math.isfinite(auc):
        return None
    positives = holdout.true_counts[c]
    negatives = holdout.n - positives
    if positives <= 0 or negatives <= 0:
        return None
    return (auc - 0.5) / math.sqrt((positives + negatives + 1) / (12 * positives * negatives))


def hides_the_common_class(verdict: Verdict) -> bool:
    """An overcorrection by the weights holding the most common class under the
    threshold (rule ``common_never_predicted``)."""
    return (verdict.outcome is Outcome.OVERCORRECTED
            and verdict.evidence.get("rule") == "common_never_predicted")


def hidden_but_ranked(run: ProbeRun, t: Thresholds = DEFAULT_THRESHOLDS) -> bool:
    """Whether every class (of at least ``min_class_support`` held-out samples) the probe
    never predicts is ranked above chance by the model's score for it
    (``still_learning_z`` standard errors): the threshold hides a class the model is
    learning, so more steps may bring it out (a reason to climb, not a verdict)."""
    holdout = run.holdout
    if not isinstance(holdout, HoldoutEval) or not holdout.n:
        return False
    ranked = {item.get("class"): item.get("auc")
              for item in holdout.metrics.get("unpredicted_auc") or []
              if isinstance(item, dict)}
    never = [c for c in range(len(holdout.true_counts))
             if holdout.true_counts[c] >= t.min_class_support and holdout.pred_counts[c] == 0]
    zs = [_auc_z(ranked.get(c), holdout, c) for c in never]
    return bool(never) and all(z is not None and z >= t.still_learning_z for z in zs)


def _plateau(run: ProbeRun, stalled: Verdict, losses: Sequence[float],
             class_counts: Sequence[int], t: Thresholds) -> dict[str, Any] | None:
    """Evidence that a ``stalled`` probe sits on the plateau of the class prior: its loss
    (the median of the trend rule's last window) is within ``plateau_prior_tolerance`` of
    the loss of the best prediction that ignores the inputs (``judge.prior``), so the
    model has learned how common each class is and not yet the inputs. Many runs sit
    there for a while and then learn (an Embedding + Conv1D text model at lr 1e-3 for
    about 500 steps); the probe cannot tell how long, so the verdict is withheld. A model
    whose held-out scores are the same for every sample (ranking ROC-AUC exactly 0.5: its
    units dead or saturated) cannot leave it: None, the stall stands."""
    settings = run.probe.settings
    prior = prior_loss(settings.loss, class_counts, settings.class_weights,
                       settings.class_weight)
    holdout = run.holdout
    if prior is None or prior <= 0 or not losses or not isinstance(holdout, HoldoutEval):
        return None
    ranking = holdout.metrics.get("ranking_auc")
    if isinstance(ranking, (int, float)) and abs(ranking - 0.5) < 1e-12:
        return None  # one score for every sample: nothing left to learn from
    window = max(1, min(trend_window(len(losses), t), len(losses)))
    level = statistics.median(losses[-window:])
    if abs(level - prior) > t.plateau_prior_tolerance * prior:
        return None
    steps = len(losses)
    reason = (f"not judged at {steps} steps: the loss sits at {level:.3g}, the loss of "
              f"predicting the class shares for every sample ({prior:.3g}), with held-out "
              f"accuracy {holdout.accuracy:.1%} at chance: the model has learned the class "
              "prior and nothing of the inputs yet, a plateau a longer run may leave (too "
              "low a learning rate looks the same)"
              + (f"; probe --steps {4 * steps} or more to judge"
                 if steps >= run.probe.horizon else ""))
    return {"learning_verdict": "not_judged", "not_judged_because": "plateau",
            "withheld_verdict": stalled.outcome.value, "withheld_summary": stalled.summary,
            "plateau": {"loss": level, "prior_loss": prior, "window": window,
                        "steps": steps},
            "learning_verdict_reason": reason}


def across_rungs(run: ProbeRun, verdict: Verdict, names: Sequence[str],
                 t: Thresholds) -> dict[str, Any] | None:
    """The trend of a learning problem across the probe's rungs: a learning verdict is
    called only when the problem persists or grows from the previous rung to the last.

    A probe climbing a ladder of rungs (``Probe.rungs``) is evaluated at each. Its learning
    verdict (``verdict``, seen in the last evaluation) is withheld (``"learning_verdict":
    "not_judged"``) when only one rung was evaluated (``one_rung``: no trend yet), or when
    the problem shrank from the previous rung to the last by at least
    ``overcorrection_margin`` of its size (``shrinking``: the rare classes' excess share of
    the predictions, or the share of held-out samples in classes never predicted). Returns
    None for a probe without rungs (the one evaluation stands), the not-judged evidence, or
    ``{"rung_trend": ...}`` to add to the called verdict.
    """
    if len(run.probe.rungs) < 2:
        return None
    evals = [r for r in run.rungs if isinstance(r.holdout, HoldoutEval) and r.holdout.n]
    if not evals:
        return None
    last = evals[-1]
    outcome = verdict.outcome
    if len(evals) < 2:
        reason = (f"not judged at {last.step} steps (one rung; a learning verdict needs the "
                  f"trend of two): {verdict.summary}")
        return {"learning_verdict": "not_judged", "not_judged_because": "one_rung",
                "withheld_verdict": outcome.value, "withheld_summary": verdict.summary,
                "learning_verdict_reason": reason}
    prev = evals[-2]
    name = _namer(names, len(last.holdout.true_counts))
    size, shown = _problem_size(outcome, t)
    before, after = size(prev.holdout), size(last.holdout)
    trend = {"steps": [prev.step, last.step], "sizes": [before, after],
             "measure": _MEASURES[outcome]}
    what = _problem_words(outcome, last.holdout, name, t)
    seen = f"{shown(before)} at step {prev.step}, {shown(after)} at step {last.step}"
    if before > 0 and after <= before * (1 - t.overcorrection_margin):
        reason = (f"not judged at {last.step} steps: {what} is shrinking ({seen}): a longer "
                  f"run may outgrow it")
        trend["text"] = f"shrinking: {seen}"
        return {"learning_verdict": "not_judged", "not_judged_because": "shrinking",
                "withheld_verdict": outcome.value, "withheld_summary": verdict.summary,
                "learning_verdict_reason": reason, "rung_trend": trend}
    word = "growing" if after > before * (1 + t.overcorrection_margin) else "persisting"
    trend["text"] = f"{word} across rungs: {what}: {seen}"
    return {"rung_trend": trend}


_MEASURES = {
    Outcome.OVERCORRECTED: "rare_share_factor",
    Outcome.MINORITY_COLLAPSE: "unpredicted_share",
    Outcome.STALLED: "at_chance",
}


def _problem_size(outcome: Outcome, t: Thresholds) -> tuple[
        Callable[[HoldoutEval], float], Callable[[float], str]]:
    """How big a learning problem is in one evaluation, and how to say a size."""
    if outcome is Outcome.OVERCORRECTED:
        return _rare_share_factor, lambda v: _times(v) if math.isfinite(v) else "all"
    if outcome is Outcome.MINORITY_COLLAPSE:
        def unpredicted(h: HoldoutEval) -> float:
            never = [c for c, n in enumerate(h.true_counts)
                     if n >= t.min_class_support and h.pred_counts[c] == 0]
            return sum(h.true_counts[c] for c in never) / max(1, h.n)
        return unpredicted, lambda v: f"{v:.1%} of the held-out samples"

    def at_chance(h: HoldoutEval) -> float:
        chance = max(h.true_counts) / max(1, h.n)
        return 1.0 if h.accuracy <= chance + t.stall_chance_margin else 0.0
    return at_chance, lambda v: "at chance" if v else "above chance"


def _problem_words(outcome: Outcome, h: HoldoutEval, name: Callable[[int], str],
                   t: Thresholds) -> str:
    if outcome is Outcome.OVERCORRECTED:
        _common, rare = split_by_frequency(h.true_counts)
        return (f"the rare class{'es' if len(rare) != 1 else ''} "
                f"{_names(rare, name)} predicted beyond {'their' if len(rare) != 1 else 'its'}"
                " share")
    if outcome is Outcome.MINORITY_COLLAPSE:
        never = [c for c, n in enumerate(h.true_counts)
                 if n >= t.min_class_support and h.pred_counts[c] == 0]
        return f"class{'es' if len(never) != 1 else ''} {_names(never, name)} never predicted"
    return "held-out accuracy"


def _rare_share_factor(h: HoldoutEval) -> float:
    """The rare half's share of the predictions over its share of the held-out samples
    (``split_by_frequency``): 1 predicts the rare classes as often as they occur."""
    _common, rare = split_by_frequency(h.true_counts)
    total_true, total_pred = sum(h.true_counts), sum(h.pred_counts)
    rare_true = sum(h.true_counts[c] for c in rare)
    if not rare or not rare_true or not total_pred:
        return 0.0
    return (sum(h.pred_counts[c] for c in rare) / total_pred) / (rare_true / total_true)


def _with_holdout(run: ProbeRun, holdout: HoldoutEval) -> ProbeRun:
    from dataclasses import replace

    return replace(run, holdout=holdout)


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


def _predictions(run: ProbeRun, names: Sequence[str], t: Thresholds) -> Verdict | None:
    """The learning verdict the held-out predictions give (``overcorrected`` or
    ``minority_collapse``), a ``stable`` verdict carrying a borderline warning, or None."""
    holdout = run.holdout
    assert holdout is not None
    true, pred = holdout.true_counts, holdout.pred_counts
    k = len(true)
    name = _namer(names, k)
    never = [c for c in range(k) if true[c] >= t.min_class_support and pred[c] == 0]
    settings = run.probe.settings
    verdict = None
    if settings.class_weights is not None or is_focal(settings.class_weight):
        verdict = _overcorrection(holdout, never, name, t)
        if verdict is not None and verdict.outcome is not Outcome.STABLE:
            return verdict
    if never:
        return _collapse(holdout, never, name)
    return verdict  # None, or stable with a borderline warning


def _namer(names: Sequence[str], k: int) -> Callable[[int], str]:
    """A class index's name: the data set's, where it names all ``k`` classes, else the
    index itself."""
    return (lambda c: str(names[c])) if len(names) == k else str


def _collapse(holdout: HoldoutEval, never: list[int], name: Callable[[int], str]) -> Verdict:
    """``minority_collapse``: classes never predicted, each named with its role (the
    majority class, the most common of the held-out split, or a minority class)."""
    true, pred = holdout.true_counts, holdout.pred_counts
    majority = max(range(len(true)), key=lambda c: (true[c], -c))
    roles = [{"class": name(c), "role": "majority" if c == majority else "minority",
              "held_out": true[c]} for c in never]
    evidence = {"classes": [name(c) for c in never], "never_predicted": roles,
                "majority_class": name(majority), "true_counts": list(true),
                "pred_counts": list(pred), "holdout_accuracy": holdout.accuracy}
    if majority in never:
        predicted = [c for c in range(len(pred)) if pred[c] > 0]
        others = [c for c in never if c != majority]
        text = (f"the majority class {name(majority)} ({true[majority]} of {holdout.n} "
                f"held-out samples) is never predicted: the model predicts "
                f"{_names(predicted, name)} instead")
        if others:
            text += f"; minority class{'es' if len(others) > 1 else ''} {_names(others, name)} " \
                    "never predicted either"
        return _verdict(Outcome.MINORITY_COLLAPSE, evidence,
                        f"{text}; accuracy {holdout.accuracy:.1%}")
    shown = _names(never, name)
    return _verdict(
        Outcome.MINORITY_COLLAPSE, evidence,
        f"minority class{'es' if len(never) > 1 else ''} {shown} never predicted on the "
        f"held-out split ({sum(true[c] for c in never)} samples); accuracy "
        f"{holdout.accuracy:.1%}",
    )


def split_by_frequency(true_counts: Sequence[int]) -> tuple[list[int], list[int]]:
    """The classes present in ``true_counts``, split into the common and the rare half.

    Most common first (ties: lower index first); with an odd number of classes the middle
    one goes to the rare half, so two classes split one and one and three split one and two.
    """
    present = sorted((c for c in range(len(true_counts)) if true_counts[c] > 0),
                     key=lambda c: (-true_counts[c], c))
    half = len(present) // 2
    return present[:half], present[half:]


def _overcorrection(
    holdout: HoldoutEval, never: list[int], name: Callable[[int], str], t: Thresholds
) -> Verdict | None:
    """The class weighting pushed the predictions from the common classes to the rare ones.

    Three rules, the plainest first: the most common class is never predicted; the
    ranking of the halves is inverted; (three classes or more) the rare half gets
    ``overcorrection_factor`` times its share of the predictions. See ``thresholds``.
    """
    true, pred = holdout.true_counts, holdout.pred_counts
    common, rare = split_by_frequency(true)
    if not common or sum(pred) == 0:
        return None
    counts = {"true_counts": list(true), "pred_counts": list(pred),
              "holdout_accuracy": holdout.accuracy}
    majority = common[0]
    if majority in never:
        return _verdict(
            Outcome.OVERCORRECTED,
            {"rule": "common_never_predicted", "common_class": name(majority), **counts},
            f"class weights invert the class balance: the most common class {name(majority)} "
            f"({true[majority]} held-out samples) is never predicted",
        )
    # the rare class the weights favour most: the highest predicted-to-true ratio
    favoured = max(rare, key=lambda c: (pred[c] / true[c], -c))
    f = t.overcorrection_factor
    mean = statistics.fmean
    true_ratio = mean(true[c] for c in common) / mean(true[c] for c in rare)
    pred_common = mean(pred[c] for c in common)
    pred_ratio = mean(pred[c] for c in rare) / pred_common if pred_common else math.inf
    fire = f * (1 + t.overcorrection_margin)
    if true_ratio >= f and f <= pred_ratio < fire:
        return _borderline(
            {"rule": "inverted", "common_class": name(majority), "rare_class": name(favoured),
             "true_ratio": true_ratio, "pred_ratio": pred_ratio, **counts},
            f"{_half(rare, name, 'rare')} predicted {_times(pred_ratio)} as often as "
            f"{_half(common, name, 'common')} (overcorrected from {_times(fire)})")
    if true_ratio >= f and pred_ratio >= fire:
        return _verdict(
            Outcome.OVERCORRECTED,
            {"rule": "inverted", "common_class": name(majority), "rare_class": name(favoured),
             "true_ratio": true_ratio, "pred_ratio": pred_ratio, **counts},
            f"class weights invert the class balance: {_half(common, name, 'common')} "
            f"{'is' if len(common) == 1 else 'are'} {_times(true_ratio)} as common as "
            f"{_half(rare, name, 'rare')} but predicted {_times(pred_ratio)} less often",
        )
    rare_true = sum(true[c] for c in rare)
    if len(rare) < 2 or rare_true < t.min_class_support:
        return None
    share_true = rare_true / sum(true)
    share_pred = sum(pred[c] for c in rare) / sum(pred)
    if share_pred < f * share_true:
        return None
    if share_pred < fire * share_true:
        return _borderline(
            {"rule": "rare_overpredicted", "common_class": name(majority),
             "rare_class": name(favoured), "rare_share_true": share_true,
             "rare_share_pred": share_pred, **counts},
            f"the {len(rare)} rarest classes get {_times(share_pred / share_true)} their share "
            f"of the predictions (overcorrected from {_times(fire)})")
    starved = [c for c in never if c in common]
    summary = (
        f"class weights over-predict the rare classes: the {len(rare)} rarest hold "
        f"{share_true:.1%} of the held-out samples but get {share_pred:.1%} of the predictions "
        f"({_times(share_pred / share_true)}); class {name(favoured)} is predicted "
        f"{pred[favoured]} times for {true[favoured]} samples"
    )
    if starved:
        summary += f"; common class{'es' if len(starved) > 1 else ''} " \
                   f"{_names(starved, name)} never predicted"
    return _verdict(
        Outcome.OVERCORRECTED,
        {"rule": "rare_overpredicted", "common_class": name(majority),
         "rare_class": name(favoured), "rare_classes": len(rare), "rare_share_true": share_true,
         "rare_share_pred": share_pred, "never_predicted": [name(c) for c in never], **counts},
        summary,
    )


def _borderline(evidence: dict[str, Any], text: str) -> Verdict:
    """A ``stable`` verdict whose predictions are within the margin of ``overcorrected``
    (``overcorrection_margin``): the warning the classifier adds to a stable probe."""
    return _verdict(Outcome.STABLE, {"borderline_overcorrection": evidence},
                    f"borderline overcorrection: {text}")


def _half(classes: list[int], name: Callable[[int], str], which: str) -> str:
    """``0``, ``classes 0 and 1``, or ``the 20 most common classes`` / ``the 20 rarest``."""
    if len(classes) == 1:
        return name(classes[0])
    if len(classes) <= 3:
        return f"classes {', '.join(name(c) for c in classes[:-1])} and {name(classes[-1])}"
    return f"the {len(classes)} most common classes" if which == "common" else \
        f"the {len(classes)} rarest classes"


def _names(classes: list[int], name: Callable[[int], str], limit: int = 5) -> str:
    return ", ".join(name(c) for c in classes[:limit]) + (" ..." if len(classes) > limit else "")


def _times(ratio: float) -> str:
    """``2.5x``, ``12x``, ``inf x``."""
    if not math.isfinite(ratio):
        return "infinitely"
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _death(run: ProbeRun) -> Verdict:
    mem = run.memory
    step = run.steps_completed
    sig = signal_name(run.returncode)
    common = {"step": step, "signal": sig, "returncode": run.returncode,
              "peak_host_bytes": mem.peak_host_bytes, "budget_bytes": mem.budget_bytes,
              "enforcement": mem.enforcement}
    if run.exception and run.exception.get("phase"):  # died before training began
        common["phase"] = run.exception["phase"]
        if run.exception.get("weight_bytes"):
            common["weight_bytes"] = run.exception["weight_bytes"]
    if run.cluster and run.cluster.get("cause"):
        return _cluster_death(run, common)
    if run.termination is Termination.OVER_BUDGET:
        return _verdict(
            Outcome.OOM_HOST, {**common, "enforced_by": "watchdog"},
            f"ended by stabcheck's memory watchdog at {human_bytes(mem.peak_host_bytes)} of a "
            f"{human_bytes(mem.budget_bytes)} budget, {_when(run, step)}",
        )
    killed = run.returncode == -9
    if killed and (mem.oom_kills > 0 or mem.system_oom):
        source = "cgroup" if mem.oom_kills > 0 else "system"
        budget = f" of a {human_bytes(mem.budget_bytes)} budget" if mem.budget_bytes else ""
        via = f" ({mem.enforcement})" if mem.enforcement else ""
        return _verdict(
            Outcome.OOM_HOST,
            {**common, "enforced_by": "kernel", "oom_kills": mem.oom_kills,
             "oom_evidence": source},
            f"killed by the kernel OOM killer at {human_bytes(mem.peak_host_bytes)}{budget}"
            f"{via}, {_when(run, step)}",
        )
    if is_oom_message(run.stderr_tail):
        return _verdict(
            Outcome.OOM_GPU if "GPU" in run.stderr_tail or "CUDA" in run.stderr_tail
            else Outcome.OOM_HOST,
            {**common, "stderr_tail": _tail(run.stderr_tail)},
            f"the allocator ran out of memory and the process aborted ({sig}) at step {step}",
        )
    return _verdict(
        Outcome.CRASHED, {**common, "stderr_tail": _tail(run.stderr_tail)},
        f"worker died with {sig} {_when(run, step)}"
        + (" with no sign of memory exhaustion" if killed else ""),
    )


def _cluster_death(run: ProbeRun, common: dict[str, Any]) -> Verdict:
    """A probe whose Ray actor the cluster ended: by its memory monitor or a node's OOM
    killer (``OutOfMemoryError``), with its node, or for another reason (crashed)."""
    cluster = run.cluster or {}
    step = cluster.get("last_step") or run.steps_completed
    node = " ".join(filter(None, (cluster.get("node_ip"),
                                  f"({cluster['node_id'][:8]})" if cluster.get("node_id")
                                  else None))) or "an unknown node"
    evidence = {**common, "step": step, "signal": None, "cluster": cluster}
    if cluster.get("oom"):
        used, total = cluster.get("node_memory_used_bytes"), cluster.get("node_memory_total_bytes")
        at = f" ({human_bytes(used)} of {human_bytes(total)} in use)" if used and total else ""
        return _verdict(Outcome.OOM_HOST, {**evidence, "enforced_by": "ray"},
                        f"killed by Ray for memory: node {node} ran out{at}, "
                        f"{_at_step(step)}")
    error = cluster.get("error") or "no error"
    if cluster.get("node_lost"):
        return _verdict(Outcome.CRASHED, evidence,
                        f"its Ray node {node} was lost ({error}) {_at_step(step)}")
    if cluster.get("node_lost") is None:
        return _verdict(Outcome.CRASHED, evidence,
                        f"its Ray worker on node {node} became unreachable ({error}) "
                        f"{_at_step(step)}")
    return _verdict(Outcome.CRASHED, evidence,
                    f"its Ray worker (pid {cluster.get('pid')} on node {node}) died ({error}) "
                    f"{_at_step(step)}")


def _exception(run: ProbeRun) -> Verdict:
    exc = run.exception or {}
    step = exc.get("step") or run.steps_completed
    evidence = {"step": step, "exception_type": exc.get("etype"), "message": exc.get("message"),
                "phase": exc.get("phase")}
    if exc.get("oom"):
        on_gpu = exc.get("oom_device") == "GPU" or "GPU" in (exc.get("message") or "")
        outcome = Outcome.OOM_GPU if on_gpu else Outcome.OOM_HOST
        return _verdict(outcome, evidence,
                        f"{exc.get('etype')} {_when(run, step)}: the allocator ran out of "
                        "memory")
    message = (exc.get("message") or "").strip().splitlines()
    doing = "building the model" if exc.get("phase") == "build" else "training"
    return _verdict(Outcome.ERROR, evidence,
                    f"{exc.get('etype')} while {doing}: {message[-1][:200] if message else ''}")


def _verdict(outcome: Outcome, evidence: dict[str, Any], summary: str) -> Verdict:
    return Verdict(outcome, evidence, summary)


def _at_step(step: int) -> str:
    return f"at step {step}" if step else "during the first step"


def _when(run: ProbeRun, step: int) -> str:
    """When a worker died: at a step, while it started, or while it built the model."""
    exc = run.exception or {}
    if exc.get("phase") == "startup":
        return f"{_at_step(step)} (while the worker started)"
    if exc.get("phase") == "build":
        weights = exc.get("weight_bytes")
        need = f": its weights alone need {human_bytes(weights)}" if weights else ""
        again = (" (measured once for all probes: building does not depend on their "
                 "settings)") if exc.get("measured_once") else ""
        return f"while building the model{need}{again}"
    if exc.get("phase") == "optimizer":
        return "while allocating the optimizer's state, before the first step"
    return _at_step(step)


def _last_finite_loss(steps: Sequence[StepRecord]) -> float | None:
    for record in reversed(steps):
        if math.isfinite(record.loss):
            return record.loss
    return None


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
