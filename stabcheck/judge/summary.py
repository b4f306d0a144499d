"""The answer first: the run's verdict in one line, and its failures grouped by cause.

``summarize`` judges a run once for every renderer (terminal, Markdown, HTML):

- ``verdict``: ``"36 probes: 9 stable, 6 diverged, 18 out of host memory (17 not run) -
  recommended: balanced, lr 0.001, global_norm=1.0, batch 32"``;
- ``causes``: one entry per cause, not per probe (``"lr 0.1 diverged for every weighting
  (6 probes)"``), each with the sentences that say where, why and what fixes it (the
  numerical ones judged by ``judge.explain``);
- ``notes``: what the stable probes still ask for (a spike, too few steps...).

Pure: plain strings and frozen dataclasses; the views add the markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stabcheck.judge.advice import (
    OVERCORRECTED_WHY,
    memory_failures,
    memory_statement,
    minority_fix,
    overcorrection_fix,
    split_collapses,
    warning_advice,
    why_crashed,
)
from stabcheck.judge.explain import NumericalCause, numerical_causes, where_it_failed
from stabcheck.judge.gridview import ProbeGrid, unique
from stabcheck.judge.quality import is_regression
from stabcheck.judge.ranking import eligible, ranked
from stabcheck.judge.recommend import (
    recommended_configuration,
    strategy_rows,
    strategy_summary,
)
from stabcheck.judge.recommendation import Recommendation, no_recommendation_text
from stabcheck.judge.spending import spending_line
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import fmt_lr, join, plural

__all__ = ["OUTCOME_WORDS", "Cause", "RunSummary", "failure_causes", "summarize",
           "verdict_line"]

# How the verdict line counts each outcome, in its order.
OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.STABLE: "stable",
    Outcome.NON_FINITE: "NaN/Inf",
    Outcome.DIVERGED: "diverged",
    Outcome.EXPLODING_GRADIENTS: "exploding gradients",
    Outcome.OOM_HOST: "out of host memory",
    Outcome.OOM_GPU: "out of GPU memory",
    Outcome.CRASHED: "crashed",
    Outcome.TIMEOUT: "timed out",
    Outcome.OVERCORRECTED: "overcorrected",
    Outcome.MINORITY_COLLAPSE: "minority collapse",
    Outcome.STALLED: "stalled",
    Outcome.ERROR: "could not start",
}

# What a group of numerical failures did, where they all did the same.
_NUMERICAL_VERBS = {
    Outcome.NON_FINITE: "turned NaN/Inf",
    Outcome.DIVERGED: "diverged",
    Outcome.EXPLODING_GRADIENTS: "had exploding gradients",
}


@dataclass(frozen=True)
class Cause:
    """Failures one cause explains: a headline, the probes, and where / why / the fix."""

    category: Category
    headline: str
    probe_ids: tuple[str, ...]
    not_run: int = 0
    details: tuple[str, ...] = ()
    # The last detail is the largest batch size that fits, as the memory ladder forecast
    # it: a view that shows the ladder's forecast beside the causes leaves it out.
    ends_with_forecast: bool = False

    def details_beside_memory(self) -> tuple[str, ...]:
        """The details where the memory ladder's forecast is shown too."""
        return self.details[:-1] if self.ends_with_forecast else self.details

    @property
    def title(self) -> str:
        """The headline with its count: ``"lr 0.1 diverged for every weighting (6
        probes)"``."""
        count = plural(len(self.probe_ids), "probe")
        if self.not_run:
            count += f", {self.not_run} not run"
        return f"{self.headline} ({count})"


StrategyRow = tuple[str, str, str, "str | None", str, str]


@dataclass(frozen=True)
class RunSummary:
    """The run's one judgement: the verdict line, the failures by cause, the notes on the
    stable probes, how the run spent its time and steps (``judge.spending``; None: no
    staged grid), the recommendation (``judge.recommendation.Recommendation``; None: none,
    and ``no_recommendation`` says why) and how each class-weight strategy fared
    (``strategies``: the JSON result's ``strategy_summary``; ``strategy_rows``: the same
    as a table's cells, ``judge.recommend.strategy_rows``)."""

    verdict: str
    causes: tuple[Cause, ...]
    notes: tuple[str, ...]
    spending: str | None = None
    recommendation: Recommendation | None = None
    no_recommendation: str | None = None
    strategies: tuple[dict[str, Any], ...] = ()
    strategy_rows: tuple[StrategyRow, ...] = ()


def summarize(report: RunReport) -> RunSummary:
    """The run judged once, for every view: the terminal, Markdown, HTML and JUnit reports,
    the JSON result and the Python API's ``Result`` render this; ``stabcheck report``
    rebuilds it from a saved JSON result by this same function."""
    rec = recommended_configuration(report)
    strategies = strategy_summary(report)
    return RunSummary(
        verdict_line(report, rec), tuple(failure_causes(report)), tuple(_notes(report)),
        spending_line(report), rec,
        None if rec is not None else no_recommendation_text(report),
        tuple(strategies), tuple(strategy_rows(report, strategies)))


# --------------------------------------------------------------------------- verdict


def verdict_line(report: RunReport, rec: Recommendation | None) -> str:
    """``"12 probes: 7 stable, 3 diverged, 2 out of host memory (1 not run) - recommended:
    balanced, lr 0.001, global_norm=1.0, batch 64"``; the stable count is always there.
    ``rec``: the run's recommendation (``recommended_configuration``)."""
    results = report.results
    if not results:
        head = "no probe ran"
    else:
        parts = []
        for outcome, word in OUTCOME_WORDS.items():
            mine = [r for r in results if r.verdict.outcome is outcome]
            if not mine and outcome is not Outcome.STABLE:
                continue
            skipped = sum(not r.ran for r in mine)
            unjudged = sum(r.verdict.evidence.get("not_judged_because")
                           in ("not_contender", "budget") for r in mine)
            notes = [f"{skipped} not run"] if skipped else []
            if unjudged:
                notes.append(f"{unjudged} not judged for learning")
            parts.append(f"{len(mine)} {word}" + (f" ({', '.join(notes)})" if notes else ""))
        head = f"{plural(len(results), 'probe')}: {', '.join(parts)}"
    if report.interrupted:
        planned = f" of {report.probes_planned}" if report.probes_planned else ""
        head += f" (interrupted: {len(results)}{planned} ran)"
    if not results:
        return head
    return f"{head} - {_recommended(report, rec)}"


def _recommended(report: RunReport, rec: Recommendation | None) -> str:
    if rec is None:
        stable = any(r.verdict.outcome is Outcome.STABLE for r in report.results)
        if stable and any(c.disqualified for c in ranked(report)):
            return "nothing recommended (every finalist died or lost its skill under a seed)"
        if stable and any(eligible(r) for r in report.results) is False and \
                any((r.verdict.evidence.get("schedule") or {}).get("contender") is False
                    for r in report.results):
            return "nothing recommended (no setting reached the contenders' rungs)"
        return "nothing to recommend (memory measurements only)" if stable else \
            "no setting was stable"
    clip = "no clip" if rec.clip == "none" else rec.clip
    words = [f"lr {fmt_lr(rec.learning_rate)}", clip, f"batch {rec.batch_size}"]
    if not is_regression(report):
        cw = str(rec.class_weight)
        words.insert(0, "no class weights" if cw == "none" else cw)
    return "recommended: " + ", ".join(words)


# ---------------------------------------------------------------------------- causes


def failure_causes(report: RunReport) -> list[Cause]:
    """The run's failures, one entry per cause: numerical (by ``judge.explain``), memory,
    crashes and timeouts, learning problems, probes that could not start."""
    return (_numerical(report) + _memory(report) + _crashes(report.results)
            + _learning(report) + _errors(report.results))


def _ids(results: Sequence[ProbeResult]) -> tuple[str, ...]:
    return tuple(r.probe.id for r in results)


def _lrs(results: Sequence[ProbeResult]) -> str:
    return ", ".join(fmt_lr(v) for v in sorted({r.probe.settings.learning_rate for r in results}))


def _verb(results: Sequence[ProbeResult]) -> str:
    outcomes = {r.verdict.outcome for r in results}
    return _NUMERICAL_VERBS[outcomes.pop()] if len(outcomes) == 1 else "failed numerically"


def _numerical(report: RunReport) -> list[Cause]:
    grid = ProbeGrid(report)
    return [_numerical_cause(report, grid, cause) for cause in numerical_causes(report)]


def _numerical_cause(report: RunReport, grid: ProbeGrid, cause: NumericalCause) -> Cause:
    failures = cause.failures
    verb = _verb(failures)
    lrs = _lrs(failures)
    if cause.kind == "lr":
        headline = f"lr {lrs} {verb}"
        if not is_regression(report):
            strategies = unique(r.probe.settings.class_weight for r in failures)
            every = set(strategies) >= set(grid.strategies) and len(grid.strategies) > 1
            headline += (" for every weighting" if every
                         else f" for class_weight={join(strategies)}")
        clips = {r.probe.settings.clip for r in failures}
        if len(clips) > 1:
            headline += ", with and without clipping"
        elif clips == {"none"} and len(grid.clips) > 1:
            headline += " without clipping"
        elif clips != {"none"}:
            headline += f" with clip={clips.pop()}"
        return Cause(Category.NUMERICAL, headline, _ids(failures), details=cause.details)
    strategy = failures[0].probe.settings.class_weight
    headline = f"class_weight={strategy} {verb} at lr {lrs}"
    if cause.kind == "weights":
        headline += ", where milder weights trained"
    first = min(failures, key=lambda r: r.probe.settings.learning_rate)
    where = f"Where: {first.probe.id}: {where_it_failed(first)}."
    return Cause(Category.NUMERICAL, headline, _ids(failures), details=(where, *cause.details))


def _memory(report: RunReport) -> list[Cause]:
    found = memory_statement(report)
    if found is None:
        return []
    statement, fits = found
    failures = memory_failures(report)
    ran = [r for r in failures if r.ran]
    details = [f"Where: {r.probe.id}: {r.verdict.summary}." for r in ran[:1]]
    not_run = len(failures) - len(ran)
    if not_run:
        details.append(f"{plural(not_run, 'probe')} of the same batch size and optimizer "
                       f"{'was' if not_run == 1 else 'were'} not run: "
                       f"{'it' if not_run == 1 else 'they'} would run out the same way.")
    if fits is not None:
        details.append(f"Fix: {fits}.")
    forecast = fits is not None and report.memory is not None \
        and report.memory.forecast_batch is not None
    return [Cause(Category.MEMORY, statement, _ids(failures), not_run, tuple(details),
                  ends_with_forecast=forecast)]


def _crashes(results: Sequence[ProbeResult]) -> list[Cause]:
    causes = []
    crashed = [r for r in results if r.verdict.outcome is Outcome.CRASHED]
    for why in unique(why_crashed(r) for r in crashed):
        mine = [r for r in crashed if why_crashed(r) == why]
        causes.append(Cause(Category.CRASH, f"the worker died of {why}", _ids(mine), details=(
            f"Where: {mine[0].probe.id}: {mine[0].verdict.summary}.",
            "Its stderr tail is in the JSON result (probes[].evidence.stderr_tail).")))
    timeouts = [r for r in results if r.verdict.outcome is Outcome.TIMEOUT]
    if timeouts:
        causes.append(Cause(Category.CRASH, "timed out", _ids(timeouts), details=(
            f"Where: {timeouts[0].probe.id}: {timeouts[0].verdict.summary}.",
            "Fix: raise --timeout or lower --steps.")))
    return causes


def _learning(report: RunReport) -> list[Cause]:
    results = report.results

    def having(outcome: Outcome) -> list[ProbeResult]:
        return [r for r in results if r.verdict.outcome is outcome]

    def strategies(chosen: Sequence[ProbeResult]) -> str:
        return join(unique(r.probe.settings.class_weight for r in chosen))

    causes = []
    over = having(Outcome.OVERCORRECTED)
    if over:
        causes.append(Cause(Category.LEARNING, f"class_weight={strategies(over)} overcorrected",
                            _ids(over), details=(
            f"{OVERCORRECTED_WHY[0].upper()}{OVERCORRECTED_WHY[1:]}.",
            f"Fix: {overcorrection_fix(report, over)}.")))
    minority, majority = split_collapses(results)
    if minority:
        causes.append(Cause(Category.LEARNING, f"with class_weight={strategies(minority)} a "
                            "minority class is never predicted", _ids(minority),
                            details=(f"Fix: {minority_fix(minority)}.",)))
    if majority:
        name = majority[0].verdict.evidence.get("majority_class")
        which = f" ({name})" if name is not None else ""
        causes.append(Cause(Category.LEARNING, f"with class_weight={strategies(majority)} at lr "
                            f"{_lrs(majority)} the majority class{which} is never predicted",
                            _ids(majority), details=(
            "It predicts only rarer classes, which is not a class weighting it lacks.",
            "Fix: a lower learning rate or milder weights.")))
    stalled = having(Outcome.STALLED)
    if stalled:
        causes.append(Cause(Category.LEARNING, "stalled: the loss did not move, or a "
                            "regression model predicts no better than the mean (R² <= 0)",
                            _ids(stalled), details=(
            "Fix: the learning rate may be too low, or --steps too few.",)))
    return causes


def _errors(results: Sequence[ProbeResult]) -> list[Cause]:
    errors = [r for r in results if r.verdict.category is Category.ERROR]
    causes = []
    for summary in unique(r.verdict.summary for r in errors):
        mine = [r for r in errors if r.verdict.summary == summary]
        causes.append(Cause(Category.ERROR, f"could not start: {summary}", _ids(mine)))
    return causes


# ----------------------------------------------------------------------------- notes


def _notes(report: RunReport) -> list[str]:
    """What the stable probes still ask for, and the word where all were stable."""
    results = report.results
    notes = warning_advice(results)
    if results and all(r.verdict.outcome is Outcome.STABLE for r in results) and not notes:
        notes.append("every setting in this grid trained without trouble")
    return notes
