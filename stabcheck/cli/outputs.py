"""The files a run writes besides the terminal report: JUnit XML, Markdown, HTML."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from stabcheck.errors import UsageError
from stabcheck.judge.summary import RunSummary
from stabcheck.results import RunReport


def output_flags(junit: Path | None, markdown: Path | None, html: Path | None) -> dict:
    return {"junit": str(junit) if junit else None,
            "markdown": str(markdown) if markdown else None, "html": str(html) if html else None}


def write_outputs(result: RunReport, judged: RunSummary, policy: frozenset[str],
                  console: Console, junit: Path | None, markdown: Path | None,
                  html: Path | None) -> None:
    """Write the JUnit, Markdown and HTML files that were asked for, and say so
    (``judged``: the run's one judgement, ``stabcheck.judge.summary.summarize``)."""
    from stabcheck.report.html import write_html
    from stabcheck.report.junit import write_junit
    from stabcheck.report.markdown import write_markdown

    for path, write, what in ((junit, lambda p, q: write_junit(result, p, q), "JUnit XML"),
                              (markdown, lambda p, q: write_markdown(result, judged, p, q),
                               "Markdown summary"),
                              (html, lambda p, q: write_html(result, judged, p, q),
                               "HTML report")):
        if path is None:
            continue
        try:
            write(path, policy)
        except OSError as exc:
            raise UsageError(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None
        console.print(f"{what} written to {path}", highlight=False)
