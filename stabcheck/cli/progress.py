"""The progress bar of a run, on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from stabcheck.results import Category, Probe


class ProgressView:
    """A progress bar over probes on stderr; shows the probe and step running now, and how
    many probes failed so far.

    With ``echo_failures`` (stderr is the only output the user sees: the report went to a
    file), a probe that did not end ``ok`` also gets a line on stderr as it ends; ``error``
    lines are held back until some probe ends otherwise (or ``release``), so that a run in
    which every probe ended ``error`` leaves only its one-line usage error on stderr.
    Without it, the failures are left to the report (stdout): no line says them twice.
    """

    def __init__(self, console: Console, *, echo_failures: bool = False) -> None:
        self._held: list[str] = []
        self._hold = True
        self._echo = echo_failures
        self._failed = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[failed]}"),
            TextColumn("{task.fields[detail]}"), console=console, transient=True,
        )
        self._task = self._progress.add_task("starting", total=None, detail="", failed="")

    def __enter__(self) -> ProgressView:
        # Only a terminal gets the live bar: in a CI log (or a pipe) it draws nothing, and
        # stopping it there prints a blank line before a usage error's one line.
        if self._progress.console.is_terminal:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress.live.is_started:
            self._progress.stop()

    def release(self) -> None:
        """Print the held ``error`` lines, and hold none from now on."""
        self._hold = False
        for line in self._held:
            self._progress.console.print(line, highlight=False, markup=False)
        self._held.clear()

    def update(self, event: object) -> None:
        from stabcheck.run.engine import Progress as Event

        assert isinstance(event, Event)
        if event.kind == "loading":
            self._progress.update(self._task, description=event.message)
        elif event.kind == "planned":
            self._progress.update(self._task, description="probing", total=event.total,
                                  completed=0)
        elif event.kind == "stage":  # first rung, contenders, seeds: jobs of the stage
            self._progress.update(self._task, description=event.message, total=event.total,
                                  completed=0)
        elif event.kind == "step" and event.probe is not None:
            self._progress.update(self._task, detail=step_text(event.probe, event.step))
        elif event.kind == "result" and event.result is not None:
            verdict = event.result.verdict
            self._failed += verdict.category is not Category.OK
            self._progress.update(self._task, completed=event.step,
                                  failed=f"{self._failed} not ok" if self._failed else "")
            if not self._echo:
                return
            if verdict.category is not Category.ERROR:
                self.release()
            if verdict.category is not Category.OK:
                seed = "" if event.seed is None else f" (seed {event.seed})"
                line = (f"  {event.result.probe.id}{seed}: {verdict.outcome.value} - "
                        f"{verdict.summary}")
                if self._hold:
                    self._held.append(line)
                else:
                    self._progress.console.print(line, highlight=False, markup=False)


def step_text(probe: Probe, step: int) -> str:
    """``cw=none,lr=0.01,clip=none,bs=32 step 12/25``: the step and the rung it trains
    to."""
    target = next((r for r in probe.rungs if r >= step), probe.horizon)
    return f"{probe.id} step {step}/{target}"
