"""The one configuration to train with, and how each class-weight strategy fared.

``recommended_configuration`` picks, among the stable probes, the one to train with and
says why (its held-out scores, the margin of safety next to it in the grid) and which
better-scoring or riskier neighbours it passed over; ``strategy_summary`` sums up each
class-weight strategy. Both return JSON-safe dicts: the JSON result carries them as they
are, and the renderers show them (``report.terminal.recommendation`` for the terminal).
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
from stabcheck.results import ProbeResult, RunReport
from stabcheck.text import fmt_lr, short_clip, step_suffix

__all__ = [
    "NONE_STABLE",
    "no_recommendation_text",
    "configuration_words",
    "evidence_text",
    "recommended_configuration",
    "settings_text",
    "strategy_rows",
    "strategy_summary",
    "why_text",
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


def recommended_configuration(report: RunReport) -> dict[str, Any] | None:
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
        A JSON-safe dict: ``probe_id``, ``class_weight``, ``learning_rate``, ``clip``,
        ``batch_size``, ``macro_f1``, ``minority_recall`` (the worst over its seeds),
        ``minority_class``, ``accuracy``, ``pr_auc`` (of the run's seed),
        ``stable_probes`` (how many grid probes were stable), ``seeds`` (how many seeds
        back it), ``seeds_requested`` (``--seeds``), ``seed_scores`` (``[{"seed",
        "outcome", "macro_f1", "minority_recall"}]``), ``finalists`` (``[{"probe_id",
        "worst_macro_f1", "seed_scores"}]``: every re-probed candidate, in rank order),
        ``reasons`` (sentences) and ``rejected`` (``[{"probe_id", "reason"}]``: the
        better-scoring, less steady or riskier candidates passed over, and why).
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

    rejected: list[dict[str, str]] = []
    seen = {chosen.probe.id}

    def reject(result: ProbeResult | None, reason: str) -> None:
        if result is not None and result.probe.id not in seen and len(rejected) < 5:
            seen.add(result.probe.id)
            rejected.append({"probe_id": result.probe.id, "reason": reason})

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
    out = {
        "probe_id": chosen.probe.id,
        "class_weight": s.class_weight,
        "learning_rate": s.learning_rate,
        "clip": s.clip,
        "batch_size": s.batch_size,
        "macro_f1": None if regression else f1,
        "minority_recall": recall,
        "minority_class": None if minority is None else class_name(report, minority),
        "accuracy": finite_number(metrics.get("accuracy")),
        "pr_auc": finite_number(metrics.get("pr_auc")),
        "stable_probes": len(stable),
        "seeds": len(chosen_rank.scores),
        "seeds_requested": report.seeds,
        "seed_scores": [x.to_json() for x in chosen_rank.scores],
        "finalists": [{"probe_id": c.result.probe.id, "worst_macro_f1": c.worst_f1,
                       "seed_scores": [x.to_json() for x in c.scores]}
                      for c in order] if reprobed else [],
        "reasons": reasons,
        "rejected": rejected,
    }
    if regression:  # held-out errors in place of the class scores (which are null)
        out.update(r2=f1, mae=finite_number(metrics.get("mae")),
                   rmse=finite_number(metrics.get("rmse")))
    return out


# --------------------------------------------------------------------------- display

# What the renderers say where no setting was stable.
NONE_STABLE = ("No setting in this grid was stable: probe lower learning rates (--lr), "
               "a clip (--clip global_norm=1.0) and milder class weights.")
NONE_STABLE_REGRESSION = ("No setting in this grid was stable: probe lower learning rates "
                          "(--lr) and a clip (--clip global_norm=1.0).")


def none_stable_text(report: RunReport) -> str:
    """What to say where no setting was stable (no class weights for a regression run)."""
    return NONE_STABLE_REGRESSION if is_regression(report) else NONE_STABLE


def no_recommendation_text(report: RunReport) -> str:
    """Why there is no recommendation, in words that agree with the stable count: no probe
    stable (``NONE_STABLE``), or stable probes that are memory measurements or remedies
    only (a few steps each, learning not judged: no setting to train with)."""
    stable = [r for r in report.results if is_stable(r)]
    if not stable:
        return none_stable_text(report)
    unfit = [c for c in ranked(report) if c.disqualified is not None]
    if unfit:
        which = "; ".join(f"{c.result.probe.id}: {c.disqualified}" for c in unfit[:3])
        return (f"Nothing recommended: every finalist died or lost its skill under a seed "
                f"({which}). Probe lower learning rates, a clip or milder class weights, "
                "or more steps.")
    if not any(eligible(r) for r in stable) and any(
            (r.verdict.evidence.get("schedule") or {}).get("contender") is False
            for r in stable):
        return ("Nothing recommended: no setting reached the contenders' rungs (the "
                "budget ended first); raise --budget to judge their learning.")
    return (f"No training setting to recommend: the {len(stable)} stable "
            f"probe{'s' if len(stable) != 1 else ''} measured memory only (a few steps each, "
            "or a memory remedy), which does not judge learning; run stabcheck probe for a "
            "recommendation.")


def configuration_words(rec: dict[str, Any]) -> list[str]:
    """The recommended settings as ``key=value`` words: ``["class_weight=balanced",
    "lr=0.01", "clip=global_norm=1", "batch_size=32"]``."""
    words = [f"lr={fmt_lr(rec['learning_rate'])}", f"clip={rec['clip']}",
             f"batch_size={rec['batch_size']}"]
    if "r2" in rec:  # a regression target: no class weights to name
        return words
    return [f"class_weight={rec['class_weight']}", *words]


def evidence_text(rec: dict[str, Any]) -> str:
    """The probe behind a recommendation and its held-out scores: ``"probe cw=...: macro-F1
    0.79, minority recall 0.80 (class 1), PR-AUC 0.70, accuracy 90.0%"``."""
    quality = []
    if rec.get("r2") is not None:
        quality.append(f"R² {rec['r2']:.2f}")
    for key in ("mae", "rmse"):
        if rec.get(key) is not None:
            quality.append(f"{key.upper()} {rec[key]:.4g}")
    if rec["macro_f1"] is not None:
        quality.append(f"macro-F1 {rec['macro_f1']:.2f}")
    if rec["minority_recall"] is not None:
        quality.append(f"minority recall {rec['minority_recall']:.2f} "
                       f"(class {rec['minority_class']})")
    if rec["pr_auc"] is not None:
        quality.append(f"PR-AUC {rec['pr_auc']:.2f}")
    if rec["accuracy"] is not None:
        quality.append(f"accuracy {100 * rec['accuracy']:.1f}%")
    return f"probe {rec['probe_id']}" + (": " + ", ".join(quality) if quality else "")


def why_text(rec: dict[str, Any]) -> str:
    """``"why: ..."``: the reasons for a recommendation (its minority recall, which
    ``evidence_text`` shows, left out)."""
    reasons = [r for r in rec["reasons"] if not r.startswith("minority recall")]
    return "why: " + "; ".join(reasons)


def strategy_rows(report: RunReport) -> list[tuple[str, str, str, str | None, str, str]]:
    """``strategy_summary`` as the cells of a table, one row per strategy: class weight,
    largest stable lr, clipping rescued (``"1 of 2"``), best stable setting (None: none
    stable; its batch size only where the stable probes have several), macro-F1, minority
    recall. ``[]`` where no strategy has a probe."""
    rows = strategy_summary(report)
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
