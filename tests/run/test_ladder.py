"""The ladder's verification of a forecast: a forecast that does not fit is revised
downward and checked again. A simulated machine stands in for the runs here, so that
every branch is reached; the real runs are in test_memory.py and test_memory_cli.py."""

from __future__ import annotations

import pytest

from stabcheck.run.ladder import MAX_VERIFY, Verification, verify_forecast
from stabcheck.system.forecast import Line, MemoryPoint

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


# ------------------------------------------------- the training sample caps the batch


class SimulatedRunner:
    """Stands in for ``ProbeRunner``: a probe's peak follows ``LINE`` at the batch a step
    trains on (``trained_batch_size``); above ``ceiling`` the watchdog ends it."""

    def __init__(self, ceiling: int = BUDGET) -> None:
        self.ceiling = ceiling
        self.probes: list = []

    def run(self, probe, class_weights):
        from stabcheck.results import MemoryEvidence, ProbeRun, StepRecord, Termination

        self.probes.append(probe)
        peak = int(LINE.at(probe.settings.trained_batch_size))
        over = peak > self.ceiling
        steps = tuple(StepRecord(i, 1.0 - 0.1 * i, 1.0) for i in range(1, probe.steps + 1))
        return ProbeRun(probe, Termination.OVER_BUDGET if over else Termination.COMPLETED,
                        steps=() if over else steps,
                        memory=MemoryEvidence(min(peak, self.ceiling), BUDGET, "watchdog"))


def template(batch_size: int = 32):
    from stabcheck.results import Probe, ProbeSettings

    return Probe(f"cw=none,lr=0.01,clip=none,bs={batch_size}", ProbeSettings(
        "none", None, 0.01, "none", batch_size, "adam", "binary_crossentropy"), 3)


def memory_report(runner, sizes, max_batch):
    from stabcheck.run.ladder import build_memory_report

    return build_memory_report(runner, template(), [], budget=BUDGET, enforcement="watchdog",
                               class_weights=None, extra_sizes=sizes, max_batch=max_batch)


def test_the_ladder_plans_and_forecasts_no_batch_beyond_the_training_sample():
    """The budget would take about 500,000 samples a batch; there are 5,000."""
    runner = SimulatedRunner()
    report = memory_report(runner, (32, 16384), max_batch=5000)
    trained = [p.settings.trained_batch_size for p in runner.probes]
    assert max(trained) == 5000 and all(b <= 5000 for b in trained)
    asked = {p.settings.batch_size: p.settings.effective_batch_size for p in runner.probes}
    assert asked[16384] == 5000  # measured as asked, trained on the whole sample
    assert [p.batch_size for p in report.points] == [32, 5000]
    assert report.forecast_batch == 5000 and report.forecast_capped
    assert report.verified.fits and report.verified.batch_size == 5000
    data = report.to_json()
    assert data["training_samples"] == 5000 and data["forecast_capped"] is True
    assert type(report).from_json(data).max_batch == 5000

    from stabcheck.report.terminal.memory import memory_forecast_lines

    text = " ".join(memory_forecast_lines(report))
    assert "every batch size up to the 5000 training samples fits with a 5% margin: 5000" in text
    assert "trains on 5000 rows a step, as fit would, so no larger size is forecast" in text


def test_with_one_size_that_is_the_whole_sample_the_answer_is_that_measured_run():
    runner = SimulatedRunner()
    report = memory_report(runner, (16384,), max_batch=489)
    assert [p.settings.trained_batch_size for p in runner.probes] == [489]  # no ladder
    assert report.slope is None and report.forecast_batch == 489 and report.forecast_capped
    from stabcheck.report.terminal.memory import memory_forecast_lines

    (line,) = memory_forecast_lines(report)
    assert line.startswith("every batch size up to the 489 training samples fits the budget: "
                           "batch 489 ran at")


def test_a_limit_below_the_training_sample_is_forecast_as_before():
    runner = SimulatedRunner(ceiling=300 * MiB)  # about 37,000 samples a batch fit
    report = memory_report(runner, (32, 8192), max_batch=1_000_000)
    assert not report.forecast_capped and report.forecast_batch < 1_000_000
    assert all(p.settings.effective_batch_size is None for p in runner.probes)
    assert report.verified is not None and report.verified.fits
