"""The memory ladder: measure peak memory per batch size, forecast what fits, verify it.

Each batch size runs in a fresh worker (the runner starts one per batch size), so every
peak is that of a clean process. Measurement probes use the grid's first setting and a few
steps: memory does not depend on the learning rate, the class weights or the clipping,
and the peak is reached within the first optimizer steps (when the optimizer's slots are
created). No step trains on more rows than the training sample holds (``fit`` caps a batch
at the data there is), so with ``max_batch`` the ladder never plans, forecasts or verifies
a batch size beyond it, and a point is the batch a step trained on. Everything here
returns data; nothing prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS
from stabcheck.executors import Runner
from stabcheck.judge.classify import classify
from stabcheck.plan import effective_batch_size
from stabcheck.probe_ids import REQUESTED_TAG, search_id
from stabcheck.results import Category, Outcome, Probe, ProbeResult, Verdict
from stabcheck.system.forecast import (
    Line,
    MemoryPoint,
    MemoryReport,
    accumulation_plan,
    below_failure,
    fit_line,
    ladder_between,
    usable_budget,
)

MEASURE_STEPS = 3  # the peak is reached once the optimizer's slots exist (first step)
MAX_APPROACH = 4  # measurements spent approaching a far extrapolated forecast
APPROACH_RATIO = 2  # how far beyond the largest size measured a forecast may lie
MAX_VERIFY = 3  # runs spent verifying a forecast (each failure revises it downward)


Measure = Callable[[Probe], ProbeResult]


def points_from_results(results: Sequence[ProbeResult]) -> list[MemoryPoint]:
    """One point per batch size a step trained on: the first probe that ran in that batch
    size's worker (a batch size above the training sample counts as the sample's size)."""
    points: dict[int, MemoryPoint] = {}
    for result in results:
        settings = result.probe.settings
        if settings.trained_batch_size in points or not result.ran:
            continue
        if settings.accumulation_steps != 1 or settings.dtype_policy is not None:
            continue
        points[settings.trained_batch_size] = _point(result)
    return sorted(points.values(), key=lambda p: p.batch_size)


def build_memory_report(
    runner: Runner,
    template: Probe,
    grid_results: Sequence[ProbeResult],
    *,
    budget: int | None,
    enforcement: str | None,
    class_weights: list[float] | None,
    extra_sizes: Sequence[int] = (),
    on_result: Callable[[ProbeResult], None] | None = None,
    mixed_policy: str = "mixed_bfloat16",
    max_batch: int | None = None,
    margin: float = DEFAULT_THRESHOLDS.memory_margin,
) -> MemoryReport:
    """Measure where needed, fit, forecast the largest batch size under the budget, verify.

    Args:
        runner: runs measurement probes (one fresh worker per batch size).
        template: the grid's first probe; measurement probes copy its settings.
        grid_results: what the grid already measured.
        budget: the host-memory budget in bytes, or None (then: measure, no forecast).
        enforcement: how the budget is enforced ("cgroup-v1", "watchdog", ...).
        class_weights: the template's class weights (as the runner takes them).
        extra_sizes: batch sizes to measure besides the grid's (``stabcheck memory``).
        on_result: called with every measurement probe's result.
        mixed_policy: the mixed-precision policy to measure.
        max_batch: the training samples: the largest batch a step can train on. Nothing
            beyond it is planned or forecast; where it fits, it is the answer.
        margin: the share of the budget a forecast keeps free (``[thresholds]``
            ``memory_margin``, as the run was configured).
    """
    cap = max_batch if max_batch is not None and max_batch > 0 else None

    def measure(batch_size: int, *, tag: str = REQUESTED_TAG, **changes: Any) -> ProbeResult:
        settings = replace(template.settings, batch_size=batch_size,
                           effective_batch_size=effective_batch_size(batch_size, cap),
                           **changes)
        steps = max(MEASURE_STEPS, settings.accumulation_steps + 1)
        pid = search_id(tag, settings.class_weight, settings.learning_rate, settings.clip,
                        batch_size, changes)
        probe = Probe(pid, settings, steps, measure_only=True)
        run = runner.run(probe, class_weights)
        result = ProbeResult(run, _memory_verdict(classify(run), steps))
        if on_result is not None:
            on_result(result)
        return result

    points = {p.batch_size: p for p in points_from_results(grid_results)}
    for size in extra_sizes:
        if min(size, cap or size) not in points:
            point = _point(measure(size))
            points[point.batch_size] = point
    fitting = sorted(b for b, p in points.items() if p.fits)
    failing = sorted(b for b, p in points.items() if not p.fits)
    if budget is not None and len(fitting) < 2 and fitting:
        # Two points make a line: measure between the largest fit and the smallest
        # failure, or beyond the largest fit when nothing failed (up to the sample).
        high = failing[0] if failing else min(fitting[-1] * 8, cap or fitting[-1] * 8)
        for size in ladder_between(fitting[-1], high):
            points[size] = _point(measure(size, tag="ladder"))
            if not points[size].fits:
                break
    line = fit_line(list(points.values()))
    if budget is not None and line is not None:
        # A forecast far beyond the sizes measured is an extrapolation: measure on the way
        # (geometric midpoints) and refit, until it lies within APPROACH_RATIO of a
        # measured size. A size that did not fit caps the target: nothing beyond it fits.
        for _ in range(MAX_APPROACH):
            forecast = line.largest_batch(usable_budget(budget, margin))
            fitting = [b for b, p in points.items() if p.fits]
            if forecast is None or not fitting:
                break
            top = max(fitting)
            target = min([forecast] + [b for b, p in points.items() if not p.fits and b > top]
                         + ([cap] if cap else []))
            if target <= APPROACH_RATIO * top:
                break
            size = int(round((top * target) ** 0.5 / 8)) * 8
            points[size] = _point(measure(size, tag="ladder"))
            line = fit_line(list(points.values())) or line
    ordered = tuple(sorted(points.values(), key=lambda p: p.batch_size))
    report = MemoryReport(budget, margin, enforcement, ordered, max_batch=cap)
    whole = points.get(cap) if cap else None
    if line is None:
        if budget is not None and whole is not None and whole.fits:
            # The whole sample in one batch fits: nothing larger exists to forecast.
            return replace(report, forecast_batch=cap, verified=whole)
        return report
    report = replace(report, intercept=line.intercept, slope=line.slope,
                     fit_method=line.method)
    if budget is None:
        return report
    failing = sorted(p.batch_size for p in ordered if not p.fits)
    forecast = line.largest_batch(usable_budget(budget, margin))
    if forecast is not None and failing and forecast >= failing[0]:
        below = [p for p in ordered if p.fits and p.batch_size < failing[0]]
        if not below:
            return report
        forecast = below_failure(line, below[-1], points[failing[0]],
                                 usable_budget(budget, margin)) or below[-1].batch_size
    if forecast is not None and cap is not None and forecast > cap:
        forecast = cap  # no batch trains on more than the sample holds
    if forecast is None:
        return report
    check = verify_forecast(forecast, points, line, budget, margin,
                            lambda size: _point(measure(size, tag="verify")))
    line, verified = check.line, check.verified
    ordered = tuple(sorted(points.values(), key=lambda p: p.batch_size))
    largest_fit = check.forecast if verified.fits else max(
        (p.batch_size for p in ordered if p.fits), default=None)
    report = replace(report, points=ordered, intercept=line.intercept, slope=line.slope,
                     fit_method=line.method, forecast_batch=check.forecast,
                     forecast_peak=line.at(check.forecast), verified=verified,
                     rejected=check.rejected)
    if not failing or largest_fit is None:
        return report
    accumulation = []
    plan = accumulation_plan(failing[0], largest_fit)
    if plan is not None:
        micro, steps = plan
        result = measure(micro, tag="accumulate", accumulation_steps=steps)
        point = _point(result).to_json()
        accumulation.append({**point, "batch_size": failing[0], "micro_batch_size": micro,
                             "accumulation_steps": steps})
    result = measure(failing[0], tag="mixed", dtype_policy=mixed_policy)
    mixed = {"policy": mixed_policy, "float32_forecast_bytes": line.at(failing[0]),
             **_point(result).to_json()}
    if result.verdict.outcome.value == "error":
        mixed["error"] = result.verdict.summary
    return replace(report, accumulation=tuple(accumulation), mixed_precision=mixed)


@dataclass(frozen=True)
class Verification:
    """How a forecast was verified: the batch size checked last, its run, the forecasts
    rejected on the way, and the line as refitted with what the checks measured."""

    forecast: int
    verified: MemoryPoint
    rejected: tuple[MemoryPoint, ...]
    line: Line


def verify_forecast(
    forecast: int, points: dict[int, MemoryPoint], line: Line, budget: int, margin: float,
    run: Callable[[int], MemoryPoint],
) -> Verification:
    """Run the forecast under the budget, and revise it until a run confirms it, spending
    at most ``MAX_VERIFY`` runs.

    - It does not fit (memory grows faster than the line, or the budget also charges
      memory besides the worker's own, such as hot library pages): it is rejected and
      revised below the failure (``below_failure``), planning with one more margin per
      failure and with no more than the failed run's own peak less a margin.
    - It fits, but with less than half the margin to spare (less than that is noise): that
      run is a measurement close to the limit; it joins ``points``, the line is refitted,
      and the forecast steps down from that measured peak by its excess over the margin,
      at the line's slope.

    Where a revision lands at or below the largest size that ran, or the runs are spent,
    that size is the answer, verified by its own run.
    """
    usable = usable_budget(budget, margin)
    close = usable_budget(budget, margin / 2)  # a peak above this ate most of the margin
    rejected: list[MemoryPoint] = []
    runs = 0
    while True:
        known = points.get(forecast)
        verified = known or run(forecast)
        runs += known is None
        largest_fit = max((b for b, p in points.items() if p.fits and b < forecast), default=None)
        done = known is not None or largest_fit is None or runs >= MAX_VERIFY
        if verified.fits:
            if done or verified.peak_bytes is None or verified.peak_bytes <= close:
                return Verification(forecast, verified, tuple(rejected), line)
            points[forecast] = verified
            line = fit_line(list(points.values())) or line
            if line.slope <= 0:
                return Verification(forecast, verified, tuple(rejected), line)
            # Step down from the measured peak by the excess, at the line's slope.
            revised = int(forecast - (verified.peak_bytes - usable) / line.slope)
            revised -= revised % 8
            forecast = revised if revised > largest_fit else largest_fit
            continue
        if largest_fit is None:
            return Verification(forecast, verified, tuple(rejected), line)
        rejected.append(verified)
        revised = None
        if runs < MAX_VERIFY:
            limit = usable_budget(budget, margin * (len(rejected) + 1))
            if verified.peak_bytes:
                limit = min(limit, verified.peak_bytes * (1 - margin))
            revised = below_failure(line, points[largest_fit], verified, limit)
        forecast = revised or largest_fit


def _memory_verdict(verdict: Verdict, steps: int) -> Verdict:
    """A measurement probe trains a few steps: it says nothing about learning, so a
    learning verdict (stalled, collapse) is not passed on as one."""
    if verdict.category is not Category.LEARNING:
        return verdict
    return Verdict(Outcome.STABLE, {"memory_measurement": True, "steps": steps,
                                    "not_judged": verdict.outcome.value},
                   f"ran {steps} steps to measure memory (learning not judged)")


def _point(result: ProbeResult) -> MemoryPoint:
    return MemoryPoint(
        batch_size=result.probe.settings.trained_batch_size,
        peak_bytes=result.run.memory.peak_host_bytes,
        fits=result.verdict.category not in (Category.MEMORY, Category.ERROR, Category.CRASH),
        outcome=result.verdict.outcome.value,
        probe_id=result.probe.id,
    )
