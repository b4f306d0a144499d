"""The learning verdicts from the held-out predictions: a class never predicted
(``minority_collapse``), the rare classes over-predicted (``overcorrected``), and the
words they are said in. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from stabcheck.config.thresholds import Thresholds
from stabcheck.judge.verdicts import make_verdict
from stabcheck.protocol.vocabulary import is_focal
from stabcheck.results import (
    HoldoutEval,
    Outcome,
    ProbeRun,
    Verdict,
)


def predictions_verdict(run: ProbeRun, names: Sequence[str], t: Thresholds) -> Verdict | None:
    """The learning verdict the held-out predictions give (``overcorrected`` or
    ``minority_collapse``), a ``stable`` verdict carrying a borderline warning, or None."""
    holdout = run.holdout
    assert holdout is not None
    true, pred = holdout.true_counts, holdout.pred_counts
    k = len(true)
    name = namer(names, k)
    never = [c for c in range(k) if true[c] >= t.min_class_support and pred[c] == 0]
    settings = run.probe.settings
    verdict = None
    if settings.class_weights is not None or is_focal(settings.class_weight):
        verdict = _overcorrection(holdout, never, name, t)
        if verdict is not None and verdict.outcome is not Outcome.STABLE:
            return verdict
    if never:
        return _collapse(holdout, never, name)
    return verdict  # None, or stable with a borderline warning


def namer(names: Sequence[str], k: int) -> Callable[[int], str]:
    """A class index's name: the data set's, where it names all ``k`` classes, else the
    index itself."""
    return (lambda c: str(names[c])) if len(names) == k else str


def _collapse(holdout: HoldoutEval, never: list[int], name: Callable[[int], str]) -> Verdict:
    """``minority_collapse``: classes never predicted, each named with its role (the
    majority class, the most common of the held-out split, or a minority class)."""
    true, pred = holdout.true_counts, holdout.pred_counts
    majority = max(range(len(true)), key=lambda c: (true[c], -c))
    roles = [{"class": name(c), "role": "majority" if c == majority else "minority",
              "held_out": true[c]} for c in never]
    evidence = {"classes": [name(c) for c in never], "never_predicted": roles,
                "majority_class": name(majority), "true_counts": list(true),
                "pred_counts": list(pred), "holdout_accuracy": holdout.accuracy}
    if majority in never:
        predicted = [c for c in range(len(pred)) if pred[c] > 0]
        others = [c for c in never if c != majority]
        text = (f"the majority class {name(majority)} ({true[majority]} of {holdout.n} "
                f"held-out samples) is never predicted: the model predicts "
                f"{class_list(predicted, name)} instead")
        if others:
            plural_s = "es" if len(others) > 1 else ""
            text += (f"; minority class{plural_s} {class_list(others, name)} never predicted "
                     "either")
        return make_verdict(Outcome.MINORITY_COLLAPSE, evidence,
                            f"{text}; accuracy {holdout.accuracy:.1%}")
    shown = class_list(never, name)
    return make_verdict(
        Outcome.MINORITY_COLLAPSE, evidence,
        f"minority class{'es' if len(never) > 1 else ''} {shown} never predicted on the "
        f"held-out split ({sum(true[c] for c in never)} samples); accuracy "
        f"{holdout.accuracy:.1%}",
    )


def split_by_frequency(true_counts: Sequence[int]) -> tuple[list[int], list[int]]:
    """The classes present in ``true_counts``, split into the common and the rare half.

    Most common first (ties: lower index first); with an odd number of classes the middle
    one goes to the rare half, so two classes split one and one and three split one and two.
    """
    present = sorted((c for c in range(len(true_counts)) if true_counts[c] > 0),
                     key=lambda c: (-true_counts[c], c))
    half = len(present) // 2
    return present[:half], present[half:]


def _overcorrection(
    holdout: HoldoutEval, never: list[int], name: Callable[[int], str], t: Thresholds
) -> Verdict | None:
    """The class weighting pushed the predictions from the common classes to the rare ones.

    Three rules, the plainest first: the most common class is never predicted; the
    ranking of the halves is inverted; (three classes or more) the rare half gets
    ``overcorrection_factor`` times its share of the predictions. See ``thresholds``.
    """
    true, pred = holdout.true_counts, holdout.pred_counts
    common, rare = split_by_frequency(true)
    if not common or sum(pred) == 0:
        return None
    counts = {"true_counts": list(true), "pred_counts": list(pred),
              "holdout_accuracy": holdout.accuracy}
    majority = common[0]
    if majority in never:
        return make_verdict(
            Outcome.OVERCORRECTED,
            {"rule": "common_never_predicted", "common_class": name(majority), **counts},
            f"class weights invert the class balance: the most common class {name(majority)} "
            f"({true[majority]} held-out samples) is never predicted",
        )
    # the rare class the weights favour most: the highest predicted-to-true ratio
    favoured = max(rare, key=lambda c: (pred[c] / true[c], -c))
    f = t.overcorrection_factor
    mean = statistics.fmean
    true_ratio = mean(true[c] for c in common) / mean(true[c] for c in rare)
    pred_common = mean(pred[c] for c in common)
    pred_ratio = mean(pred[c] for c in rare) / pred_common if pred_common else math.inf
    fire = f * (1 + t.overcorrection_margin)
    if true_ratio >= f and f <= pred_ratio < fire:
        return _borderline(
            {"rule": "inverted", "common_class": name(majority), "rare_class": name(favoured),
             "true_ratio": true_ratio, "pred_ratio": pred_ratio, **counts},
            f"{_half(rare, name, 'rare')} predicted {times(pred_ratio)} as often as "
            f"{_half(common, name, 'common')} (overcorrected from {times(fire)})")
    if true_ratio >= f and pred_ratio >= fire:
        return make_verdict(
            Outcome.OVERCORRECTED,
            {"rule": "inverted", "common_class": name(majority), "rare_class": name(favoured),
             "true_ratio": true_ratio, "pred_ratio": pred_ratio, **counts},
            f"class weights invert the class balance: {_half(common, name, 'common')} "
            f"{'is' if len(common) == 1 else 'are'} {times(true_ratio)} as common as "
            f"{_half(rare, name, 'rare')} but predicted {times(pred_ratio)} less often",
        )
    rare_true = sum(true[c] for c in rare)
    if len(rare) < 2 or rare_true < t.min_class_support:
        return None
    share_true = rare_true / sum(true)
    share_pred = sum(pred[c] for c in rare) / sum(pred)
    if share_pred < f * share_true:
        return None
    if share_pred < fire * share_true:
        return _borderline(
            {"rule": "rare_overpredicted", "common_class": name(majority),
             "rare_class": name(favoured), "rare_share_true": share_true,
             "rare_share_pred": share_pred, **counts},
            f"the {len(rare)} rarest classes get {times(share_pred / share_true)} their share "
            f"of the predictions (overcorrected from {times(fire)})")
    starved = [c for c in never if c in common]
    summary = (
        f"class weights over-predict the rare classes: the {len(rare)} rarest hold "
        f"{share_true:.1%} of the held-out samples but get {share_pred:.1%} of the predictions "
        f"({times(share_pred / share_true)}); class {name(favoured)} is predicted "
        f"{pred[favoured]} times for {true[favoured]} samples"
    )
    if starved:
        summary += f"; common class{'es' if len(starved) > 1 else ''} " \
                   f"{class_list(starved, name)} never predicted"
    return make_verdict(
        Outcome.OVERCORRECTED,
        {"rule": "rare_overpredicted", "common_class": name(majority),
         "rare_class": name(favoured), "rare_classes": len(rare), "rare_share_true": share_true,
         "rare_share_pred": share_pred, "never_predicted": [name(c) for c in never], **counts},
        summary,
    )


def _borderline(evidence: dict[str, Any], text: str) -> Verdict:
    """A ``stable`` verdict whose predictions are within the margin of ``overcorrected``
    (``overcorrection_margin``): the warning the classifier adds to a stable probe."""
    return make_verdict(Outcome.STABLE, {"borderline_overcorrection": evidence},
                        f"borderline overcorrection: {text}")


def _half(classes: list[int], name: Callable[[int], str], which: str) -> str:
    """``0``, ``classes 0 and 1``, or ``the 20 most common classes`` / ``the 20 rarest``."""
    if len(classes) == 1:
        return name(classes[0])
    if len(classes) <= 3:
        return f"classes {', '.join(name(c) for c in classes[:-1])} and {name(classes[-1])}"
    return f"the {len(classes)} most common classes" if which == "common" else \
        f"the {len(classes)} rarest classes"


def class_list(classes: list[int], name: Callable[[int], str], limit: int = 5) -> str:
    return ", ".join(name(c) for c in classes[:limit]) + (" ..." if len(classes) > limit else "")


def times(ratio: float) -> str:
    """``2.5x``, ``12x``, ``inf x``."""
    if not math.isfinite(ratio):
        return "infinitely"
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
