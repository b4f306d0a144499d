"""The one configuration to train with, and how each class-weight strategy fared.

``recommended_configuration`` picks, among the stable probes, the one to train with and
says why (its held-out scores, the margin of safety next to it in the grid) and which
better-scoring or riskier neighbours it passed over: a ``Recommendation``
(``stabcheck.judge.recommendation``). ``strategy_summary`` sums up each class-weight
strategy (JSON-safe dicts) and ``strategy_rows`` gives them as a table's cells. Both are
computed once per run, in ``stabcheck.judge.summary.summarize``; the views render them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stabcheck.judge.explain import where_it_failed
from stabcheck.judge.gridview import (
    RAN,
    ProbeGrid,
    finished_training,
    is_numerical,
    is_stable,
    settings_key,
    unique,
)
from stabcheck.judge.quality import (
    class_name,
    finite_number,
    fmt_score,
    holdout_metrics,
    is_regression,
    macro_f1,
    minority_recall,
    quality_score,
    r2_score,
    rarest_class,
)
from stabcheck.judge.ranking import (
    Ranked,
    eligible,
    ranked,
    seed_tolerance,
    tie_breaks,
    tie_words,
    tolerance,
    unrankable,
)
from stabcheck.judge.recommendation import Finalist, Recommendation, Rejected
from stabcheck.results import ProbeResult, RunReport
from stabcheck.text import fmt_lr, short_clip, step_suffix

__all__ = [
    "recommended_configuration",
    "settings_text",
    "strategy_rows",
    "strategy_summary",
]


def settings_text(result: ProbeResult, batch: bool = True) -> str:
    """A probe's settings in a table cell: ``lr 0.01, gnorm 1, bs 32``."""
    s = result.probe.settings
    text = f"lr {fmt_lr(s.learning_rate)}, {short_clip(s.clip)}"
    return text + (f", bs {s.batch_size}" if batch else "")


def strategy_summary(report: RunReport) -> list[dict[str, Any]]:
    """Per class-weight strategy: the largest stable learning rate, whether clipping rescued
    its unclipped numerical failures, and its best stable probe by macro-F1.

    Returns:
        One JSON-safe dict per strategy, in grid order, with keys ``class_weight``,
        ``probes``, ``stable``, ``numerical``, ``largest_stable_lr`` (None if never
        stable), ``clip_rescued`` / ``clip_tried`` (unclipped numerical failures whose
        clipped twin was stable / was probed at all), ``rescuing_clips`` and ``best``
        (``{"probe_id", "macro_f1", "minority_recall"}`` or None).
    """
    grid = ProbeGrid(report)
    rarest = rarest_class(report)
    out = []
    for strategy in grid.strategies:
        mine = [r for r in grid.results if r.probe.settings.class_weight == strategy]
        stable = [r for r in mine if is_stable(r)]
        numerical = [r for r in mine if is_numerical(r)]
        tried, rescued, clips = 0, 0, []
        for failure in numerical:
            cw, lr, clip, bs = settings_key(failure)
            if clip != "none":
                continue
            twins = [(c, grid.get(cw, lr, c, bs)) for c in grid.clips if c != "none"]
            twins = [(c, t) for c, t in twins if t is not None]
            if twins:
                tried += 1
                good = [c for c, t in twins if is_stable(t)]
                rescued += bool(good)
                clips += good
        best = _best_stable(stable, rarest)
        out.append({
            "class_weight": strategy,
            "probes": len(mine),
            "stable": len(stable),
            "numerical": len(numerical),
            "largest_stable_lr": max((r.probe.settings.learning_rate for r in stable),
                                     default=None),
            "clip_rescued": rescued,
            "clip_tried": tried,
            "rescuing_clips": unique(clips),
            "best": None if best is None else {
                "probe_id": best.probe.id, "macro_f1": macro_f1(best),
                "minority_recall": minority_recall(best, rarest),
                **({"r2": r2_score(best)} if is_regression(report) else {})},
        })
    return out


def _best_stable(stable: Sequence[ProbeResult], minority: int | None) -> ProbeResult | None:
    """The best by macro-F1, then minority recall (grid order breaks ties)."""
    if not stable:
        return None

    def key(r: ProbeResult) -> tuple[float, float]:
        f1, recall = quality_score(r), minority_recall(r, minority)
        return (f1 if f1 is not None else -math.inf, recall if recall is not None else -1.0)

    return max(stable, key=key)


def _word(result: ProbeResult) -> str:
    """``diverged @2``, ``NaN @8``, ``overcorrected``: an outcome in a few characters."""
    suffix = step_suffix(result)
    word = result.verdict.outcome.value.replace("_", " ")
    return f"{word} {suffix}" if suffix else word


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def _seed_reason(report: RunReport, chosen: Ranked, finalists: int) -> str:
    """How many seeds back the recommendation, and what its worst and best seed scored."""
    n = len(chosen.scores)
    seeds = [s.seed for s in chosen.scores]
    if n == 1:
        why = ("--seeds 1: not re-probed" if report.seeds <= 1
               else "its re-probes did not run")
        return f"backed by 1 seed ({seeds[0]}; {why}): a lucky seed is not ruled out"
    text = f"backed by {n} seeds ({_seed_list(seeds)})"
    if chosen.worst_f1 is not None and chosen.best_f1 is not None:
        name = "R²" if is_regression(report) else "macro-F1"
        text += (f": {name} {chosen.worst_f1:.2f} at its worst seed, "
                 f"{chosen.best_f1:.2f} at its best")
    if chosen.failed_seeds:
        text += "; " + ", ".join(f"seed {s.seed} ended {s.outcome.replace('_', ' ')}"
                                 for s in chosen.failed_seeds)
        text += (": " + (f"none of the {finalists} finalists was" if finalists > 1
                         else "the only finalist was not")
                 + " stable under every seed, so treat it with care (try a lower learning "
                 "rate)")
    elif finalists > 1:
        text += f"; ranked by the worst seed among {finalists} finalists"
    return text


def recommended_configuration(report: RunReport) -> Recommendation | None:
    """The one configuration to train with, and the evidence for it; None if nothing was
    stable.

    The order is ``stabcheck.judge.ranking.ranked``'s: a setting whose twin (the clip switched,
    or the next larger learning rate) collapsed comes after every one without, and where
    the finalists were re-probed under other seeds (``--seeds``), a finalist that failed
    under a seed after every one that did not; then, among those within
    ``recommend_f1_tolerance`` of the best worst-seed macro-F1, the least risk next to it
    in the grid (its next larger learning rate failed numerically: worse without a clip),
    then the milder class weighting, the lower learning rate, clipping on (a tie broken
    that way is said in the reasons), then the highest worst-seed minority recall; grid
    order breaks ties.

    Returns:
        The ``Recommendation`` (``stabcheck.judge.recommendation``: the settings, the
        worst-seed scores, the seeds and finalists, the reasons and the candidates
        passed over); its ``to_json()`` is the JSON result's ``recommended_configuration``.
    """
    everyone = ranked(report)
    # Never a setting whose worst seed has no skill or whose seed died (those go last)
    order = [c for c in everyone if c.disqualified is None]
    if not order:
        return None
    order += [c for c in everyone if c.disqualified is not None]
    grid = ProbeGrid(report)
    stable = [r for r in grid.results if eligible(r)]
    chosen_rank = order[0]
    chosen = chosen_rank.result
    s = chosen.probe.settings
    metrics = holdout_metrics(chosen)
    minority = rarest_class(report)
    tol = tolerance(report)
    reprobed = len(order) if report.seed_probes else 0
    f1, recall = chosen_rank.worst_f1, chosen_rank.worst_recall
    multi = len(chosen_rank.scores) > 1
    regression = is_regression(report)
    name = "R²" if regression else "macro-F1"  # what ranks them (a regression: no classes)
    f1_words = f"worst-seed {name}" if multi else f"held-out {name}"
    short = f"worst-seed {name}" if multi else name
    among = (f"the {reprobed} finalists" if reprobed else f"the {len(stable)} stable settings")
    same_tier = [c for c in order if (c.twin is None) == (chosen_rank.twin is None)
                 and bool(c.failed_seeds) == bool(chosen_rank.failed_seeds)]
    best_f1 = max((c.worst_f1 for c in same_tier if c.worst_f1 is not None), default=None)
    reasons: list[str] = []
    first_f1 = chosen_rank.scores[0].macro_f1
    if len(stable) == 1:
        reasons.append("the only stable setting")
    elif reprobed == 1 and multi and first_f1 is not None and f1 is not None:
        # the leader alone was re-probed (judge.stages.seed_candidate): its worst seed
        # did not fall behind the other finalists' one seed
        seed_tol = seed_tolerance(report, chosen)  # one held-out split for every probe
        why_tol = f"{seed_tol:.2g}" if seed_tol <= tol else (
            f"{seed_tol:.2g}, what one held-out sample of the rarest class moves")
        reasons.append(f"the best held-out {name} ({first_f1:.2f}) of the {len(stable)} "
                       f"contenders under seed {chosen_rank.scores[0].seed}; its worst seed "
                       f"({f1:.2f}) did not fall more than {why_tol} behind the other "
                       "finalists' one seed, so they were not re-probed")
    elif f1 is not None and best_f1 is not None:
        if f1 >= best_f1 - 1e-12:
            reasons.append(f"the best {f1_words} ({f1:.2f}) of {among}")
        else:
            reasons.append(f"{f1_words} {f1:.2f}, within {tol:g} of the best ({best_f1:.2f}) "
                           f"of {among}")
    elif any(unrankable(c.result) for c in order):
        reasons.append(f"the first of {among}: held-out scores rank nothing before a "
                       "BatchNormalization model's statistics warm up (raise --steps to rank "
                       "by them)")
    else:
        reasons.append(f"the first of {among} (no held-out metrics to rank them by)")
    ties = tie_breaks(report, order)
    if ties:
        others = "another setting" if len(ties) == 1 else f"{len(ties)} others"
        reasons.append(f"tied on {short} with {others} (within {tol:g}): broken toward "
                       f"{tie_words(ties.values())}")
    reasons.append(_seed_reason(report, chosen_rank, reprobed))
    if recall is not None:
        reasons.append(f"minority recall {recall:.2f} (class {class_name(report, minority)})")
    risk, neighbour = chosen_rank.risk, chosen_rank.neighbour
    if neighbour is None:
        reasons.append("no larger learning rate was probed: its margin is unknown")
    elif risk == 0 and finished_training(neighbour):
        reasons.append(f"lr {fmt_lr(neighbour.probe.settings.learning_rate)} with the same "
                       f"settings trained without numerical trouble too ({_word(neighbour)}): "
                       "a margin of safety")
    elif risk == 0:
        reasons.append(f"lr {fmt_lr(neighbour.probe.settings.learning_rate)} with the same "
                       f"settings ended {_word(neighbour)}: its margin is unknown")
    else:
        reasons.append(f"lr {fmt_lr(neighbour.probe.settings.learning_rate)} with the same "
                       f"settings failed ({_word(neighbour)}): do not raise the learning rate"
                       + ("; keep the clip" if risk == 1 else ""))
    if chosen_rank.twin is not None:
        reasons.append(f"accepted although its twin {chosen_rank.twin.probe.id} collapsed "
                       f"({chosen_rank.twin_reason}): every stable setting has a collapsed "
                       "twin, so this one is the least bad; confirm it with a longer run")

    rejected: list[Rejected] = []
    seen = {chosen.probe.id}

    def reject(result: ProbeResult | None, reason: str) -> None:
        if result is not None and result.probe.id not in seen and len(rejected) < 5:
            seen.add(result.probe.id)
            rejected.append(Rejected(result.probe.id, reason))

    for other in order[1:]:
        first = other.scores[0].macro_f1
        disqualified = other.disqualified is not None
        if disqualified and other.failed_seeds and any(x.died for x in other.scores):
            bad = next(x for x in other.scores if x.died)
            reject(other.result, f"stable under seed {other.scores[0].seed} but "
                                 f"{bad.outcome.replace('_', ' ')} under seed {bad.seed}: "
                                 "never recommended")
        elif disqualified:
            reject(other.result, f"never recommended: {other.disqualified}")
        elif other.twin is not None and chosen_rank.twin is None:
            reject(other.result, f"its twin {other.twin.probe.id} collapsed "
                                 f"({other.twin_reason}): a setting this close to collapse is "
                                 "not recommended")
        elif other.failed_seeds and not chosen_rank.failed_seeds:
            bad = other.failed_seeds[0]
            reject(other.result, f"stable under seed {other.scores[0].seed} but "
                                 f"{bad.outcome.replace('_', ' ')} under seed {bad.seed}")
        elif (len(other.scores) > 1 and first is not None and f1 is not None
              and other.worst_f1 is not None and first > f1 + 1e-12 and other.worst_f1 < f1):
            worst = min(other.scores, key=lambda x: x.macro_f1 if x.macro_f1 is not None
                        else 0.0)
            reject(other.result, f"{name} {first:.2f} under seed {other.scores[0].seed}, "
                                 f"but {other.worst_f1:.2f} under seed {worst.seed} "
                                 f"(worst of {len(other.scores)})")
        elif other.result.probe.id in ties:
            score = "" if other.worst_f1 is None else f"{short} {other.worst_f1:.2f}, "
            reject(other.result, f"{score}tied: broken toward "
                                 f"{tie_words([ties[other.result.probe.id]])}")
        elif other.worst_f1 is not None and f1 is not None and other.worst_f1 >= f1 - 1e-12:
            if other.risk > risk and other.neighbour is not None:
                reject(other.result, f"{short} {other.worst_f1:.2f}, but lr "
                       f"{fmt_lr(other.neighbour.probe.settings.learning_rate)} next to it "
                       f"failed ({_word(other.neighbour)})"
                       + ("" if other.result.probe.settings.clip != "none"
                          else " and it does not clip"))
            elif (other.worst_recall is not None and recall is not None
                  and other.worst_recall < recall):
                reject(other.result, f"{short} {other.worst_f1:.2f}, but minority recall "
                                     f"only {other.worst_recall:.2f}")
    if neighbour is not None and is_numerical(neighbour):
        reject(neighbour, where_it_failed(neighbour))
    for strategy in grid.strategies:
        twin = grid.get(strategy, s.learning_rate, s.clip, s.batch_size)
        if twin is not None and not is_stable(twin) and twin.verdict.category in RAN:
            reject(twin, where_it_failed(twin) if is_numerical(twin) else twin.verdict.summary)
    regression_scores = {}
    if regression:  # held-out errors in place of the class scores (which are null)
        regression_scores = dict(regression=True, r2=f1, mae=finite_number(metrics.get("mae")),
                                 rmse=finite_number(metrics.get("rmse")))
    return Recommendation(
        probe_id=chosen.probe.id,
        class_weight=s.class_weight,
        learning_rate=s.learning_rate,
        clip=s.clip,
        batch_size=s.batch_size,
        macro_f1=None if regression else f1,
        minority_recall=recall,
        minority_class=None if minority is None else class_name(report, minority),
        accuracy=finite_number(metrics.get("accuracy")),
        pr_auc=finite_number(metrics.get("pr_auc")),
        stable_probes=len(stable),
        seeds=len(chosen_rank.scores),
        seeds_requested=report.seeds,
        seed_scores=chosen_rank.scores,
        finalists=tuple(Finalist(c.result.probe.id, c.worst_f1, c.scores)
                        for c in order) if reprobed else (),
        reasons=tuple(reasons),
        rejected=tuple(rejected),
        **regression_scores,
    )


# ------------------------------------------------------------------ the strategy table


def strategy_rows(report: RunReport, rows: Sequence[dict[str, Any]]
                  ) -> list[tuple[str, str, str, str | None, str, str]]:
    """``strategy_summary`` as the cells of a table, one row per strategy: class weight,
    largest stable lr, clipping rescued (``"1 of 2"``), best stable setting (None: none
    stable; its batch size only where the stable probes have several), macro-F1, minority
    recall. ``[]`` where no strategy has a probe."""
    if not rows or not any(r["probes"] for r in rows):
        return []
    stable_batches = {r.probe.settings.batch_size for r in report.results if is_stable(r)}
    batches = len(stable_batches) > 1
    by_id = {r.probe.id: r for r in report.results}
    out = []
    for row in rows:
        lr = row["largest_stable_lr"]
        rescue = (f"{row['clip_rescued']} of {row['clip_tried']}" if row["clip_tried"] else "—")
        best = row["best"]
        setting = None if best is None else settings_text(by_id[best["probe_id"]],
                                                          batch=batches)
        out.append((row["class_weight"], "—" if lr is None else fmt_lr(lr), rescue, setting,
                    fmt_score(best and best["macro_f1"]),
                    fmt_score(best and best["minority_recall"])))
    return out
