"""The order in which the stable settings compete for the recommendation, seeds included.

One seed can be lucky: a high learning rate that trains well from one initialisation and
batch order collapses from another. The recommendation therefore ranks its candidates by
their *worst* seed: the engine re-probes the first ``FINALISTS`` of the single-seed order
(``finalists``) under ``--seeds`` - 1 more seeds, and ``ranked`` orders them again by the
scores of all their seeds. A candidate whose twin (the same settings with the clip on or
off, or at the next larger learning rate of the grid) collapsed to predicting one class
ranks after every candidate without one. Candidates that score alike (within
``recommend_f1_tolerance``) and carry the same risk are told apart by the milder class
weighting, then the lower learning rate, then the clip (``tie_breaks`` says which decided).

Pure: no I/O, no display; shared by the engine (which finalists to re-probe) and
``stabcheck.judge.recommend`` (the recommendation and its reasons).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS
from stabcheck.judge.gridview import (
    ProbeGrid,
    is_numerical,
    is_stable,
    mildness_ranks,
    settings_key,
    weighting_ratio,
)
from stabcheck.judge.quality import (
    class_name,
    finite_number,
    minority_recall,
    quality_score,
    rarest_class,
)
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.text import fmt_number

__all__ = [
    "FINALISTS",
    "Ranked",
    "SeedScore",
    "TieBreak",
    "collapse_reason",
    "eligible",
    "finalists",
    "ranked",
    "reprobe_seeds",
    "seed_scores",
    "tie_breaks",
    "tie_words",
    "tolerance",
]

# How many of the best single-seed candidates are re-probed under the other seeds: the
# recommendation is one of them, so a few suffice and the cost stays small.
FINALISTS = 3


@dataclass(frozen=True)
class SeedScore:
    """How one seed of a candidate fared: its outcome and held-out scores, and why it
    has no skill (``no_skill``: a class it never predicts, a macro-F1 no better than
    always predicting the majority class, an R² at or below 0), if it has none."""

    seed: int
    outcome: str
    macro_f1: float | None
    minority_recall: float | None
    no_skill: str | None = None

    @property
    def stable(self) -> bool:
        return self.outcome == Outcome.STABLE.value

    @property
    def died(self) -> bool:
        """Ended numerical, out of memory, crashed, timed out or in error."""
        return Outcome(self.outcome).category not in (Category.OK, Category.LEARNING)

    def to_json(self) -> dict[str, object]:
        return {"seed": self.seed, "outcome": self.outcome, "macro_f1": self.macro_f1,
                "minority_recall": self.minority_recall, "no_skill": self.no_skill}


@dataclass(frozen=True)
class Ranked:
    """A candidate with what ranks it: its seeds, its twins, its neighbour."""

    result: ProbeResult
    scores: tuple[SeedScore, ...]  # the run's seed first, then the re-probes
    twin: ProbeResult | None  # a twin that collapsed (None: none did)
    twin_reason: str | None
    risk: int  # 0: the next larger lr trained; 1: it failed, this clips; 2: it failed
    neighbour: ProbeResult | None  # the next larger learning rate
    order: int  # grid order

    @property
    def failed_seeds(self) -> tuple[SeedScore, ...]:
        return tuple(s for s in self.scores if not s.stable)

    @property
    def worst_f1(self) -> float | None:
        """The lowest macro-F1 over the seeds (a seed not evaluated counts 0)."""
        values = [s.macro_f1 if s.macro_f1 is not None else 0.0 for s in self.scores]
        if all(s.macro_f1 is None for s in self.scores):
            return None
        return min(values)

    @property
    def best_f1(self) -> float | None:
        values = [s.macro_f1 for s in self.scores if s.macro_f1 is not None]
        return max(values) if values else None

    @property
    def disqualified(self) -> str | None:
        """Why it is never recommended: a seed that died, or a seed without skill."""
        for score in self.scores:
            if score.died:
                return f"seed {score.seed} ended {score.outcome.replace('_', ' ')}"
        for score in self.scores:
            if score.no_skill:
                return f"seed {score.seed} {score.no_skill}"
        return None

    @property
    def worst_recall(self) -> float | None:
        values = [s.minority_recall for s in self.scores]
        if all(v is None for v in values):
            return None
        return min(v if v is not None else 0.0 for v in values)


def tolerance(report: RunReport) -> float:
    """``recommend_f1_tolerance`` as the run was configured (``[thresholds]``)."""
    value = (report.config.get("thresholds") or {}).get("recommend_f1_tolerance")
    number = finite_number(value)
    return number if number is not None else DEFAULT_THRESHOLDS.recommend_f1_tolerance


def one_sample(result: ProbeResult) -> float:
    """About how far one held-out sample of the rarest class moves macro-F1: its F1 moves
    by about ``1 / n`` (``n`` its held-out samples), the mean over the ``k`` classes by
    ``1 / (k n)``. A difference in macro-F1 smaller than this is one sample's luck, not a
    better setting. 0 for a probe without held-out class counts (a regression target)."""
    holdout = result.run.holdout
    counts = [c for c in getattr(holdout, "true_counts", ()) or () if c > 0]
    return 1.0 / (len(counts) * min(counts)) if counts else 0.0


def seed_tolerance(report: RunReport, result: ProbeResult) -> float:
    """How far a finalist's one seed must beat the leader's worst seed before it is
    re-probed too: ``recommend_f1_tolerance``, or more where the held-out split cannot
    tell closer scores apart (:func:`one_sample`)."""
    return max(tolerance(report), one_sample(result))


def base_seed(report: RunReport) -> int:
    value = report.config.get("seed")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def reprobe_seeds(seed: int, seeds: int) -> list[int]:
    """The seeds the finalists are re-probed under: ``seed + 1`` .. ``seed + seeds - 1``."""
    return [seed + k for k in range(1, max(1, seeds))]


def eligible(result: ProbeResult) -> bool:
    """A stable training setting: not a memory measurement (a few steps, learning not
    judged) nor a memory remedy probe (gradient accumulation, mixed precision), nor a
    setting the grid left at its first rung (not a contender: learning not judged)."""
    s = result.probe.settings
    schedule = result.verdict.evidence.get("schedule")
    left_behind = isinstance(schedule, dict) and schedule.get("contender") is False
    return (is_stable(result) and not result.verdict.evidence.get("memory_measurement")
            and s.accumulation_steps == 1 and s.dtype_policy is None and not left_behind)


def collapse_reason(report: RunReport, result: ProbeResult | None) -> str | None:
    """Why ``result`` counts as collapsed (a minority collapse, or one class predicted for
    every held-out sample of a problem with several, at the end of its training); None if
    it did not collapse or did not finish training."""
    if result is None or result.verdict.category not in (Category.OK, Category.LEARNING):
        return None  # a numerical failure next to it is the risk rule's, not a collapse
    holdout = result.run.holdout
    if holdout is not None and holdout.n:
        predicted = [c for c, n in enumerate(holdout.pred_counts) if n > 0]
        present = [c for c, n in enumerate(holdout.true_counts) if n > 0]
        if len(predicted) == 1 and len(present) > 1:
            return (f"it predicted class {class_name(report, predicted[0])} for all "
                    f"{holdout.n} held-out samples")
    if result.verdict.outcome is Outcome.MINORITY_COLLAPSE:
        if holdout is not None and holdout.n:
            never = [class_name(report, c) for c, n in enumerate(holdout.pred_counts)
                     if n == 0 and c < len(holdout.true_counts) and holdout.true_counts[c]]
            if never:
                return (f"it never predicted class{'es' if len(never) > 1 else ''} "
                        f"{', '.join(never)}")
        return "minority collapse"
    return None


def _twins(grid: ProbeGrid, result: ProbeResult) -> list[ProbeResult]:
    """The same settings with the clip switched on or off, then at the next larger
    learning rate of the grid. (A smaller rate that collapsed learned too slowly for the
    probe's steps: that says nothing about how close this setting is to its edge.)"""
    cw, lr, clip, bs = settings_key(result)
    out = []
    clips = ["none"] if clip != "none" else [c for c in grid.clips if c != "none"]
    for other in clips:
        twin = grid.get(cw, lr, other, bs)
        if twin is not None:
            out.append(twin)
    larger = [x for x in grid.lrs if x > lr]
    if larger:
        twin = grid.get(cw, larger[0], clip, bs)
        if twin is not None:
            out.append(twin)
    return out


def _risk(grid: ProbeGrid, result: ProbeResult) -> tuple[int, ProbeResult | None]:
    neighbour = grid.next_lr(result)
    if not is_numerical(neighbour):
        return 0, neighbour
    return (1 if result.probe.settings.clip != "none" else 2), neighbour


def seed_scores(report: RunReport, result: ProbeResult) -> tuple[SeedScore, ...]:
    """The run's seed, then every re-probe of ``result`` (``report.seed_probes``)."""
    minority = rarest_class(report)

    def score(seed: int, r: ProbeResult) -> SeedScore:
        if unrankable(r):
            return SeedScore(seed, r.verdict.outcome.value, None, None)
        return SeedScore(seed, r.verdict.outcome.value, quality_score(r),
                         minority_recall(r, minority), no_skill(report, r))

    out = [score(base_seed(report), result)]
    out += [score(p.seed, p.result) for p in report.seed_probes
            if p.probe_id == result.probe.id]
    return tuple(out)


def no_skill(report: RunReport, result: ProbeResult) -> str | None:
    """Why a probe that trained has no skill on the held-out split, or None: it never
    predicts a class with ``min_class_support`` held-out samples; its macro-F1 is no
    better than always predicting the majority class scores (that class's F1,
    ``2p / (1 + p)`` for its share ``p``, over the classes present); a regression
    probe's R² is at or below 0 (no better than predicting the mean)."""
    holdout = result.run.holdout
    if holdout is None or not holdout.n:
        return None
    if getattr(holdout, "task", "") == "regression":
        r2 = getattr(holdout, "r2", None)
        return f"has no skill (R² {r2:.2f})" if r2 is not None and r2 <= 0 else None
    support = DEFAULT_THRESHOLDS.min_class_support
    never = [c for c, n in enumerate(holdout.true_counts)
             if n >= support and c < len(holdout.pred_counts) and holdout.pred_counts[c] == 0]
    if never:
        names = ", ".join(class_name(report, c) for c in never[:5])
        return f"never predicts class{'es' if len(never) > 1 else ''} {names}"
    f1 = quality_score(result)
    present = [n for n in holdout.true_counts if n > 0]
    if f1 is None or len(present) < 2:
        return None
    share = max(present) / sum(present)
    floor = 2 * share / (1 + share) / len(present)
    if f1 <= floor + 1e-9:
        return (f"has no skill: macro-F1 {f1:.2f}, what always predicting the majority "
                f"class scores ({floor:.2f})")
    return None


def unrankable(result: ProbeResult) -> bool:
    """Whether the probe's held-out scores say nothing of its training: a BatchNormalization
    model evaluated before its moving statistics warmed up predicts from its initial ones
    (classify withholds its learning verdict for that), so its macro-F1 ranks nothing."""
    return result.verdict.evidence.get("not_judged_because") == "bn_warmup"


def _candidates(report: RunReport) -> tuple[ProbeGrid, list[Ranked]]:
    grid = ProbeGrid(report)
    order = {id(r): i for i, r in enumerate(grid.results)}
    out = []
    for r in grid.results:
        if not eligible(r):
            continue
        twin, reason = None, None
        for other in _twins(grid, r):
            reason = collapse_reason(report, other)
            if reason is not None:
                twin = other
                break
        risk, neighbour = _risk(grid, r)
        out.append(Ranked(r, seed_scores(report, r), twin, reason, risk, neighbour,
                          order[id(r)]))
    return grid, out


def _tie_key(c: Ranked, mildness: dict[str, int]) -> tuple[int, float, bool]:
    """How a tie between candidates of the same tier and risk is broken: toward the milder
    class weighting (a smaller largest-to-smallest weight ratio; ratios within
    ``weight_ratio_tolerance`` tie), then the lower learning rate, then clipping on."""
    s = c.result.probe.settings
    return (mildness.get(s.class_weight, len(mildness)), s.learning_rate, s.clip == "none")


def _sort_key(report: RunReport, candidates: list[Ranked]) -> Callable[[Ranked], tuple]:
    """Tiers first (no collapsed twin, every seed stable), then within a tier: those
    within ``recommend_f1_tolerance`` of the tier's best worst-seed macro-F1 by risk, then
    the tie-break (``_tie_key``: the milder weighting, the lower learning rate, clipping
    on), then minority recall and macro-F1; the rest by macro-F1; grid order breaks ties.
    (``tie_breaks`` reads the key's layout: tier, inside, risk, then the tie-break.)"""
    tol = tolerance(report)
    mildness = mildness_ranks(report, (c.result.probe.settings.class_weight
                                       for c in candidates))

    def tier(c: Ranked) -> tuple[int, int]:
        return (c.twin is not None, bool(c.failed_seeds))

    best: dict[tuple[int, int], float | None] = {}
    for c in candidates:
        f1 = c.worst_f1
        key = tier(c)
        if f1 is not None:
            best[key] = max(f1, best.get(key) or -1.0)
        else:
            best.setdefault(key, None)

    def key(c: Ranked) -> tuple[object, ...]:
        f1 = c.worst_f1
        recall = c.worst_recall
        top = best[tier(c)]
        neg_f1 = -(f1 if f1 is not None else -1.0)
        neg_recall = -(recall if recall is not None else -1.0)
        inside = top is None or (f1 is not None and f1 >= top - tol - 1e-12)
        if inside:
            return (*tier(c), 0, c.risk, *_tie_key(c, mildness), neg_recall, neg_f1,
                    c.order)
        return (*tier(c), 1, 0, 0, 0.0, False, neg_f1, neg_recall, c.order)

    return key


def _order(report: RunReport, candidates: list[Ranked]) -> list[Ranked]:
    """``candidates`` in ``_sort_key``'s order."""
    return sorted(candidates, key=_sort_key(report, candidates))


class TieBreak(NamedTuple):
    """What decided a tie: ``kind`` 0 the weighting, 1 the learning rate, 2 the clip; the
    winner's and the loser's value in words (``sqrt 1:23.9``, ``0.001``, ``global_norm=1``)."""

    kind: int
    winner: str
    loser: str


_TIE_WORDS = ("the milder weighting", "the lower lr", "clipping")


def tie_words(breaks: Iterable[TieBreak]) -> str:
    """``breaks`` in words, by kind: ``"the milder weighting (sqrt 1:23.9 over balanced
    1:571 and x100 1:57,100) and the lower lr (0.001 over 0.01)"``."""
    groups: dict[int, tuple[str, list[str]]] = {}
    for kind, winner, loser in sorted(breaks):
        losers = groups.setdefault(kind, (winner, []))[1]
        if loser not in losers:
            losers.append(loser)
    parts = []
    for kind, (winner, losers) in sorted(groups.items()):
        over = losers[0] if len(losers) == 1 else ", ".join(losers[:-1]) + " and " + losers[-1]
        parts.append(f"{_TIE_WORDS[kind]} ({winner} over {over})")
    return " and ".join(parts)


def tie_breaks(report: RunReport, order: list[Ranked]) -> dict[str, TieBreak]:
    """The candidates that tied with the first of ``order`` (the same tier and risk, both
    within ``recommend_f1_tolerance`` of the best) and lost to it on the tie-break
    (``_tie_key``), by probe id, with what decided it."""
    if not order:
        return {}
    key = _sort_key(report, order)
    first = order[0]
    head = key(first)
    out: dict[str, TieBreak] = {}
    for other in order[1:]:
        theirs = key(other)
        # tied: the same tier, both inside the tolerance (0), the same risk
        if theirs[:4] != head[:4] or head[2] != 0:
            continue
        mine, theirs = head[4:7], theirs[4:7]
        a, b = first.result.probe.settings, other.result.probe.settings
        if mine[0] < theirs[0]:
            out[other.result.probe.id] = TieBreak(0, _ratio_words(report, a.class_weight),
                                                  _ratio_words(report, b.class_weight))
        elif mine[0] == theirs[0] and mine[1] < theirs[1]:
            out[other.result.probe.id] = TieBreak(1, f"{a.learning_rate:g}",
                                                  f"{b.learning_rate:g}")
        elif mine[:2] == theirs[:2] and mine[2] < theirs[2]:
            out[other.result.probe.id] = TieBreak(2, a.clip, "none")
    return out


def _ratio_words(report: RunReport, strategy: str) -> str:
    """``balanced 1:577``; ``none`` (unweighted)."""
    ratio = weighting_ratio(report, strategy)
    if ratio is None or strategy == "none":
        return strategy
    return f"{strategy} 1:{fmt_number(ratio)}"


def ranked(report: RunReport) -> list[Ranked]:
    """The stable training settings, the recommendation first.

    Where finalists were re-probed (``report.seed_probes``), only they compete, ranked by
    their worst seed; otherwise every stable setting, by its one seed.
    """
    _, candidates = _candidates(report)
    reprobed = {p.probe_id for p in report.seed_probes}
    if reprobed:
        candidates = [c for c in candidates if c.result.probe.id in reprobed]
    return _order(report, candidates)


def finalists(report: RunReport, count: int = FINALISTS) -> list[ProbeResult]:
    """The first ``count`` candidates of the single-seed order: those to re-probe."""
    _, candidates = _candidates(report)
    single = [Ranked(c.result, c.scores[:1], c.twin, c.twin_reason, c.risk, c.neighbour,
                     c.order) for c in candidates]
    return [c.result for c in _order(report, single)[:count]]
