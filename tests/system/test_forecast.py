"""The memory forecast: line fitting, the largest fitting batch, ladders, accumulation."""

from __future__ import annotations

import pytest

from stabcheck.system.forecast import (
    Line,
    MemoryPoint,
    accumulation_plan,
    below_failure,
    fit_line,
    ladder_between,
    usable_budget,
)

MiB = 1 << 20


def point(batch: int, peak: int | None, fits: bool = True) -> MemoryPoint:
    return MemoryPoint(batch, peak, fits, "stable" if fits else "oom_host", f"bs={batch}")


def test_fit_line_recovers_an_exact_line_and_ignores_failures():
    points = [point(b, 1000 + 10 * b) for b in (16, 64, 256)] + [point(4096, 999, fits=False)]
    line = fit_line(points)
    assert line is not None
    assert line.intercept == pytest.approx(1000)
    assert line.slope == pytest.approx(10)
    assert line.method == "least_squares"


def test_fit_line_follows_the_top_segment_where_memory_grows_faster_than_linearly():
    # 1 KiB per sample, then 2 KiB per sample between the two largest sizes
    points = [point(b, 100 * MiB + 1024 * b) for b in (1000, 10_000, 100_000)]
    points.append(point(200_000, points[-1].peak_bytes + 2048 * 100_000))
    line = fit_line(points)
    assert line.method == "top_segment"
    assert line.slope == pytest.approx(2048)
    assert line.at(200_000) == pytest.approx(points[-1].peak_bytes)
    assert line.at(300_000) > fit_line(points[:-1]).at(300_000)


@pytest.mark.parametrize("top_rise", [
    1 * MiB,  # steeper, but a rise this small between close sizes is noise
    -5 * MiB,  # flatter than the rest: least squares already errs high there
])
def test_fit_line_keeps_least_squares_where_the_top_segment_is_noise_or_flatter(top_rise):
    points = [point(b, 100 * MiB + 1024 * b) for b in (1000, 10_000, 100_000)]
    points.append(point(101_000, points[-1].peak_bytes + 1024 * 1000 + top_rise))
    assert fit_line(points).method == "least_squares"


@pytest.mark.parametrize(
    "points",
    [[], [point(32, 100)], [point(32, 100), point(32, 110)], [point(32, 100), point(64, None)],
     [point(32, 100), point(64, 200, fits=False)]],
)
def test_fit_line_needs_two_batch_sizes_that_ran(points):
    assert fit_line(points) is None


@pytest.mark.parametrize(
    ("line", "limit", "multiple", "expected"),
    [
        (Line(1000, 10), 2000, 8, 96),  # (2000 - 1000) / 10 = 100 -> 96
        (Line(1000, 10), 2000, 1, 100),
        (Line(1000, 10), 1050, 8, None),  # only 5 samples fit: below one multiple
        (Line(1000, 0), 2000, 8, None),  # a flat line forecasts nothing
        (Line(3000, 10), 2000, 8, None),  # the fixed part alone is over the limit
    ],
)
def test_largest_batch(line, limit, multiple, expected):
    assert line.largest_batch(limit, multiple) == expected


def test_usable_budget_keeps_the_margin():
    assert usable_budget(1000, 0.05) == pytest.approx(950)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(32, 16384, [152, 728, 3448]), (32, 40, []), (64, 512, [104, 184, 304])],
)
def test_ladder_between(low, high, expected):
    sizes = ladder_between(low, high)
    assert sizes == expected
    assert all(low < s < high and s % 8 == 0 for s in sizes)


@pytest.mark.parametrize(
    ("batch", "largest", "expected"),
    [(16384, 12264, (8192, 2)), (16384, 3000, (2048, 8)), (100, 60, (50, 2)),
     (96, 7, (6, 16)), (100, 7, None)],
)
def test_accumulation_plan(batch, largest, expected):
    assert accumulation_plan(batch, largest) == expected


def test_below_failure_takes_the_secant_where_memory_grows_faster_than_the_line():
    # the line says 100 MiB + 1 KiB per sample; the failure at 400k was killed at 900 MiB
    line = Line(100 * MiB, 1024)
    fit, failure = point(100_000, 200 * MiB), point(400_000, 900 * MiB, fits=False)
    size = below_failure(line, fit, failure, 800 * MiB)
    secant_slope = (900 - 200) * MiB / 300_000
    assert size == pytest.approx(100_000 + 600 * MiB / secant_slope, abs=8)
    assert size % 8 == 0 and size < line.largest_batch(800 * MiB)


@pytest.mark.parametrize(("limit", "failure_peak", "expected"), [
    (800 * MiB, None, 200_000),  # no peak for the failure: the midpoint of 100k and 400k
    (150 * MiB, 900 * MiB, None),  # the fit itself is the answer
    (10_000 * MiB, 900 * MiB, 200_000),  # both answers beyond the failure: the midpoint
])
def test_below_failure_falls_back_to_the_midpoint_or_the_fit(limit, failure_peak, expected):
    line = Line(100 * MiB, 1024)
    fit, failure = point(100_000, 200 * MiB), point(400_000, failure_peak, fits=False)
    assert below_failure(line, fit, failure, limit) == expected
