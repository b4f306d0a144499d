"""The progress view on stderr: failures are echoed there only where stderr is all the user
sees; otherwise the report says them, once."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from stabcheck.cli.progress import ProgressView
from stabcheck.results import Outcome
from stabcheck.run.engine import Progress
from tests.report.terminal.test_report import make_result

RESULTS = [make_result(Outcome.ERROR, bs=7), make_result(Outcome.STABLE, bs=8),
           make_result(Outcome.DIVERGED, lr=0.1)]


def _stderr(echo: bool) -> str:
    out = io.StringIO()
    with ProgressView(Console(file=out, width=200), echo_failures=echo) as view:
        view.update(Progress("planned", total=len(RESULTS)))
        for step, result in enumerate(RESULTS, 1):
            view.update(Progress("result", probe=result.probe, step=step, result=result))
    view.release()
    return out.getvalue()


@pytest.mark.parametrize("echo", [False, True])
def test_failures_reach_stderr_only_where_it_is_the_only_output(echo: bool) -> None:
    text = _stderr(echo)
    lines = [line for line in text.splitlines() if line.strip()]
    if not echo:
        assert lines == []
        return
    assert lines == [
        "  cw=balanced,lr=0.01,clip=none,bs=7: error - the loss expects 3 classes but the "
        "labels hold 2",
        "  cw=balanced,lr=0.1,clip=none,bs=32: diverged - loss rose to 41x its best at step 12",
    ]
