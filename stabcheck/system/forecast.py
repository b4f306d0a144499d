"""Forecasting what fits: peak memory as a function of batch size. Pure functions.

A training step's memory is, to a good approximation, a fixed part (the runtime, the
weights, the optimizer state) plus a part proportional to the batch (the activations kept
for the backward pass and their gradients). So peak = intercept + slope x batch, fitted
by least squares on the batch sizes that ran to completion, each in a fresh process.
At large batches memory can grow faster than linearly (bigger temporaries, allocator
rounding); where the two largest batch sizes that ran rise more steeply than the
least-squares line, the forecast follows their segment instead, so that it errs small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS


@dataclass(frozen=True)
class MemoryPoint:
    """The peak host memory one batch size reached, and whether it fit."""

    batch_size: int
    peak_bytes: int | None
    fits: bool
    outcome: str
    probe_id: str

    def to_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "peak_bytes": self.peak_bytes, "fits": self.fits,
                "outcome": self.outcome, "probe_id": self.probe_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryPoint:
        return cls(int(data["batch_size"]), data.get("peak_bytes"), bool(data["fits"]),
                   str(data["outcome"]), str(data["probe_id"]))


@dataclass(frozen=True)
class Line:
    """peak = intercept + slope x batch size; ``method`` says how it was fitted."""

    intercept: float
    slope: float
    method: str = "least_squares"  # or "top_segment"

    def at(self, batch_size: int) -> float:
        return self.intercept + self.slope * batch_size

    def largest_batch(self, limit: float, multiple: int = 8) -> int | None:
        """The largest multiple of ``multiple`` whose forecast peak is within ``limit``."""
        if self.slope <= 0:
            return None
        best = math.floor((limit - self.intercept) / self.slope)
        best -= best % multiple
        return best if best >= multiple else None


TOP_SEGMENT_MIN_RISE = 16 << 20  # below this, two peaks' difference is mostly noise
TOP_SEGMENT_STEEPER = 1.05  # how much steeper the top segment must be to be followed


def fit_line(points: Sequence[MemoryPoint]) -> Line | None:
    """The forecast line through the points that fit; None with fewer than two sizes.

    Least squares, unless the two largest batch sizes rise clearly more steeply (by
    ``TOP_SEGMENT_STEEPER`` and at least ``TOP_SEGMENT_MIN_RISE``, so that noise does not
    count): then the line through those two, which extrapolating beyond them should follow.
    """
    usable = [(p.batch_size, p.peak_bytes) for p in points if p.fits and p.peak_bytes]
    if len({b for b, _ in usable}) < 2:
        return None
    n = len(usable)
    mean_b = sum(b for b, _ in usable) / n
    mean_p = sum(p for _, p in usable) / n
    var = sum((b - mean_b) ** 2 for b, _ in usable)
    slope = sum((b - mean_b) * (p - mean_p) for b, p in usable) / var
    highest: dict[int, int] = {}
    for batch, peak in usable:
        highest[batch] = max(peak, highest.get(batch, 0))
    (b1, p1), (b2, p2) = sorted(highest.items())[-2:]
    top = (p2 - p1) / (b2 - b1)
    if top > slope * TOP_SEGMENT_STEEPER and p2 - p1 >= TOP_SEGMENT_MIN_RISE:
        return Line(p2 - top * b2, top, "top_segment")
    return Line(mean_p - slope * mean_b, slope)


def below_failure(
    line: Line, fit: MemoryPoint, failure: MemoryPoint, limit: float, multiple: int = 8
) -> int | None:
    """The batch size to plan for between ``fit`` (the largest size that ran below
    ``failure``) and ``failure`` (a size that did not fit), keeping the peak under ``limit``.

    The smaller of the forecast line's answer and that of the secant through the two
    points: where memory grows faster than linearly, the secant lies above the curve
    between them, so its answer errs small. Where both lie beyond the failure, the
    geometric midpoint. None where the answer is ``fit`` itself (nothing larger is planned
    to fit, or there is no multiple of ``multiple`` between the two).
    """
    low, high = fit.batch_size, failure.batch_size
    candidates = [line.largest_batch(limit, multiple)]
    if failure.peak_bytes and fit.peak_bytes and failure.peak_bytes > fit.peak_bytes:
        slope = (failure.peak_bytes - fit.peak_bytes) / (high - low)
        secant = Line(fit.peak_bytes - slope * low, slope, "secant")
        candidates.append(secant.largest_batch(limit, multiple))
    known = [c for c in candidates if c is not None]
    if any(c <= low for c in known):
        return None
    inside = [c for c in known if c < high]
    if inside:
        return min(inside)
    middle = int(round((low * high) ** 0.5 / multiple)) * multiple
    return middle if low < middle < high else None


def usable_budget(budget: int, margin: float = DEFAULT_THRESHOLDS.memory_margin) -> float:
    """The part of a budget a forecast may plan to use (the rest is the safety margin)."""
    return budget * (1.0 - margin)


def ladder_between(low: int, high: int, count: int = 3) -> list[int]:
    """Up to ``count`` batch sizes spaced geometrically strictly between low and high,
    rounded to multiples of 8 (where the forecast needs more points)."""
    if high <= low * 1.5:
        return []
    ratio = (high / low) ** (1 / (count + 1))
    sizes = []
    for i in range(1, count + 1):
        size = int(round(low * ratio**i / 8)) * 8
        if low < size < high and size not in sizes:
            sizes.append(size)
    return sizes


def accumulation_plan(batch_size: int, largest_fitting: int) -> tuple[int, int] | None:
    """(micro-batch, steps): the fewest power-of-two accumulation steps that keep the
    effective batch ``batch_size`` with a micro-batch no larger than ``largest_fitting``."""
    steps = 2
    while batch_size // steps > largest_fitting:
        steps *= 2
        if steps > batch_size:
            return None
    if batch_size % steps:
        return None
    return batch_size // steps, steps


@dataclass(frozen=True)
class MemoryReport:
    """Peaks per batch size, the fitted forecast, and its verification."""

    budget_bytes: int | None
    margin: float
    enforcement: str | None
    points: tuple[MemoryPoint, ...]
    intercept: float | None = None
    slope: float | None = None
    fit_method: str | None = None
    forecast_batch: int | None = None
    forecast_peak: float | None = None
    verified: MemoryPoint | None = None
    rejected: tuple[MemoryPoint, ...] = ()  # earlier forecasts whose verification failed
    accumulation: tuple[dict[str, Any], ...] = ()
    mixed_precision: dict[str, Any] | None = None
    # The training samples: no step trains on a larger batch (fit caps a batch at the
    # data), so no batch size beyond it is planned or forecast. None: not known.
    max_batch: int | None = None

    @property
    def forecast_capped(self) -> bool:
        """Whether the forecast is the whole training sample: more would fit, but no batch
        trains on more rows than there are."""
        return (self.max_batch is not None and self.forecast_batch is not None
                and self.forecast_batch >= self.max_batch)

    @property
    def forecast_error(self) -> float | None:
        """(forecast - measured) / measured at the verified batch size."""
        if self.verified is None or not self.verified.peak_bytes or self.forecast_peak is None:
            return None
        return (self.forecast_peak - self.verified.peak_bytes) / self.verified.peak_bytes

    def measured(self) -> list[MemoryPoint]:
        """Every batch size measured, by size: the ladder's points, the forecasts rejected
        on the way, and the verified forecast where it is not one of the points."""
        points = {p.batch_size: p for p in (*self.points, *self.rejected)}
        if self.verified is not None:
            points.setdefault(self.verified.batch_size, self.verified)
        return [points[size] for size in sorted(points)]

    def forecast_at(self, batch_size: int) -> float | None:
        if self.intercept is None or self.slope is None:
            return None
        return self.intercept + self.slope * batch_size

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_bytes": self.budget_bytes,
            "margin": self.margin,
            "enforcement": self.enforcement,
            "points": [p.to_json() for p in self.points],
            "fit": None if self.slope is None else {
                "intercept_bytes": self.intercept, "bytes_per_sample": self.slope,
                "method": self.fit_method or "least_squares"},
            "forecast_batch_size": self.forecast_batch,
            "forecast_peak_bytes": self.forecast_peak,
            "verified": None if self.verified is None else self.verified.to_json(),
            "rejected_forecasts": [p.to_json() for p in self.rejected],
            "forecast_error": self.forecast_error,
            "accumulation": list(self.accumulation),
            "mixed_precision": self.mixed_precision,
            "training_samples": self.max_batch,
            "forecast_capped": self.forecast_capped,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryReport:
        fit = data.get("fit") or {}
        verified = data.get("verified")
        return cls(
            budget_bytes=data.get("budget_bytes"),
            margin=float(data.get("margin", DEFAULT_THRESHOLDS.memory_margin)),
            enforcement=data.get("enforcement"),
            points=tuple(MemoryPoint.from_json(p) for p in data.get("points") or ()),
            intercept=fit.get("intercept_bytes"),
            slope=fit.get("bytes_per_sample"),
            fit_method=fit.get("method"),
            forecast_batch=data.get("forecast_batch_size"),
            forecast_peak=data.get("forecast_peak_bytes"),
            verified=MemoryPoint.from_json(verified) if verified else None,
            rejected=tuple(MemoryPoint.from_json(p) for p in data.get("rejected_forecasts") or ()),
            accumulation=tuple(data.get("accumulation") or ()),
            mixed_precision=data.get("mixed_precision"),
            max_batch=data.get("training_samples"),
        )
