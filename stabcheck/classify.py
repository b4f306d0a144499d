"""From what a probe did to what it means: ``ProbeRun`` -> ``Verdict`` with evidence.

Pure functions, no I/O. The order of the rules is the order of certainty: the runner's
hard facts first (an error, a timeout, a death and its memory evidence), then the
worker's non-finite report, then the shape of the loss and gradient curves, then the
held-out predictions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from stabcheck.oom import is_oom_message
from stabcheck.results import Outcome, ProbeRun, StepRecord, Termination, Verdict, signal_name
from stabcheck.thresholds import DEFAULT_THRESHOLDS, Thresholds
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
    verdict = _classify(run, class_names, thresholds)
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


def _classify(run: ProbeRun, class_names: Sequence[str], thresholds: Thresholds) -> Verdict:
    term = run.termination
    last = run.steps_completed
    if term is Termination.TIMEOUT:
        return _verdict(Outcome.TIMEOUT, {"timeout_s": round(run.duration_s, 1), "step": last},
                        f"no progress report for {run.duration_s:.0f} s: ended at step {last}"
                        f"{_phase(run)}")
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
    return _curves_and_predictions(run, class_names, thresholds)


def smoothed_losses(losses: Sequence[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average (as Lightning's and fastai's LR finders)."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def _curves_and_predictions(
    run: ProbeRun, class_names: Sequence[str], t: Thresholds
) -> Verdict:
    losses = [s.loss for s in run.steps]
    norms = [s.grad_norm for s in run.steps]
    smooth = smoothed_losses(losses, t.ema_beta)
    best, first_over = math.inf, None
    for step, value in enumerate(smooth, start=1):
        over = value > t.divergence_factor * best
        first_over = (first_over or step) if over else None
        if over and step > t.warmup_steps:
            # Decided after the warm-up; reported from the step the blow-up began.
            start = first_over
            peak = max(losses[start - 1: step])
            return _verdict(
                Outcome.DIVERGED,
                {"step": start, "decided_at_step": step, "smoothed_loss": value,
                 "best_smoothed_loss": best, "factor": value / best, "peak_loss": peak},
                f"loss diverged from step {start}: it reached {peak:.3g} and its smoothed "
                f"value is {value / best:.3g}x its best {best:.3g}",
            )
        best = min(best, value)
    if len(norms) > t.early_window:
        early = statistics.median(norms[: t.early_window])
        for step, norm in enumerate(norms, start=1):
            if step > t.early_window and early > 0 and norm >= t.explosion_ratio * early:
                return _verdict(
                    Outcome.EXPLODING_GRADIENTS,
                    {"step": step, "grad_norm": norm, "early_median": early,
                     "ratio": norm / early},
                    f"gradient norm {norm:.3g} at step {step} is {norm / early:.0f}x its early "
                    f"median {early:.3g}",
                )
    holdout = run.holdout
    if smooth and holdout is not None and holdout.n:
        change = abs(smooth[-1] - smooth[0]) / max(abs(smooth[0]), 1e-12)
        chance = max(holdout.true_counts) / holdout.n
        if change < t.stall_rel_tolerance and holdout.accuracy <= chance + t.stall_chance_margin:
            return _verdict(
                Outcome.STALLED,
                {"relative_loss_change": change, "holdout_accuracy": holdout.accuracy,
                 "chance_accuracy": chance},
                f"loss moved {change:.1%} in {len(losses)} steps; held-out accuracy "
                f"{holdout.accuracy:.1%} is at chance ({chance:.1%})",
            )
        verdict = _predictions(run, class_names, t)
        if verdict is not None:
            return verdict
    evidence: dict[str, Any] = {"final_loss": smooth[-1] if smooth else None}
    summary = f"trained {len(losses)} steps, smoothed loss {smooth[-1]:.3g}" if smooth else ""
    if holdout is not None and holdout.n:
        evidence["holdout_accuracy"] = holdout.accuracy
        summary += f", held-out accuracy {holdout.accuracy:.1%}"
    return _verdict(Outcome.STABLE, evidence, summary)


def _predictions(run: ProbeRun, names: Sequence[str], t: Thresholds) -> Verdict | None:
    holdout = run.holdout
    assert holdout is not None
    true, pred = holdout.true_counts, holdout.pred_counts
    k = len(true)
    name = (lambda c: names[c]) if len(names) == k else str
    never = [c for c in range(k) if true[c] >= t.min_class_support and pred[c] == 0]
    majority = max(range(k), key=lambda c: true[c])
    if never and majority in never and run.probe.settings.class_weights is not None:
        return _verdict(
            Outcome.OVERCORRECTED,
            {"common_class": name(majority), "true_counts": list(true),
             "pred_counts": list(pred), "holdout_accuracy": holdout.accuracy},
            f"class weights invert the class balance: the most common class {name(majority)} "
            f"({true[majority]} held-out samples) is never predicted",
        )
    if never:
        shown = ", ".join(name(c) for c in never[:5]) + (" ..." if len(never) > 5 else "")
        return _verdict(
            Outcome.MINORITY_COLLAPSE,
            {"classes": [name(c) for c in never], "true_counts": list(true),
             "pred_counts": list(pred), "holdout_accuracy": holdout.accuracy},
            f"class{'es' if len(never) > 1 else ''} {shown} never predicted on the held-out "
            f"split ({sum(true[c] for c in never)} samples); accuracy {holdout.accuracy:.1%}",
        )
    f = t.overcorrection_factor
    inverted = [
        (a, b) for a in range(k) for b in range(k)
        if true[a] >= f * true[b] > 0 and pred[b] >= f * pred[a] > 0
    ]
    if inverted:
        a, b = max(inverted, key=lambda ab: true[ab[0]] / true[ab[1]])
        return _verdict(
            Outcome.OVERCORRECTED,
            {"common_class": name(a), "rare_class": name(b), "true_counts": list(true),
             "pred_counts": list(pred)},
            f"class weights invert the class balance: {name(a)} is {true[a] / true[b]:.0f}x "
            f"as common as {name(b)} but predicted {pred[b] / pred[a]:.0f}x less often",
        )
    return None


def _death(run: ProbeRun) -> Verdict:
    mem = run.memory
    step = run.steps_completed
    sig = signal_name(run.returncode)
    common = {"step": step, "signal": sig, "returncode": run.returncode,
              "peak_host_bytes": mem.peak_host_bytes, "budget_bytes": mem.budget_bytes,
              "enforcement": mem.enforcement}
    if run.termination is Termination.OVER_BUDGET:
        return _verdict(
            Outcome.OOM_HOST, {**common, "enforced_by": "watchdog"},
            f"ended by stabcheck's memory watchdog at {human_bytes(mem.peak_host_bytes)} of a "
            f"{human_bytes(mem.budget_bytes)} budget, {_at_step(step)}{_phase(run)}",
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
            f"{via}, {_at_step(step)}{_phase(run)}",
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
        f"worker died with {sig} {_at_step(step)}{_phase(run)}"
        + (" with no sign of memory exhaustion" if killed else ""),
    )


def _exception(run: ProbeRun) -> Verdict:
    exc = run.exception or {}
    step = exc.get("step") or run.steps_completed
    evidence = {"step": step, "exception_type": exc.get("etype"), "message": exc.get("message"),
                "phase": exc.get("phase")}
    if exc.get("oom"):
        outcome = Outcome.OOM_GPU if "GPU" in (exc.get("message") or "") else Outcome.OOM_HOST
        return _verdict(outcome, evidence,
                        f"{exc.get('etype')} at step {step}: the allocator ran out of memory")
    message = (exc.get("message") or "").strip().splitlines()
    doing = "building the model" if exc.get("phase") == "build" else "training"
    return _verdict(Outcome.ERROR, evidence,
                    f"{exc.get('etype')} while {doing}: {message[-1][:200] if message else ''}")


def _verdict(outcome: Outcome, evidence: dict[str, Any], summary: str) -> Verdict:
    return Verdict(outcome, evidence, summary)


def _at_step(step: int) -> str:
    return f"at step {step}" if step else "during the first step"


def _phase(run: ProbeRun) -> str:
    if run.exception and run.exception.get("phase") == "startup":
        return " (while the worker started)"
    return ""


def _last_finite_loss(steps: Sequence[StepRecord]) -> float | None:
    for record in reversed(steps):
        if math.isfinite(record.loss):
            return record.loss
    return None


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
