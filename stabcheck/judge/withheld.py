"""When a learning verdict is withheld, and why: the trend across the probe's rungs
(persisting or shrinking), BatchNormalization statistics not warmed up, a class the model
already ranks but does not predict yet, the class prior's plateau; and what a probe that
climbed past its planned steps saw on the way. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.judge.predictions import (
    class_list,
    namer,
    predictions_verdict,
    split_by_frequency,
    times,
)
from stabcheck.judge.prior import prior_loss
from stabcheck.judge.trend import (
    trend_window,
)
from stabcheck.results import (
    HoldoutEval,
    Outcome,
    ProbeRun,
    Verdict,
)


def not_warmed_up(run: ProbeRun, verdict: Verdict | None, names: Sequence[str],
                  t: Thresholds) -> dict[str, Any] | None:
    """Evidence that the held-out predictions in inference mode are not the trained
    model's yet, so they are not judged: the model's BatchNormalization moving statistics
    are not warmed up after the probe's steps (``bn_warmup_residual``), and with batch
    statistics the predictions do not show the problem ``verdict`` found (or, with no
    verdict, are more than ``bn_accuracy_gap`` more accurate). None: the predictions stand.
    """
    holdout = run.holdout
    assert holdout is not None
    warm = holdout.metrics.get("bn_warmup")
    batch = holdout.metrics.get("batch_statistics")
    if not isinstance(warm, dict) or not isinstance(warm.get("residual"), (int, float)):
        return None
    if warm["residual"] <= t.bn_warmup_residual or not isinstance(batch, dict) \
            or not batch.get("n"):
        return None
    learning = verdict is not None and verdict.outcome is not Outcome.STABLE
    if learning:
        stats = HoldoutEval(int(batch["n"]), float(batch["accuracy"]),
                            tuple(batch["true_counts"]), tuple(batch["pred_counts"]),
                            tuple(batch["recall"]), dict(batch))
        again = predictions_verdict(_with_holdout(run, stats), names, t)
        if again is not None and again.outcome is verdict.outcome:
            return None  # batch statistics show it too: the verdict stands
    elif float(batch["accuracy"]) - holdout.accuracy <= t.bn_accuracy_gap:
        return None  # the two modes agree: nothing to withhold
    momentum = warm.get("momentum")
    if isinstance(momentum, (int, float)) and 0 < momentum < 1:
        needed = math.ceil(math.log(t.bn_warmup_residual) / math.log(momentum))
        warm = {**warm, "steps_needed": needed}
    evidence: dict[str, Any] = {
        "learning_verdict": "not_judged", "not_judged_because": "bn_warmup",
        "withheld_verdict": verdict.outcome.value if learning else None,
        "bn_warmup": warm, "batch_statistics": batch}
    if learning:
        evidence["withheld_summary"] = verdict.summary
        seen = f"in inference mode {verdict.summary}"
    else:
        seen = f"in inference mode held-out accuracy is {holdout.accuracy:.1%}"
    needed_text = (f"; about {warm['steps_needed']} steps warm them up"
                   if "steps_needed" in warm else "")
    evidence["learning_verdict_reason"] = (
        f"not enough steps to judge the held-out predictions: the BatchNormalization moving "
        f"statistics still hold {warm['residual']:.0%} of their initial values after "
        f"{warm['steps']} steps (momentum {warm['momentum']:g}{needed_text}); {seen}, with "
        f"batch statistics held-out accuracy is {float(batch['accuracy']):.1%} (predicted "
        f"counts {list(batch['pred_counts'])})")
    return evidence


def still_learning(run: ProbeRun, verdict: Verdict | None, losses: Sequence[float],
                   names: Sequence[str], t: Thresholds) -> dict[str, Any] | None:
    """Evidence that a ``minority_collapse`` or an ``overcorrected`` is too early to call:
    every class never predicted (the rare ones of a collapse, the common one the weights
    hold under the threshold, ``hides_the_common_class``) is already ranked above the
    others by the model's own score
    for it (one-vs-rest ROC-AUC at least ``still_learning_auc`` and ``still_learning_z``
    standard errors above chance) and the loss is still falling (the median of the last
    window of the trend rule below that of the first), so the decision threshold has not
    moved past those classes yet, while the model is learning them. None: it stands.
    """
    if verdict is None or not (verdict.outcome is Outcome.MINORITY_COLLAPSE
                               or hides_the_common_class(verdict)):
        return None
    holdout = run.holdout
    assert holdout is not None
    ranked = {item.get("class"): item.get("auc")
              for item in holdout.metrics.get("unpredicted_auc") or []
              if isinstance(item, dict)}
    never = [c for c in range(len(holdout.true_counts))
             if holdout.true_counts[c] >= t.min_class_support and holdout.pred_counts[c] == 0]
    window = min(trend_window(len(losses), t), len(losses) // 2)
    if not never or window < 2:
        return None
    first, last = statistics.median(losses[:window]), statistics.median(losses[-window:])
    if not last < first:
        return None
    classes = []
    for c in never:
        auc = ranked.get(c)
        z = _auc_z(auc, holdout, c)
        if z is None or auc < t.still_learning_auc or z < t.still_learning_z:
            return None
        classes.append({"class": namer(names, len(holdout.true_counts))(c), "auc": auc,
                        "z": z, "held_out": holdout.true_counts[c]})
    if len(classes) == 1:
        what = f"class {classes[0]['class']}"
        aucs = f"ROC-AUC {classes[0]['auc']:.2f}"
    else:
        what = "classes " + ", ".join(item["class"] for item in classes)
        aucs = "ROC-AUC " + ", ".join(f"{item['auc']:.2f} for {item['class']}"
                                      for item in classes)
    steps = len(losses)
    held = sum(item["held_out"] for item in classes)
    reason = (
        f"too short to tell: {what} never predicted yet on the held-out split ({held} "
        f"samples), but the model already ranks {'it' if len(classes) == 1 else 'them'} "
        f"above the others ({aucs}) and its loss is still falling (median {first:.3g} over "
        f"the first {window} steps, {last:.3g} over the last): a longer run may predict "
        f"{'it' if len(classes) == 1 else 'them'}"
        + (f"; probe --steps {4 * steps} or more to judge"
           if steps >= run.probe.horizon else ""))
    return {"learning_verdict": "not_judged", "not_judged_because": "still_learning",
            "withheld_verdict": verdict.outcome.value, "withheld_summary": verdict.summary,
            "still_learning": {"classes": classes, "first_median": first,
                               "last_median": last, "window": window,
                               "steps_to_judge": 4 * steps},
            "learning_verdict_reason": reason}


def _auc_z(auc: Any, holdout: HoldoutEval, c: int) -> float | None:
    """How many standard errors the one-vs-rest ROC-AUC ``auc`` of class ``c`` is above
    chance (the Mann-Whitney statistic's standard error when the scores rank nothing,
    ``sqrt((n1 + n2 + 1) / (12 n1 n2))``); None without a finite AUC or both sides."""
    if not isinstance(auc, (int, float)) or not math.isfinite(auc):
        return None
    positives = holdout.true_counts[c]
    negatives = holdout.n - positives
    if positives <= 0 or negatives <= 0:
        return None
    return (auc - 0.5) / math.sqrt((positives + negatives + 1) / (12 * positives * negatives))


def hides_the_common_class(verdict: Verdict) -> bool:
    """An overcorrection by the weights holding the most common class under the
    threshold (rule ``common_never_predicted``)."""
    return (verdict.outcome is Outcome.OVERCORRECTED
            and verdict.evidence.get("rule") == "common_never_predicted")


def hidden_but_ranked(run: ProbeRun, t: Thresholds = DEFAULT_THRESHOLDS) -> bool:
    """Whether every class (of at least ``min_class_support`` held-out samples) the probe
    never predicts is ranked above chance by the model's score for it
    (``still_learning_z`` standard errors): the threshold hides a class the model is
    learning, so more steps may bring it out (a reason to climb, not a verdict)."""
    holdout = run.holdout
    if not isinstance(holdout, HoldoutEval) or not holdout.n:
        return False
    ranked = {item.get("class"): item.get("auc")
              for item in holdout.metrics.get("unpredicted_auc") or []
              if isinstance(item, dict)}
    never = [c for c in range(len(holdout.true_counts))
             if holdout.true_counts[c] >= t.min_class_support and holdout.pred_counts[c] == 0]
    zs = [_auc_z(ranked.get(c), holdout, c) for c in never]
    return bool(never) and all(z is not None and z >= t.still_learning_z for z in zs)


def plateau(run: ProbeRun, stalled: Verdict, losses: Sequence[float],
            class_counts: Sequence[int], t: Thresholds) -> dict[str, Any] | None:
    """Evidence that a ``stalled`` probe sits on the plateau of the class prior: its loss
    (the median of the trend rule's last window) is within ``plateau_prior_tolerance`` of
    the loss of the best prediction that ignores the inputs (``judge.prior``), so the
    model has learned how common each class is and not yet the inputs. Many runs sit
    there for a while and then learn (an Embedding + Conv1D text model at lr 1e-3 for
    about 500 steps); the probe cannot tell how long, so the verdict is withheld. A model
    whose held-out scores are the same for every sample (ranking ROC-AUC exactly 0.5: its
    units dead or saturated) cannot leave it: None, the stall stands."""
    settings = run.probe.settings
    prior = prior_loss(settings.loss, class_counts, settings.class_weights,
                       settings.class_weight)
    holdout = run.holdout
    if prior is None or prior <= 0 or not losses or not isinstance(holdout, HoldoutEval):
        return None
    ranking = holdout.metrics.get("ranking_auc")
    if isinstance(ranking, (int, float)) and abs(ranking - 0.5) < 1e-12:
        return None  # one score for every sample: nothing left to learn from
    window = max(1, min(trend_window(len(losses), t), len(losses)))
    level = statistics.median(losses[-window:])
    if abs(level - prior) > t.plateau_prior_tolerance * prior:
        return None
    steps = len(losses)
    reason = (f"not judged at {steps} steps: the loss sits at {level:.3g}, the loss of "
              f"predicting the class shares for every sample ({prior:.3g}), with held-out "
              f"accuracy {holdout.accuracy:.1%} at chance: the model has learned the class "
              "prior and nothing of the inputs yet, a plateau a longer run may leave (too "
              "low a learning rate looks the same)"
              + (f"; probe --steps {4 * steps} or more to judge"
                 if steps >= run.probe.horizon else ""))
    return {"learning_verdict": "not_judged", "not_judged_because": "plateau",
            "withheld_verdict": stalled.outcome.value, "withheld_summary": stalled.summary,
            "plateau": {"loss": level, "prior_loss": prior, "window": window,
                        "steps": steps},
            "learning_verdict_reason": reason}


def across_rungs(run: ProbeRun, verdict: Verdict, names: Sequence[str],
                 t: Thresholds) -> dict[str, Any] | None:
    """The trend of a learning problem across the probe's rungs: a learning verdict is
    called only when the problem persists or grows from the previous rung to the last.

    A probe climbing a ladder of rungs (``Probe.rungs``) is evaluated at each. Its learning
    verdict (``verdict``, seen in the last evaluation) is withheld (``"learning_verdict":
    "not_judged"``) when only one rung was evaluated (``one_rung``: no trend yet), or when
    the problem shrank from the previous rung to the last by at least
    ``overcorrection_margin`` of its size (``shrinking``: the rare classes' excess share of
    the predictions, or the share of held-out samples in classes never predicted). Returns
    None for a probe without rungs (the one evaluation stands), the not-judged evidence, or
    ``{"rung_trend": ...}`` to add to the called verdict.
    """
    if len(run.probe.rungs) < 2:
        return None
    evals = [r for r in run.rungs if isinstance(r.holdout, HoldoutEval) and r.holdout.n]
    if not evals:
        return None
    last = evals[-1]
    outcome = verdict.outcome
    if len(evals) < 2:
        reason = (f"not judged at {last.step} steps (one rung; a learning verdict needs the "
                  f"trend of two): {verdict.summary}")
        return {"learning_verdict": "not_judged", "not_judged_because": "one_rung",
                "withheld_verdict": outcome.value, "withheld_summary": verdict.summary,
                "learning_verdict_reason": reason}
    prev = evals[-2]
    name = namer(names, len(last.holdout.true_counts))
    size, shown = _problem_size(outcome, t)
    before, after = size(prev.holdout), size(last.holdout)
    trend = {"steps": [prev.step, last.step], "sizes": [before, after],
             "measure": _MEASURES[outcome]}
    what = _problem_words(outcome, last.holdout, name, t)
    seen = f"{shown(before)} at step {prev.step}, {shown(after)} at step {last.step}"
    if before > 0 and after <= before * (1 - t.overcorrection_margin):
        reason = (f"not judged at {last.step} steps: {what} is shrinking ({seen}): a longer "
                  f"run may outgrow it")
        trend["text"] = f"shrinking: {seen}"
        return {"learning_verdict": "not_judged", "not_judged_because": "shrinking",
                "withheld_verdict": outcome.value, "withheld_summary": verdict.summary,
                "learning_verdict_reason": reason, "rung_trend": trend}
    word = "growing" if after > before * (1 + t.overcorrection_margin) else "persisting"
    trend["text"] = f"{word} across rungs: {what}: {seen}"
    return {"rung_trend": trend}


_MEASURES = {
    Outcome.OVERCORRECTED: "rare_share_factor",
    Outcome.MINORITY_COLLAPSE: "unpredicted_share",
    Outcome.STALLED: "at_chance",
}


def _problem_size(outcome: Outcome, t: Thresholds) -> tuple[
        Callable[[HoldoutEval], float], Callable[[float], str]]:
    """How big a learning problem is in one evaluation, and how to say a size."""
    if outcome is Outcome.OVERCORRECTED:
        return _rare_share_factor, lambda v: times(v) if math.isfinite(v) else "all"
    if outcome is Outcome.MINORITY_COLLAPSE:
        def unpredicted(h: HoldoutEval) -> float:
            never = [c for c, n in enumerate(h.true_counts)
                     if n >= t.min_class_support and h.pred_counts[c] == 0]
            return sum(h.true_counts[c] for c in never) / max(1, h.n)
        return unpredicted, lambda v: f"{v:.1%} of the held-out samples"

    def at_chance(h: HoldoutEval) -> float:
        chance = max(h.true_counts) / max(1, h.n)
        return 1.0 if h.accuracy <= chance + t.stall_chance_margin else 0.0
    return at_chance, lambda v: "at chance" if v else "above chance"


def _problem_words(outcome: Outcome, h: HoldoutEval, name: Callable[[int], str],
                   t: Thresholds) -> str:
    if outcome is Outcome.OVERCORRECTED:
        _common, rare = split_by_frequency(h.true_counts)
        return (f"the rare class{'es' if len(rare) != 1 else ''} "
                f"{class_list(rare, name)} predicted beyond {'their' if len(rare) != 1 else 'its'}"
                " share")
    if outcome is Outcome.MINORITY_COLLAPSE:
        never = [c for c, n in enumerate(h.true_counts)
                 if n >= t.min_class_support and h.pred_counts[c] == 0]
        return f"class{'es' if len(never) != 1 else ''} {class_list(never, name)} never predicted"
    return "held-out accuracy"


def _rare_share_factor(h: HoldoutEval) -> float:
    """The rare half's share of the predictions over its share of the held-out samples
    (``split_by_frequency``): 1 predicts the rare classes as often as they occur."""
    _common, rare = split_by_frequency(h.true_counts)
    total_true, total_pred = sum(h.true_counts), sum(h.pred_counts)
    rare_true = sum(h.true_counts[c] for c in rare)
    if not rare or not rare_true or not total_pred:
        return 0.0
    return (sum(h.pred_counts[c] for c in rare) / total_pred) / (rare_true / total_true)


def _with_holdout(run: ProbeRun, holdout: HoldoutEval) -> ProbeRun:
    from dataclasses import replace

    return replace(run, holdout=holdout)


def climbed_note(run: ProbeRun, names: Sequence[str], t: Thresholds) -> dict[str, Any] | None:
    """A probe that trained past its planned steps (a contender whose learning verdict
    was unsettled there): ``trained on from 100 to 400 steps: class 1 was not predicted
    at step 100, predicted by step 400``; None for one that did not."""
    planned = run.probe.steps
    at = next((r for r in run.rungs if r.step == planned), None)
    if at is None or run.steps_completed <= planned or not isinstance(at.holdout, HoldoutEval):
        return None
    h = at.holdout
    missed = [c for c, n in enumerate(h.pred_counts)
              if n == 0 and c < len(h.true_counts) and h.true_counts[c] >= t.min_class_support]
    ran = run.steps_completed
    text = f"trained on from {planned} to {ran} steps"
    if missed:
        name = namer(names, len(h.true_counts))
        holdout = run.holdout
        last = holdout.pred_counts if isinstance(holdout, HoldoutEval) else ()
        still = [c for c in missed if c < len(last) and last[c] == 0]
        found = [c for c in missed if c not in still]

        def which(classes: list[int]) -> str:
            return f"class{'es' if len(classes) != 1 else ''} {class_list(classes, name)}"

        text += (f": {which(missed)} {'was' if len(missed) == 1 else 'were'} not predicted "
                 f"at step {planned}")
        if found:
            text += f"; {which(found) if still else 'all'} predicted by step {ran}"
        if still:
            text += f"; {which(still) if found else 'all'} still not predicted"
    else:
        text += f": its learning verdict was unsettled at step {planned}"
    return {"at_step": planned, "to_step": ran, "pred_counts": list(h.pred_counts),
            "text": text}
