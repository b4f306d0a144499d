"""Who climbs past the first rung, within what budget: the decisions between stages.

The engine runs a grid in stages (``stabcheck.run.stages``); between two stages it asks
this module, with the results so far, what to run next. Every answer is a pure function
of those results and the budget left, so a resumed run, which reads the same results
from its journal, makes the same decisions.

    stage 1  every setting to the first rung   numerical / memory verdicts are final
               (a learning problem climbs to the second rung for its trend,
                a numerical risk to --steps)
    stage 2  the contenders (the recommendation's finalists at the first rung) to
             --steps, and beyond while their learning verdict is unsettled
    stage 3  the leading contender under the other seeds; the next contender's seeds
             only when the leader's worst seed falls behind it

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stabcheck.judge.ranking import FINALISTS, Ranked, finalists, ranked, seed_tolerance
from stabcheck.judge.rungs import Ladder
from stabcheck.results import Category, ProbeResult, RunReport


@dataclass(frozen=True)
class StepBudget:
    """The optimizer steps a run may still train (None: no bound in steps)."""

    left: int | None

    def affords(self, steps: int) -> bool:
        return self.left is None or steps <= self.left

    def spend(self, steps: int) -> StepBudget:
        return self if self.left is None else StepBudget(self.left - steps)


def default_budget(settings: int, ladder: Ladder, seeds: int) -> int:
    """The default bound on a run's optimizer steps: twice what a plain ``fit`` of every
    setting at ``steps`` trains, and at least what the schedule spends when it spends the
    most it can on a small grid (every setting to the second rung, the finalists and the
    leader's other seeds to the ladder's top). It bounds a run that goes wrong; a run
    spends far less: a setting stops as soon as its verdict is in."""
    return max(2 * settings * ladder.steps,
               settings * ladder.second + (FINALISTS + seeds - 1) * ladder.top)


def contenders(first_stage: RunReport, count: int = FINALISTS) -> list[ProbeResult]:
    """The settings the recommendation will choose between: its ``count`` finalists as
    the first stage ranks them (``stabcheck.judge.ranking.finalists``)."""
    return finalists(first_stage, count)


def contender_caps(chosen: Sequence[ProbeResult], ladder: Ladder, budget: StepBudget,
                   reserve: int) -> dict[str, int]:
    """How far each contender may climb: every contender to the planned steps while the
    budget affords it (in rank order), then, with ``reserve`` steps kept for the leader's
    seeds, each one rung further at a time (the leader first) up to the ladder's top.
    A contender the budget does not afford is left out (its learning is not judged)."""
    caps: dict[str, int] = {}
    left = budget
    for result in chosen:
        if left.affords(ladder.steps):
            caps[result.probe.id] = ladder.steps
            left = left.spend(ladder.steps)
    beyond = [r for r in ladder.rungs if r > ladder.steps]
    for rung in beyond:
        for result in chosen:
            pid = result.probe.id
            if pid not in caps:
                continue
            extra = rung - caps[pid]
            if left.left is not None and extra > left.left - reserve:
                continue
            caps[pid] = rung
            left = left.spend(extra)
    return caps


def seed_candidate(report: RunReport, done: Sequence[str]) -> ProbeResult | None:
    """The next contender to re-probe under the other seeds, or None when none is needed.

    The leader (the first of the single-seed order) first. The next finalist only when
    the leader's worst seed falls behind it: every contender re-probed so far (``done``,
    their ids) failed a seed (it did not end stable, or has no skill under it), or the
    best worst seed among them is more than the seed tolerance
    (``stabcheck.judge.ranking.seed_tolerance``: the F1 tolerance, or what one held-out
    sample of the rarest class moves, if more) below the next finalist's one seed.
    Otherwise the recommendation stands among those re-probed: the others' one seed is
    already behind, or ahead by no more than the held-out split can tell apart.
    """
    if not done:
        order = ranked(_single_seed(report))
        return order[0].result if order else None
    backed = [c for c in ranked(report) if c.result.probe.id in done]
    others = [c for c in ranked(_single_seed(report)) if c.result.probe.id not in done]
    if not others:
        return None
    if not any(_held(c) for c in backed):
        return others[0].result  # every re-probed contender failed a seed
    best = max((c.worst_f1 for c in backed if _held(c) and c.worst_f1 is not None),
               default=None)
    challenger = others[0].worst_f1  # its one seed
    tol = seed_tolerance(report, others[0].result)
    if best is not None and challenger is not None and challenger > best + tol:
        return others[0].result
    return None


def _held(candidate: Ranked) -> bool:
    """Every seed of the candidate stable, with skill."""
    return not candidate.failed_seeds and candidate.disqualified is None


def _single_seed(report: RunReport) -> RunReport:
    """``report`` without its re-probes: the single-seed order."""
    from dataclasses import replace

    return replace(report, seed_probes=())


def healthy(result: ProbeResult) -> bool:
    """A first-stage result that may compete: it trained without a numerical, memory,
    crash or error verdict."""
    return result.verdict.category in (Category.OK, Category.LEARNING) and result.ran
