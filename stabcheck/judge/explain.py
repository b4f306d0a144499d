"""Numerical failures explained: where each happened, why, and what the grid shows fixes it.

Each failure is judged against its twins in the grid (``gridview.ProbeGrid``): the same
learning rate, clip and batch size with milder class weights. If one of them trained, the
class weights are the cause; if the unweighted twin failed too, or the failing strategy
has no weights itself, the learning rate is; otherwise the grid cannot tell. The fixes
are only what the grid itself shows to work. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stabcheck.judge.gridview import (
    ProbeGrid,
    finished_training,
    is_numerical,
    is_stable,
    settings_key,
    unique,
)
from stabcheck.protocol.vocabulary import is_remedy
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import fmt_lr, fmt_number, join

__all__ = ["NumericalCause", "numerical_causes", "where_it_failed"]


@dataclass(frozen=True)
class NumericalCause:
    """The numerical failures one cause explains (``kind``: the learning rate ``lr``, the
    class ``weights``, or ``unknown``), and the sentences that say where, why and what
    fixes it (``stabcheck.judge.summary`` gives them their headline)."""

    kind: str
    failures: tuple[ProbeResult, ...]
    details: tuple[str, ...]


def _lrs(values: Iterable[float]) -> str:
    return ", ".join(fmt_lr(v) for v in sorted(set(values)))


def _names_and(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _was(names: Sequence[str]) -> str:
    return "was" if len(names) == 1 else "were"


def where_it_failed(result: ProbeResult) -> str:
    """Where a numerical failure happened: the step, and the variable or operation.

    ``"NaN at step 8 in the loss, first produced by the Log op sgd/Log"``,
    ``"the loss diverged from step 2 (it reached 159)"``,
    ``"the gradient norm reached 2,221x its early median at step 18"``.
    """
    evidence = result.verdict.evidence
    step = evidence.get("step")
    at = f" at step {step}" if isinstance(step, int) and step > 0 else ""
    outcome = result.verdict.outcome
    if outcome is Outcome.NON_FINITE:
        value = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}.get(
            str(evidence.get("value")), "a non-finite value")
        where, variable = evidence.get("where"), evidence.get("variable")
        place = (f" in the {variable} {where}" if variable and where
                 else f" in the {where}" if where else "")
        text = f"{value}{at}{place}"
        found = evidence.get("check_numerics")
        if isinstance(found, dict) and found.get("operation"):
            text += f", first produced by the {found.get('op_type', '')} op {found['operation']}"
        return text
    if outcome is Outcome.DIVERGED:
        peak = evidence.get("peak_loss")
        reached = f" (it reached {peak:.3g})" if isinstance(peak, (int, float)) else ""
        return f"the loss diverged{at.replace(' at ', ' from ')}{reached}"
    if outcome is Outcome.EXPLODING_GRADIENTS:
        ratio = evidence.get("ratio")
        times = (f"{_times(ratio)}x its early median" if isinstance(ratio, (int, float))
                 else "orders of magnitude above its early median")
        return f"the gradient norm reached {times}{at}"
    return result.verdict.summary


def _times(ratio: float) -> str:
    """A ratio for a sentence: ``12``, ``2,221``, ``1e+09``."""
    return f"{ratio:.0e}" if ratio >= 1e5 else fmt_number(ratio)


def _pull(failures: Sequence[ProbeResult], under: bool = False) -> str:
    """The largest per-class gradient share among ``failures``, as a clause ("" if none)."""
    best: tuple[float, ProbeResult, dict[str, Any]] | None = None
    for result in failures:
        shares = result.verdict.evidence.get("class_gradients")
        if isinstance(shares, dict) and isinstance(shares.get("ratio"), (int, float)):
            if best is None or shares["ratio"] > best[0]:
                best = (shares["ratio"], result, shares)
    if best is None:
        return ""
    ratio, result, shares = best
    prefix = f"under {result.probe.settings.class_weight} " if under else ""
    return (f"{prefix}class {shares['rarest']} pulls {_times(ratio)}x as hard as class "
            f"{shares['most_common']} (gradient norm at step {shares['step']})")


def _large_pull(failures: Sequence[ProbeResult], ratio: float = 10.0) -> bool:
    return any(
        isinstance(s := r.verdict.evidence.get("class_gradients"), dict)
        and isinstance(s.get("ratio"), (int, float)) and s["ratio"] >= ratio
        for r in failures
    )


def _cause(grid: ProbeGrid, failure: ProbeResult) -> tuple[str, list[str]]:
    """Why a probe failed numerically, judged by its twins (the same learning rate, clip
    and batch size) with milder class weights.

    Returns ``("weights", [milder strategies that trained there])``; ``("lr", [unweighted
    strategies that failed there too])`` (``[]`` when the failing strategy itself has no
    class weighting, e.g. ``none``); or ``("unknown", [milder strategies that failed there
    too])`` when no twin tells the two apart.
    """
    cw, lr, clip, bs = settings_key(failure)
    if grid.unweighted(cw):
        return "lr", []
    milder = grid.milder(cw)
    trained = [o for o in milder if finished_training(grid.get(o, lr, clip, bs))]
    if trained:
        return "weights", trained
    failed = [o for o in milder if is_numerical(grid.get(o, lr, clip, bs))]
    unweighted = [o for o in failed if grid.unweighted(o)]
    if unweighted:
        return "lr", unweighted
    return "unknown", failed


def _clip_fixes(grid: ProbeGrid, failures: Sequence[ProbeResult]) -> tuple[list[str], list[str]]:
    """(fixes, notes): the clips that were stable where ``failures`` failed; else what the
    clipped twins did instead (failed too, or trained with a learning problem)."""
    rescued: dict[str, list[float]] = {}
    other_fate: dict[tuple[str, str], list[float]] = {}
    for failure in failures:
        cw, lr, clip, bs = settings_key(failure)
        for other in grid.clips:
            twin = grid.get(cw, lr, other, bs)
            if other in (clip, "none") or twin is None:
                continue
            if is_stable(twin):
                rescued.setdefault(other, []).append(lr)
            else:
                fate = ("did not rescue lr {}" if is_numerical(twin) else
                        f"trained at lr {{}} but {twin.verdict.outcome.value.replace('_', ' ')}")
                other_fate.setdefault((other, fate), []).append(lr)
    fixes = [f"clipping: clip={clip} was stable at lr {_lrs(at)}" for clip, at in rescued.items()]
    notes = [] if rescued else [
        f"clip={clip} " + fate.format(_lrs(at)) for (clip, fate), at in other_fate.items()
    ]
    return fixes, notes


def _lower_lr(grid: ProbeGrid, failures: Sequence[ProbeResult]) -> ProbeResult | None:
    """The stable probe of the same strategy at the largest learning rate below the
    failures (unclipped preferred at the same rate)."""
    cw = settings_key(failures[0])[0]
    lowest = min(settings_key(f)[1] for f in failures)
    lower = [r for r in grid.results if settings_key(r)[0] == cw and settings_key(r)[1] < lowest
             and is_stable(r)]
    if not lower:
        return None
    return max(lower, key=lambda r: (r.probe.settings.learning_rate,
                                     r.probe.settings.clip == "none"))


def _lr_and_clip(result: ProbeResult) -> str:
    clip = result.probe.settings.clip
    return f"lr {fmt_lr(result.probe.settings.learning_rate)}" + (
        f" with clip={clip}" if clip != "none" else "")


def _lower_lr_fix(grid: ProbeGrid, failures: Sequence[ProbeResult]) -> str | None:
    """The largest learning rate below the failures at which the strategy was stable."""
    lower = _lower_lr(grid, failures)
    if lower is None:
        return None
    return f"a lower learning rate: {lower.probe.settings.class_weight} was stable at " \
           f"{_lr_and_clip(lower)}"


def _remedy_fix(grid: ProbeGrid, failures: Sequence[ProbeResult]) -> str | None:
    """``normalized``/``focal`` probes that were stable where ``failures`` failed."""
    cw = settings_key(failures[0])[0]
    found: dict[str, list[float]] = {}
    for failure in failures:
        _, lr, clip, bs = settings_key(failure)
        for other in grid.strategies:
            if is_remedy(other) and other != cw and is_stable(grid.get(other, lr, clip, bs)):
                found.setdefault(other, []).append(lr)
    if not found:
        return None
    names = list(found)
    at = _lrs(lr for lrs in found.values() for lr in lrs)
    return f"{_names_and(names)} {_was(names)} stable at lr {at}, where {cw} failed"


def _milder_fix(grid: ProbeGrid, failures: Sequence[ProbeResult]) -> str | None:
    cw = settings_key(failures[0])[0]
    stable = [o for o in grid.milder(cw)
              if any(is_stable(grid.get(o, *settings_key(f)[1:])) for f in failures)]
    if not stable:
        return None
    return (f"milder weights: {_names_and(stable)} {_was(stable)} stable at the same learning "
            "rate, clip and batch size")


def _first_failure(failures: Sequence[ProbeResult]) -> ProbeResult:
    """The failure at the smallest learning rate (the edge of the stable region)."""
    return min(failures, key=lambda r: r.probe.settings.learning_rate)


def _fix_sentence(fixes: Sequence[str], notes: Sequence[str], remedies_probed: bool) -> str:
    """``Fix: A; or B. Not a fix: C.``, or what to probe when the grid holds no fix."""
    not_a_fix = f" Not a fix: {'; '.join(notes)}." if notes else ""
    if fixes:
        return "Fix: " + "; or ".join(fixes) + "." + not_a_fix
    text = "Fix: nothing in this grid rescued it: probe lower learning rates (--lr) and a clip " \
           "(--clip global_norm=1.0)"
    if not remedies_probed:
        text += ", or the normalized and focal strategies (--class-weight normalized,focal)"
    return text + "." + not_a_fix


def _lr_bullet(grid: ProbeGrid, failures: Sequence[ProbeResult], regression: bool = False
               ) -> NumericalCause:
    """Where and what fixes the failures that happened whatever the class weighting (for a
    regression target, which has no class weights: the failures at each learning rate)."""
    strategies = unique(r.probe.settings.class_weight for r in failures)
    first = _first_failure(failures)
    details = [f"Where: {first.probe.id}: {where_it_failed(first)}."]
    pull = None if regression else _pull(failures, under=True)
    if pull and _large_pull(failures, 2.0):
        details.append(f"The class weights add to it: {pull}.")
    fixes: list[str] = []
    notes: list[str] = []
    stable_at: dict[str, list[str]] = {}
    clipped_at: dict[str, list[str]] = {}  # a clip fix, and the strategies it rescued
    for cw in strategies:
        mine = [r for r in failures if r.probe.settings.class_weight == cw]
        lower = _lower_lr(grid, mine)
        if lower is not None:
            stable_at.setdefault(_lr_and_clip(lower), []).append(cw)
        clip_fixes, clip_notes = _clip_fixes(grid, mine)
        for fix in clip_fixes:
            clipped_at.setdefault(fix, []).append(cw)
        notes += clip_notes
    fixes += [f if regression else f"{f} ({join(names)})" for f, names in clipped_at.items()]
    if stable_at and regression:
        fixes.insert(0, "a lower learning rate: stable at " + "; ".join(stable_at))
    elif stable_at:
        fixes.insert(0, "a lower learning rate: " + "; ".join(
            f"{_names_and(names)} {_was(names)} stable at {where}"
            for where, names in stable_at.items()))
    details.append(_fix_sentence(fixes, unique(notes), True))
    return NumericalCause("lr", tuple(failures), tuple(details))


def _weights_bullet(grid: ProbeGrid, failures: Sequence[ProbeResult], cause: str,
                    twins: Sequence[str]) -> NumericalCause:
    """Why and what fixes a strategy's failures that its milder twins did not have
    (``cause`` "weights", ``twins``: those that trained) or that no twin can judge
    ("unknown", ``twins``: the milder ones that failed too)."""
    pull = _pull(failures)
    if cause == "weights":
        why = (f"Why: the class weights: class_weight={_names_and(list(twins))} trained "
               "without numerical trouble at the same learning rate, clip and batch size")
        why += f", and {pull}." if pull else "."
    elif pull and _large_pull(failures):
        why = (f"Why: most likely the class weights: {pull}; probe class_weight=none at "
               "the same learning rate to confirm.")
    else:
        also = (f" (the milder class_weight={_names_and(list(twins))} failed there too)"
                if twins else "")
        why = (f"Why: unclear from this grid{also}: probe class_weight=none at the same "
               "learning rate to tell the learning rate and the class weights apart.")
    fixes, notes = _clip_fixes(grid, failures)
    for fix in (_remedy_fix(grid, failures), _lower_lr_fix(grid, failures),
                _milder_fix(grid, failures)):
        if fix is not None:
            fixes.append(fix)
    remedies_probed = any(is_remedy(s) for s in grid.strategies)
    return NumericalCause("weights" if cause == "weights" else "unknown", tuple(failures),
                          (why, _fix_sentence(fixes, notes, remedies_probed)))


def numerical_causes(report: RunReport) -> list[NumericalCause]:
    """Where, why and what fixes it, for the run's numerical failures, one entry per cause.

    Each failure is judged against its twins (the same learning rate, clip and batch size)
    with milder class weights: if one of them trained, the class weights are the cause;
    if the unweighted twin (``none``) failed too, or the failing strategy has no weights
    itself, the learning rate is; otherwise the grid cannot tell. The fixes are what the
    grid itself shows to work: a clipped twin, a ``normalized`` or ``focal`` twin, a lower
    learning rate, milder weights; and what was tried and did not work is said too.

    Returns:
        One cause for the failures the learning rate explains (all strategies together),
        then one per strategy whose failures its weights explain (or that no twin judges).
    """
    grid = ProbeGrid(report)
    failures = [r for r in grid.results if r.verdict.category is Category.NUMERICAL]
    if report.dataset.task == "regression":  # no class weights: the learning rate's doing
        return [_lr_bullet(grid, failures, regression=True)] if failures else []
    by_lr: list[ProbeResult] = []
    by_strategy: dict[str, list[tuple[ProbeResult, str, list[str]]]] = {}
    for failure in failures:
        cause, others = _cause(grid, failure)
        if cause == "lr":
            by_lr.append(failure)
        else:
            by_strategy.setdefault(failure.probe.settings.class_weight, []).append(
                (failure, cause, others))
    advice = [_lr_bullet(grid, by_lr)] if by_lr else []
    for entries in by_strategy.values():
        weights = [e for e in entries if e[1] == "weights"]
        unknown = [e for e in entries if e[1] != "weights"]
        if weights:
            trained = unique(o for _, _, others in weights for o in others)
            advice.append(_weights_bullet(grid, [e[0] for e in weights], "weights", trained))
        if unknown:
            failed = unique(o for _, _, others in unknown for o in others)
            advice.append(_weights_bullet(grid, [e[0] for e in unknown], "unknown", failed))
    return advice

