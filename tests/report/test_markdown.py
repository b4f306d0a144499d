"""The Markdown summary: a snapshot of a hand-made report, and the rules behind it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from stabcheck.judge.gate import parse_fail_on
from stabcheck.judge.summary import summarize
from stabcheck.report.markdown import render_markdown, write_markdown
from stabcheck.results import Outcome, Verdict
from tests.conftest import TESTS
from tests.report.terminal.test_report import make_report as make_grid_report
from tests.report.terminal.test_report import quality_grid
from tests.sample_report import make_report

SNAPSHOT = TESTS / "snapshots" / "sample_report.md"
DEFAULT = parse_fail_on(["numerical,memory,crash"])


def test_matches_the_snapshot():
    """Set STABCHECK_UPDATE_SNAPSHOTS=1 to rewrite the snapshot after a deliberate change."""
    text = render_markdown(make_report(), summarize(make_report()), DEFAULT)
    if os.environ.get("STABCHECK_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert text == SNAPSHOT.read_text(encoding="utf-8")


def test_title_says_pass_or_fail_by_the_policy():
    report = make_report()
    judged = summarize(report)
    assert render_markdown(report, judged, DEFAULT).startswith(
        "## ❌ stabcheck: 9 of 12 probes failed")
    assert render_markdown(report, summarize(report), parse_fail_on(["learning"])).startswith(
        "## ❌ stabcheck: 1 of 12 probes failed")
    passed = render_markdown(report, summarize(report), parse_fail_on(["none"]))
    assert passed.startswith("## ✅ stabcheck: 12 probes passed")
    assert "fails on: nothing (report only)" in passed


def test_grid_has_a_table_per_batch_size_with_emoji_cells():
    text = render_markdown(make_report(), summarize(make_report()), DEFAULT)
    assert "**batch size 32**" in text and "**batch size 4096**" in text
    assert "| class weight | lr 0.001<br>no clip | lr 0.1<br>no clip |" in text
    assert "| x100 | ⚠️ overcorr | ❌ NaN @37 |" in text
    assert "| none | 💥 OOM host | 💥 OOM host |" in text
    assert "| none | ✅ ok | 💀 crashed @5 |" in text


def test_categories_not_counted_by_the_policy_are_marked():
    text = render_markdown(make_report(), summarize(make_report()), DEFAULT)
    assert "**⚠️ Learning problems (1)** (not counted by --fail-on)" in text
    assert "**❌ Numerical failures (2)**\n" in text


def test_pipes_and_newlines_in_summaries_do_not_break_the_table_or_list(tmp_path: Path):
    report = make_report()
    first = report.results[1]
    odd = dataclasses.replace(first, verdict=Verdict(Outcome.CRASHED, first.verdict.evidence,
                                                     "died | badly\nwith a second line"))
    report = dataclasses.replace(report, results=(report.results[0], odd, *report.results[2:]))
    path = tmp_path / "out" / "summary.md"
    write_markdown(report, summarize(report), path, DEFAULT)
    text = path.read_text(encoding="utf-8")
    assert "died \\| badly with a second line" in text


def test_long_sections_are_cut_short():
    report = make_report()
    many = tuple(report.results[5] for _ in range(40))  # the NaN probe
    bigger = dataclasses.replace(report, results=report.results + many)
    text = render_markdown(bigger, summarize(bigger), DEFAULT)
    assert "- … and 27 more (see the JSON result)" in text


def test_an_empty_run():
    report = dataclasses.replace(make_report(), results=(), probes_planned=0)
    text = render_markdown(report, summarize(report), DEFAULT)
    assert text.startswith("## ⚠️ stabcheck: no probe ran")
    assert "### Failures" not in text


def test_ends_with_the_recommended_configuration_and_the_strategy_table():
    grid = make_grid_report(quality_grid())
    text = render_markdown(grid, summarize(grid), DEFAULT)
    tail = text[text.index("### Recommended configuration"):]
    assert tail.index("### Per class-weight strategy") > 0
    assert "**`class_weight=balanced, lr=0.01, clip=global_norm=1, batch_size=32`**" in tail
    assert ("- evidence: probe `cw=balanced,lr=0.01,clip=global_norm=1,bs=32`: macro-F1 0.79, "
            "minority recall 0.80 (class 1), PR-AUC 0.70, accuracy 90.0%") in tail
    assert "- not `cw=balanced,lr=0.01,clip=none,bs=32`: macro-F1 0.80, but lr 0.1" in tail
    assert "| balanced | 0.1 | 1 of 1 | lr 0.01, no clip | 0.80 | 0.80 |" in tail
    assert "| x100 | — | — | _none stable_ | — | — |" in tail
    assert tail.rstrip().splitlines()[-1].startswith("<sub>")


def test_says_so_when_no_setting_was_stable():
    report = make_report()
    unstable = tuple(r for r in report.results if r.verdict.outcome is not Outcome.STABLE)
    none_stable = dataclasses.replace(report, results=unstable)
    text = render_markdown(none_stable, summarize(none_stable), DEFAULT)
    assert "### Recommended configuration\n\n**No setting in this grid was stable" in text
    assert "| none | — | — | _none stable_ | — | — |" in text


def test_an_empty_run_has_no_recommendation():
    report = dataclasses.replace(make_report(), results=(), probes_planned=0)
    text = render_markdown(report, summarize(report), DEFAULT)
    assert "Recommended configuration" not in text and "Per class-weight" not in text
