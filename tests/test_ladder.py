"""The ladder's verification of a forecast: a forecast that does not fit is revised
downward and checked again. A simulated machine stands in for the runs here, so that
every branch is reached; the real runs are in test_memory.py and test_memory_cli.py."""

from __future__ import annotations

import pytest

from stabcheck.forecast import Line, MemoryPoint
from stabcheck.ladder import MAX_VERIFY, Verification, verify_forecast

MiB = 1 << 20
BUDGET = 1024 * MiB
LINE = Line(250 * MiB, 1400.0)  # the forecast: 250 MiB + 1400 B per sample


class Machine:
    """Peaks ``above`` the line (3% by default), and a ceiling below the budget (memory the
    budget charges besides the worker's own): runs over it are killed, their last peak
    seen ``killed_at`` (by default the ceiling)."""

    def __init__(self, ceiling: int, killed_at: int | None = None, above: float = 1.03) -> None:
        self.ceiling = ceiling
        self.killed_at = killed_at or ceiling
        self.above = above
        self.runs: list[int] = []

    def run(self, batch: int) -> MemoryPoint:
        self.runs.append(batch)
        peak = int(LINE.at(batch) * self.above)
        fits = peak <= self.ceiling
        return MemoryPoint(batch, peak if fits else self.killed_at, fits,
                           "stable" if fits else "oom_host", f"verify:bs={batch}")


def measured(*sizes: int) -> dict[int, MemoryPoint]:
    return {b: MemoryPoint(b, int(LINE.at(b)), True, "stable", f"ladder:bs={b}") for b in sizes}


def first_forecast() -> int:
    return LINE.largest_batch(BUDGET * 0.95)


def verify(machine: Machine, points: dict[int, MemoryPoint]) -> tuple:
    check = verify_forecast(first_forecast(), points, LINE, BUDGET, 0.05, machine.run)
    assert isinstance(check, Verification)
    return check.forecast, check.verified, list(check.rejected)


@pytest.mark.parametrize("above", [1.0, 1.02])  # 2% over the forecast: within the noise
def test_a_forecast_that_fits_is_verified_by_one_run(above):
    machine = Machine(ceiling=BUDGET, above=above)
    forecast, verified, rejected = verify(machine, measured(32, 200_000))
    assert machine.runs == [forecast] == [first_forecast()]
    assert verified.fits and rejected == []


def test_a_forecast_killed_below_the_budget_is_revised_and_the_revision_verified():
    machine = Machine(ceiling=960 * MiB)
    forecast, verified, rejected = verify(machine, measured(32, 200_000))
    assert [p.batch_size for p in rejected] == [first_forecast()]
    assert 200_000 < forecast < first_forecast()
    assert verified.fits and verified.batch_size == forecast
    assert machine.runs == [first_forecast(), forecast]


def test_when_revisions_are_spent_the_largest_size_that_ran_is_the_answer():
    # nothing near the forecast fits, and the killed runs say nothing of where the limit is
    machine = Machine(ceiling=300 * MiB, killed_at=BUDGET)
    forecast, verified, rejected = verify(machine, measured(32, 20_000))
    assert len(machine.runs) == MAX_VERIFY
    assert machine.runs == sorted(machine.runs, reverse=True)  # each revision lower
    assert [p.batch_size for p in rejected] == machine.runs
    assert forecast == 20_000 and verified.fits and verified.probe_id == "ladder:bs=20000"


def test_a_revision_at_or_below_the_largest_size_that_ran_takes_that_size_without_a_run():
    machine = Machine(ceiling=int(LINE.at(20_000) * 1.02))
    forecast, verified, rejected = verify(machine, measured(32, 20_000))
    assert machine.runs == [first_forecast()]
    assert forecast == 20_000 and verified.fits and len(rejected) == 1


def test_with_nothing_below_it_that_ran_a_failed_forecast_stays_failed():
    machine = Machine(ceiling=100 * MiB)
    forecast, verified, rejected = verify(machine, {})
    assert forecast == first_forecast() and not verified.fits and rejected == []
    assert machine.runs == [forecast]


def test_a_forecast_that_fits_with_less_than_the_margin_is_refitted_and_planned_again():
    machine = Machine(ceiling=BUDGET, above=1.04)  # 4% above the line: 98.8% of the budget
    points = measured(32, 200_000)
    check = verify_forecast(first_forecast(), points, LINE, BUDGET, 0.05, machine.run)
    assert machine.runs[0] == first_forecast() and len(machine.runs) >= 2
    assert first_forecast() in points  # the close call is a measurement now
    assert check.line.slope > LINE.slope and check.rejected == ()
    assert check.forecast < first_forecast() and check.verified.fits
    assert check.verified.peak_bytes <= BUDGET * 0.975 or len(machine.runs) == MAX_VERIFY
