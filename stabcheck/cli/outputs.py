"""The files a run writes besides the terminal report: JUnit XML, Markdown, HTML."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from stabcheck.errors import UsageError
from stabcheck.results import RunReport


def output_flags(junit: Path | None, markdown: Path | None, html: Path | None) -> dict:
    return {"junit": str(junit) if junit else None,
            "markdown": str(markdown) if markdown else None, "html": str(html) if html else None}


def write_outputs(result: RunReport, policy: frozenset[str], console: Console,
                   junit: Path | None, markdown: Path | None, html: Path | None) -> None:
    """Write the JUnit, Markdown and HTML files that were asked for, and say so."""
    from stabcheck.report.html import write_html
    from stabcheck.report.junit import write_junit
    from stabcheck.report.markdown import write_markdown

    for path, write, what in ((junit, write_junit, "JUnit XML"),
                              (markdown, write_markdown, "Markdown summary"),
                              (html, write_html, "HTML report")):
        if path is None:
            continue
        try:
            write(result, path, policy)
        except OSError as exc:
            raise UsageError(f"cannot write the {what} to {path}: {exc.strerror or exc}") from None
        console.print(f"{what} written to {path}", highlight=False)
