"""The progress of ``stabcheck.probe``: a bar in Jupyter and in a terminal.

In a Jupyter kernel the bar is an HTML ``<progress>`` element in a display that is
updated in place (``IPython.display``'s ``display_id``: any Jupyter front end, no widget
extension); in a terminal it is rich's bar on stderr, as the CLI draws it; elsewhere
(a script whose stderr is a file) nothing is drawn. The engine's events arrive through
its progress callback.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any

from stabcheck.run.engine import Progress

_EVERY_S = 0.25  # redraw the Jupyter bar at most this often (step events are many)


class ProgressBar:
    """Follows the engine's progress events; a context manager around the run."""

    def __init__(self) -> None:
        self.description = "starting"
        self.total: int | None = None
        self.completed = 0
        self.detail = ""
        self.failed = 0
        self._drawn_at = 0.0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, event: Progress) -> None:
        if event.kind == "loading":
            self.description = event.message
        elif event.kind in ("planned", "stage"):
            self.description = "probing" if event.kind == "planned" else event.message
            self.total, self.completed = event.total, 0
        elif event.kind == "step" and event.probe is not None:
            self.detail = f"{event.probe.id} step {event.step}"
            if time.monotonic() - self._drawn_at < _EVERY_S:
                return
        elif event.kind == "result" and event.result is not None:
            self.completed = event.step
            self.detail = (f"{event.result.probe.id}: {event.result.verdict.outcome.value}")
            self.failed += event.result.verdict.category.value != "ok"
        self._drawn_at = time.monotonic()
        self.draw()

    def draw(self) -> None:  # pragma: no cover - overridden
        pass

    def close(self) -> None:
        pass


class JupyterBar(ProgressBar):
    """An HTML progress bar in the cell's output, updated in place."""

    def __init__(self) -> None:
        super().__init__()
        from IPython.display import HTML, display

        self._html = HTML
        self._handle = display(HTML(self._markup()), display_id=True)

    def _markup(self) -> str:
        value = "" if self.total is None else f" value='{self.completed}' max='{self.total}'"
        count = "" if self.total is None else f" {self.completed}/{self.total}"
        failed = f" · {self.failed} not ok" if self.failed else ""
        return (f"<div class='stabcheck-progress'><b>stabcheck</b> "
                f"{html.escape(self.description)}{count}{failed} "
                f"<progress{value} style='width:40%;vertical-align:middle'></progress> "
                f"<code>{html.escape(self.detail)}</code></div>")

    def draw(self) -> None:
        self._handle.update(self._html(self._markup()))

    def close(self) -> None:
        if self.total is not None:
            self.description, self.detail = "done", ""
        self.draw()


class TerminalBar(ProgressBar):
    """rich's progress bar on stderr; it disappears when the run ends."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bar

        self._bar = Bar(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[detail]}"),
                        console=Console(stderr=True), transient=True)
        self._task = self._bar.add_task("starting", total=None, detail="")
        self._bar.start()

    def draw(self) -> None:
        self._bar.update(self._task, description=self.description, total=self.total,
                         completed=self.completed, detail=self.detail)

    def close(self) -> None:
        self._bar.stop()


def progress_bar(enabled: bool) -> ProgressBar:
    """The bar for where this runs: Jupyter, a terminal, or none."""
    if not enabled:
        return ProgressBar()
    if _in_jupyter():
        return JupyterBar()
    if sys.stderr is not None and sys.stderr.isatty():
        return TerminalBar()
    return ProgressBar()


def _in_jupyter() -> bool:
    """A Jupyter kernel (IPython's ZMQ shell), told without importing IPython."""
    ipython: Any = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"
