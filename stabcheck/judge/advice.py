"""The sentences of the failures' causes that are not numerical, and the notes.

``stabcheck.judge.summary`` builds the run's one judgement from these: what memory
exhaustion says and which batch size fits (``memory_statement``), why a worker died
(``why_crashed``), what fixes an overcorrection or a minority collapse
(``overcorrection_fix``, ``minority_fix``), what the stable probes still ask for
(``warning_advice``), and the outcome counts of the HTML header (``summary_counts``). The
numerical causes are ``stabcheck.judge.explain``'s. Pure: plain sentences; the views add
the markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from stabcheck.judge.gridview import (
    RAN,
    ProbeGrid,
    is_stable,
    settings_key,
    unique,
    weighting_ratio,
)
from stabcheck.protocol.vocabulary import base_strategy, stress_factor
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import fmt_number, join, plural
from stabcheck.units import human_bytes

__all__ = [
    "COUNT_WORDS", "OVERCORRECTED_WHY", "is_remedy_probe", "memory_failures", "memory_statement",
    "minority_fix", "overcorrection_fix", "split_collapses", "summary_counts", "warning_advice",
    "why_crashed",
]

# The words of the count line, in its order.
COUNT_WORDS: tuple[tuple[Category, str], ...] = (
    (Category.OK, "stable"),
    (Category.NUMERICAL, "numerical"),
    (Category.MEMORY, "memory"),
    (Category.CRASH, "crash"),
    (Category.LEARNING, "learning"),
    (Category.ERROR, "error"),
)


def summary_counts(results: Iterable[ProbeResult]) -> dict[Category, int]:
    """How many results fall in each category; every category is present, zero or not."""
    counts = {category: 0 for category in Category}
    for result in results:
        counts[result.verdict.category] += 1
    return counts


def is_remedy_probe(result: ProbeResult) -> bool:
    """A memory ladder's remedy measurement (gradient accumulation, mixed precision), whose
    batch size is not one the user's float32 training would run at."""
    settings = result.probe.settings
    return settings.accumulation_steps != 1 or settings.dtype_policy is not None


def memory_failures(report: RunReport) -> list[ProbeResult]:
    """The user's probes that exhausted memory: not a remedy measurement
    (``is_remedy_probe``), not a memory ladder's rung or check (findings of its search,
    shown in the memory section)."""
    return [r for r in report.results if not is_remedy_probe(r)
            and r.verdict.category is Category.MEMORY and not r.is_memory_search]


def memory_statement(report: RunReport) -> tuple[str, str | None] | None:
    """Which of the user's batch sizes exhausted memory, and the largest that fits (None
    where it is the model itself that does not fit); None without memory failures. The
    largest that fits is the memory ladder's forecast where a real run verified it, else
    the largest batch size that ran; remedy measurements count for neither."""
    results = [r for r in report.results if not is_remedy_probe(r)]
    failures = memory_failures(report)
    if not failures:
        return None
    building = [r for r in failures if r.verdict.evidence.get("phase") == "build"]
    if len(building) == len(failures):  # the model itself, before any batch
        weights = building[0].verdict.evidence.get("weight_bytes")
        need = f" (its weights alone need {human_bytes(weights)})" if weights else ""
        budget = building[0].verdict.evidence.get("budget_bytes")
        within = f"the {human_bytes(budget)} budget" if budget else "the memory there is"
        return (f"the model does not fit {within} even before training{need}: no batch "
                "size helps; give it a larger --memory-budget, or a smaller model or dtype", None)
    exhausted = sorted(set(r.probe.settings.batch_size for r in failures))
    kinds = {r.verdict.outcome for r in failures}
    where = (
        "host memory"
        if kinds == {Outcome.OOM_HOST}
        else "GPU memory"
        if kinds == {Outcome.OOM_GPU}
        else "memory (host and GPU)"
    )
    sizes = join([str(b) for b in exhausted])
    text = f"batch size{'s' if len(exhausted) > 1 else ''} {sizes} exhausted {where}"
    memory = report.memory
    verified = memory.verified if memory is not None else None
    ran = [r.probe.settings.batch_size for r in results if r.verdict.category in RAN]
    if memory is not None and memory.forecast_batch is not None and verified is not None \
            and verified.fits:
        fits = (f"the largest batch size that fits the budget is {memory.forecast_batch} "
                f"(forecast, verified by a real run at {human_bytes(verified.peak_bytes)})")
    elif ran:
        fits = f"the largest batch size that ran was {max(ran)}"
    else:
        budget = "--gpu-memory-budget" if kinds == {Outcome.OOM_GPU} else "--memory-budget"
        fits = f"no batch size ran: try smaller batch sizes or a larger {budget}"
    return text, fits


def why_crashed(result: ProbeResult) -> str:
    evidence = result.verdict.evidence
    for key in ("signal", "signal_name"):
        if isinstance(evidence.get(key), str) and evidence[key]:
            return evidence[key]
    code = evidence.get("returncode", result.run.returncode)
    return f"exit code {code}" if code is not None else "no exit status"


def _never_predicted_roles(result: ProbeResult) -> set[str]:
    """``{"majority"}``, ``{"minority"}`` or both: who a collapse never predicts (old
    results without the roles count as minority)."""
    roles = result.verdict.evidence.get("never_predicted")
    if not isinstance(roles, list) or not roles:
        return {"minority"}
    return {str(r.get("role")) for r in roles if isinstance(r, dict)} or {"minority"}


def split_collapses(
    results: Sequence[ProbeResult],
) -> tuple[list[ProbeResult], list[ProbeResult]]:
    """The collapsed probes that never predict a minority class, and those that never
    predict the majority (a different failure: not a class weighting it lacks)."""
    collapsed = [r for r in results if r.verdict.outcome is Outcome.MINORITY_COLLAPSE]
    majority = [r for r in collapsed if "majority" in _never_predicted_roles(r)]
    return [r for r in collapsed if r not in majority], majority


def minority_fix(minority: Sequence[ProbeResult]) -> str:
    """What to do about probes that never predict a minority class."""
    if all(r.probe.settings.class_weights is None for r in minority):
        return "weight the classes (balanced or sqrt)"
    return "weight the classes more strongly (balanced), or probe more --steps"


# What an overcorrection is, for the advice and the causes alike.
OVERCORRECTED_WHY = ("the rare classes are predicted far more often than they occur, at the "
                     "common classes' expense")


def _and(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _at_least_balanced(strategy: str) -> bool:
    """Weights at least as strong as ``balanced``'s (balanced, xN, normalized on either), so
    that ``sqrt`` and ``effective`` are surely milder."""
    base = base_strategy(strategy)
    return base == "balanced" or stress_factor(base) is not None


def overcorrection_fix(report: RunReport, over: Sequence[ProbeResult]) -> str:
    """What to do about probes whose class weights overcorrected, from what the grid shows.

    A measurably milder weighting of the grid (``ProbeGrid.milder``) that was stable at the
    same learning rate, clip and batch size is named as the fix; otherwise milder
    strategies not yet probed are suggested (``sqrt``, ``effective``, only where the
    overcorrected weights are at least ``balanced``'s, which they are surely milder than),
    and a milder weighting that did not fare better is said to have failed too.
    """
    grid = ProbeGrid(report)
    better: list[str] = []
    worse: list[str] = []
    for result in over:
        cw, *rest = settings_key(result)
        for other in grid.milder(cw):
            twin = grid.get(other, *rest)
            if twin is None:
                continue
            (better if is_stable(twin) else worse).append(other)
    better = unique(better)
    if better:
        return (f"milder weights: {_and(better)} {'was' if len(better) == 1 else 'were'} "
                "stable, not overcorrected, at the same settings")
    strategies = unique(r.probe.settings.class_weight for r in over)
    worse = [s for s in unique(worse) if s not in strategies]
    also = (f" (the milder {_and(worse)} did not fare better at the same settings)"
            if worse else "")
    probed = {r.probe.settings.class_weight for r in report.results}
    untried = [s for s in ("sqrt", "effective") if s not in probed]
    if untried and all(_at_least_balanced(s) for s in strategies):
        return (f"probe a milder weighting: {' or '.join(untried)} "
                f"(--class-weight {','.join(untried)}){also}")
    ratios = {s: weighting_ratio(report, s) for s in strategies}
    known = [s for s in strategies if ratios[s] is not None]
    mildest = min(known, key=lambda s: ratios[s]) if known else strategies[0]
    below = f" below 1:{fmt_number(ratios[mildest])}" if ratios[mildest] is not None else ""
    return f"probe weights milder than {mildest}'s (a largest-to-smallest ratio{below}){also}"


def warning_advice(results: Sequence[ProbeResult]) -> list[str]:
    """Stable probes with a warning: a loss spike they recovered from (with the calmer
    settings of the grid beside them), a borderline overcorrection, held-out predictions
    not judged (BatchNormalization statistics not warmed up), too few steps."""
    stable = [r for r in results if r.verdict.outcome is Outcome.STABLE]
    advice = []
    spiky = [r for r in stable if "loss_spike" in r.verdict.evidence]
    calm = [r for r in stable if not r.verdict.evidence.get("warnings")]
    for result in spiky[:3]:
        warning = next((w for w in result.verdict.evidence.get("warnings", [])
                        if w.startswith("loss spiked")), "")
        text = f"{result.probe.id} was stable, but its {warning or 'loss spiked'}"
        settings = result.probe.settings
        twins = [r for r in calm if r.probe.settings.class_weight == settings.class_weight
                 and r.probe.settings.batch_size == settings.batch_size]
        if twins:
            text += (f": a calmer setting trained without a spike ({twins[0].probe.id}); "
                     "prefer it if the long run must not spike")
        else:
            text += ": it is not a divergence, but a longer run may spike again"
        advice.append(text)
    if len(spiky) > 3:
        advice.append(f"{plural(len(spiky) - 3, 'more stable probe')} spiked and recovered: "
                      "see their warnings in the JSON")
    # (a setting left at its first rung is too short by design: the contenders train on)
    early = [r for r in stable if r.verdict.evidence.get("not_judged_because") == "still_learning"
             and (r.verdict.evidence.get("schedule") or {}).get("contender") is not False]
    if early:
        steps = max(int(r.verdict.evidence["still_learning"]["steps_to_judge"]) for r in early)
        aucs = [item["auc"] for r in early
                for item in r.verdict.evidence["still_learning"]["classes"]]
        classes = unique(item["class"] for r in early
                         for item in r.verdict.evidence["still_learning"]["classes"])
        span = f"{min(aucs):.2f}" if len(aucs) == 1 else f"{min(aucs):.2f}-{max(aucs):.2f}"
        which = f"class{'es' if len(classes) > 1 else ''} {join(classes)}"
        shown = join(r.probe.id for r in early[:3]) + (", ..." if len(early) > 3 else "")
        advice.append(
            f"{plural(len(early), 'probe')} ({shown}) never predicted {which} yet, but "
            f"already rank{'s' if len(early) == 1 else ''} it above the others (ROC-AUC "
            f"{span}) while the loss still falls: too short to tell whether the long run "
            f"will predict it; probe --steps {steps} or more to judge"
        )
    not_judged = [r for r in stable
                  if r.verdict.evidence.get("not_judged_because") == "bn_warmup"]
    if not_judged:
        warm = not_judged[0].verdict.evidence.get("bn_warmup") or {}
        residual, momentum = warm.get("residual"), warm.get("momentum")
        needed = warm.get("steps_needed")
        text = (f"{plural(len(not_judged), 'probe')} of a BatchNormalization model "
                f"{'was' if len(not_judged) == 1 else 'were'} not judged on "
                "the held-out predictions: not enough steps to judge")
        if isinstance(residual, (int, float)) and isinstance(needed, int):
            text += (f" (the moving statistics still hold {residual:.0%} of their initial "
                     f"values after {warm.get('steps')} steps; about {needed} steps warm them "
                     f"up at momentum {momentum:g}): probe --steps {needed} to judge them")
        advice.append(text)
    borderline = [r for r in stable if "borderline_overcorrection" in r.verdict.evidence]
    if borderline:
        advice.append(
            f"class_weight={join(unique(r.probe.settings.class_weight for r in borderline))} "
            f"is close to overcorrecting ({plural(len(borderline), 'probe')} within the margin "
            "of the rule): watch the rare classes' precision in the long run"
        )
    short = [r for r in stable
             if (r.verdict.evidence.get("loss_trend") or {}).get("trend") == "too_short"]
    if short:
        advice.append(f"{plural(len(short), 'probe')} trained too few steps to judge the loss "
                      "trend: raise --steps")
    return advice

