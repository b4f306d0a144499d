"""A process's memory from /proc, and a probe's training peak with its evaluations kept
out (``TrainingPeak`` on a simulated allocator: the arithmetic, case by case)."""

from __future__ import annotations

import pytest

from stabcheck.system import procfs

MIB = 1 << 20


def test_this_process_reads_its_own_memory():
    procfs.reset_peak_rss()
    now, peak = procfs.private_rss(), procfs.peak_private_rss()
    assert now is not None and peak is not None
    assert 0 < now <= peak + 4 * MIB  # the reset set the mark to the resident memory
    assert procfs.release_free_heap() in (True, False)


class FakeProcess:
    """Live allocations, the allocator's free memory it has not given back, and the
    kernel's high-water mark of the two, as the procfs functions would read them."""

    def __init__(self, live: int, trims: bool = True) -> None:
        self.live, self.free, self.trims = live, 0, trims
        self.hwm = live

    def alloc(self, n: int) -> None:
        self.free -= min(self.free, n)  # reused before the heap grows
        self.live += n
        self.hwm = max(self.hwm, self.live + self.free)

    def release(self, n: int) -> None:
        self.live -= n
        self.free += n

    def spike(self, n: int) -> None:
        """Allocate ``n`` and free it again (a step's or a pass's temporaries)."""
        self.alloc(n)
        self.release(n)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(procfs, "private_rss", lambda: self.live + self.free)
        monkeypatch.setattr(procfs, "peak_private_rss", lambda: self.hwm)
        monkeypatch.setattr(procfs, "reset_peak_rss", self._reset)
        monkeypatch.setattr(procfs, "release_free_heap", self._trim)

    def _reset(self) -> None:
        self.hwm = self.live + self.free

    def _trim(self) -> bool:
        if self.trims:
            self.free = 0
        return self.trims


def _train(process: FakeProcess, steps: int, transient: int = 100 * MIB) -> None:
    for _ in range(steps):
        process.spike(transient)


def _evaluate(process: FakeProcess, spike: int, left: int) -> None:
    """A held-out evaluation: ``spike`` of temporaries (freed, kept by the allocator),
    ``left`` still allocated after it (a traced predict function)."""
    process.spike(spike)
    process.alloc(left)


@pytest.mark.parametrize("spike,left", [
    (0, 0),  # an evaluation that costs nothing
    (300 * MIB, 0),  # above the training's transient, all freed
    (300 * MIB, 40 * MIB),  # and something left allocated
    (50 * MIB, 40 * MIB),  # within the training's transient, something left
])
def test_evaluations_between_segments_stay_out_of_the_training_peak(monkeypatch, spike, left):
    process = FakeProcess(live=500 * MIB)
    process.install(monkeypatch)
    peaks = procfs.TrainingPeak()
    peaks.start()
    for _ in range(4):  # evaluate, then train on: four rungs
        _train(process, 3)
        assert peaks.training() == 600 * MIB
        with peaks.evaluating():
            _evaluate(process, spike, left)
    evidence = peaks.evidence()
    assert evidence["evaluation_extra_bytes"] == max(0, spike - 100 * MIB)
    assert evidence["evaluation_resident_bytes"] == left * 4


def test_a_later_probe_of_the_worker_does_not_carry_an_earlier_evaluation(monkeypatch):
    process = FakeProcess(live=500 * MIB)
    process.install(monkeypatch)
    peaks = procfs.TrainingPeak()
    for _ in range(3):  # probes one after another, each evaluated twice
        peaks.start()
        for _ in range(2):
            _train(process, 2)
            with peaks.evaluating():
                _evaluate(process, 400 * MIB, 30 * MIB)
        assert peaks.training() == 600 * MIB


def test_memory_freed_since_an_evaluation_is_no_longer_subtracted(monkeypatch):
    """What an evaluation left and the training then freed (garbage collected) is taken
    off what is subtracted: the peak errs high, never low."""
    process = FakeProcess(live=500 * MIB)
    process.install(monkeypatch)
    peaks = procfs.TrainingPeak()
    peaks.start()
    _train(process, 2)
    with peaks.evaluating():
        _evaluate(process, 0, 40 * MIB)
    process.release(40 * MIB)  # freed while training on: the next step may reuse it
    _train(process, 2, transient=140 * MIB)  # the true training peak: 640 MiB
    with peaks.evaluating():
        pass
    assert peaks.training() == 640 * MIB
    assert peaks.evidence()["evaluation_resident_bytes"] == 0


def test_an_early_stop_reads_the_peak_of_every_segment(monkeypatch):
    process = FakeProcess(live=500 * MIB)
    process.install(monkeypatch)
    peaks = procfs.TrainingPeak()
    peaks.start()
    _train(process, 2, transient=200 * MIB)  # the first segment's peak: 700 MiB
    with peaks.evaluating():
        _evaluate(process, 300 * MIB, 10 * MIB)
    _train(process, 1)  # stops early in the second
    assert peaks.training() == 700 * MIB


def test_without_a_heap_to_release_nothing_is_subtracted(monkeypatch):
    """No ``malloc_trim`` (not glibc): what evaluation left cannot be told from what it
    freed, so nothing is subtracted (the peak errs high)."""
    process = FakeProcess(live=500 * MIB, trims=False)
    process.install(monkeypatch)
    peaks = procfs.TrainingPeak()
    peaks.start()
    _train(process, 2)
    with peaks.evaluating():
        _evaluate(process, 0, 40 * MIB)
    _train(process, 2)
    assert peaks.training() == 640 * MIB
    assert peaks.evidence()["evaluation_resident_bytes"] == 0


def test_a_probe_that_was_not_evaluated_has_no_evaluation_evidence(monkeypatch):
    FakeProcess(live=500 * MIB).install(monkeypatch)
    peaks = procfs.TrainingPeak()
    peaks.start()
    assert peaks.evidence() == {}
