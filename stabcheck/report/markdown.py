"""The run as a compact Markdown summary, for a pull-request comment or a CI job summary.

In the terminal report's order, the answer first: a title that says whether the
``--fail-on`` gate passed, the verdict line (``judge.summary``), the verdict grid per batch
size (one emoji and the terminal grid's word per cell), the recommended configuration with
its evidence, the failures grouped by cause (one entry per cause, with where, why and the
fix), notes and warnings; then the details: every failing probe's evidence (folded) and
the per-strategy summary. GitHub-flavoured Markdown: tables, ``<br>`` inside table cells.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from stabcheck.files import write_text_atomic
from stabcheck.judge.gate import fails
from stabcheck.judge.gridview import CATEGORY_ICONS, cell_text, column_label, grid_tables
from stabcheck.judge.quality import (
    MAX_QUALITY_ROWS,
    REGRESSION_COLUMNS,
    REGRESSION_NOTE,
    is_regression,
    regression_rows,
)
from stabcheck.judge.summary import Cause, RunSummary
from stabcheck.results import ProbeResult, RunReport
from stabcheck.text import FAILURE_SECTIONS, capped_batch_notes

__all__ = ["render_markdown", "write_markdown"]


# A PR comment stays short: at most this many probes listed per section.
MAX_LISTED = 15


def _escape(text: str) -> str:
    """Text safe inside a Markdown table cell or list item (no pipes, no line breaks)."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _title(report: RunReport, policy: frozenset[str]) -> str:
    results = report.results
    failing = sum(fails(r, policy) for r in results)
    n = len(results)
    if failing:
        return f"## ❌ stabcheck: {failing} of {n} probe{'s' if n != 1 else ''} failed"
    if not results:
        return "## ⚠️ stabcheck: no probe ran"
    return f"## ✅ stabcheck: {n} probe{'s' if n != 1 else ''} passed"


def _gate(policy: frozenset[str]) -> str:
    if "none" in policy or not policy:
        return "nothing (report only)"
    if "any" in policy:
        return "any trouble"
    return ", ".join(sorted(policy))


def _header(report: RunReport, policy: frozenset[str]) -> list[str]:
    data = report.dataset
    model = report.config.get("model")
    parts = [f"model {_code(str(model))}"] if model else []
    kind = ("regression target" if is_regression(report)
            else f"{len(data.class_names)} classes")
    parts.append(f"data {_code(data.source)} ({data.n_samples:,} samples, {kind})")
    parts.append(f"fails on: {_gate(policy)}")
    lines = [" · ".join(parts)]
    if report.interrupted:
        planned = f" of {report.probes_planned}" if report.probes_planned else ""
        lines += ["", f"> **Interrupted**: {len(report.results)}{planned} probes ran."]
    return lines


def _cell(result: ProbeResult | None) -> str:
    if result is None:
        return "·"
    return f"{CATEGORY_ICONS[result.verdict.category]} {_escape(cell_text(result))}"


def _grid(report: RunReport) -> list[str]:
    lines: list[str] = []
    for table in grid_tables(report):
        labels = [column_label(c) for c in table.columns]
        lines += ["", f"**batch size {table.batch_size}**", ""]
        regression = is_regression(report)
        head = "target" if regression else "class weight"
        lines.append(f"| {head} | " + " | ".join(f"{a}<br>{b}" for a, b in labels) + " |")
        lines.append("| --- | " + " | ".join(":---:" for _ in labels) + " |")
        for strategy, cells in table.rows:
            label = "regression" if regression else strategy
            lines.append(
                f"| {_escape(label)} | " + " | ".join(_cell(c) for c in cells) + " |"
            )
    return lines


def _failures(report: RunReport, policy: frozenset[str]) -> list[str]:
    lines: list[str] = []
    for category, title, _style in FAILURE_SECTIONS:  # the terminal report's sections
        found = [r for r in report.results if r.verdict.category is category]
        if not found:
            continue
        gate = any(fails(r, policy) for r in found)
        note = "" if gate else " (not counted by --fail-on)"
        lines += ["", f"**{CATEGORY_ICONS[category]} {title} ({len(found)})**{note}", ""]
        ran = [r for r in found if r.ran]
        for result in ran[:MAX_LISTED]:
            lines.append(
                f"- {_code(result.probe.id)}: **{result.verdict.outcome.value}**, "
                f"{_escape(result.verdict.summary)}"
            )
        if len(ran) > MAX_LISTED:
            lines.append(f"- … and {len(ran) - MAX_LISTED} more (see the JSON result)")
        # Probes not run because one of the same memory footprint ran out, as the terminal
        # report shows them: one line per probe they were inferred from.
        inferred = Counter(str(r.verdict.evidence.get("inferred_from")) for r in found
                           if not r.ran)
        for source, count in inferred.items():
            probes = f"{count} more probe{'s' if count != 1 else ''}"
            lines.append(f"- + {probes} of the same batch size and optimizer not run: they "
                         f"would exhaust memory like {_code(source)}")
    return lines


def _recommendation(summary: RunSummary) -> list[str]:
    """The recommended configuration in one line, then its evidence and what it beat."""
    lines = ["", "### Recommended configuration", ""]
    rec = summary.recommendation
    if rec is None:
        return lines + [f"**{_escape(summary.no_recommendation or '')}**"]
    lines.append(f"**{_code(', '.join(rec.words()))}**")
    lines.append("")
    scores = rec.scores()
    scores = f": {scores}" if scores else ""
    lines.append(f"- evidence: probe {_code(rec.probe_id)}{_escape(scores)}")
    lines.append(f"- {_escape(rec.why())}")
    lines += [f"- not {_code(item.probe_id)}: {_escape(item.reason)}" for item in rec.rejected]
    return lines


def _regression_errors(report: RunReport) -> list[str]:
    """A regression run's held-out errors per probe that trained (best R² first)."""
    rows = regression_rows(report)
    if not rows:
        return []
    lines = ["", "### Held-out errors of the settings that trained", "",
             "| probe | " + " | ".join(REGRESSION_COLUMNS) + " |",
             "| --- | --- | ---: | ---: | ---: |"]
    for result, cells in rows[:MAX_QUALITY_ROWS]:
        lines.append(f"| {_code(result.probe.id)} | " + " | ".join(cells) + " |")
    return lines + ["", f"<sub>{_escape(REGRESSION_NOTE)}</sub>"]


def _strategies(report: RunReport, summary: RunSummary) -> list[str]:
    """The per-strategy summary as a table (nothing where no strategy has a probe)."""
    if is_regression(report):  # no class weights: the held-out errors instead
        return _regression_errors(report)
    rows = summary.strategy_rows
    if not rows:
        return []
    lines = ["", "### Per class-weight strategy", "",
             "| class weight | largest stable lr | clipping rescued | best stable setting "
             "| macro-F1 | minority recall |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for strategy, lr, rescue, setting, f1, recall in rows:
        best = "_none stable_" if setting is None else _escape(setting)
        lines.append(f"| {_escape(strategy)} | {lr} | {rescue} | {best} | {f1} | {recall} |")
    return lines


def _causes(report: RunReport, causes: tuple[Cause, ...], policy: frozenset[str]) -> list[str]:
    """One entry per cause: its title in bold (marked where ``--fail-on`` does not count
    it), its where / why / fix as a list under it."""
    if not causes:
        return []
    by_id = {r.probe.id: r for r in report.results}
    lines = ["", "### Failures by cause"]
    for cause in causes:
        gate = any(fails(by_id[pid], policy) for pid in cause.probe_ids if pid in by_id)
        note = "" if gate else " (not counted by --fail-on)"
        lines += ["", f"**{CATEGORY_ICONS[cause.category]} {_escape(cause.title)}**{note}"]
        if cause.details:
            lines.append("")
            lines += [f"- {_escape(detail)}" for detail in cause.details]
    return lines


def render_markdown(report: RunReport, summary: RunSummary, policy: frozenset[str]) -> str:
    """The Markdown summary of ``report``, judged by the ``--fail-on`` ``policy``.

    Args:
        report: the run.
        summary: its judgement (``stabcheck.judge.summary.summarize``, once per run).
        policy: the parsed ``--fail-on`` policy (``stabcheck.judge.gate.parse_fail_on``).

    Returns:
        The document, ending in a newline.
    """
    lines = [_title(report, policy), ""]
    lines += _header(report, policy)
    lines += ["", f"**{_escape(summary.verdict)}**"]
    if summary.spending:
        lines += ["", _escape(summary.spending)]
    if report.results:
        lines += _grid(report)
        notes = capped_batch_notes(report.results)
        if notes:
            lines += [""] + [f"_{_escape(note)}_" for note in notes]
        lines += _recommendation(summary)
    lines += _causes(report, summary.causes, policy)
    if summary.notes:
        lines += ["", "### Notes", ""]
        lines += [f"- {_escape(note)}" for note in summary.notes]
    if report.warnings:
        lines += ["", "<details><summary>Warnings</summary>", ""]
        lines += [f"- {_escape(w)}" for w in report.warnings]
        lines += ["", "</details>"]
    failures = _failures(report, policy)
    if failures:
        lines += ["", "<details><summary>Every failing probe's evidence</summary>"]
        lines += failures
        lines += ["", "</details>"]
    if report.results:
        lines += _strategies(report, summary)
    legend = " · ".join(f"{icon} {category.value}" for category, icon in CATEGORY_ICONS.items())
    lines += ["", f"<sub>{legend} · @N = at step N · stabcheck {report.stabcheck_version}</sub>"]
    return "\n".join(lines) + "\n"


def write_markdown(report: RunReport, summary: RunSummary, path: Path | str,
                   policy: frozenset[str]) -> None:
    """Write ``render_markdown(report, summary, policy)`` to ``path`` (atomically)."""
    write_text_atomic(Path(path), render_markdown(report, summary, policy))
