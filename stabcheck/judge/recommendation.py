"""The recommendation as a typed record, and the sentences a reader sees of it.

``stabcheck.judge.recommend`` chooses the configuration to train with and builds a
``Recommendation``; ``stabcheck.judge.summary`` keeps it in the run's one judgement; every
view (terminal, Markdown, HTML) lays out the sentences written here, and the JSON result
carries ``Recommendation.to_json()`` (the contract's ``recommended_configuration``).

Pure: frozen dataclasses and plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stabcheck.judge.gridview import is_stable
from stabcheck.judge.quality import is_regression
from stabcheck.judge.ranking import SeedScore, eligible, ranked
from stabcheck.results import RunReport
from stabcheck.text import fmt_lr

__all__ = ["NONE_STABLE", "Finalist", "Recommendation", "Rejected", "no_recommendation_text",
           "none_stable_text"]


@dataclass(frozen=True)
class Finalist:
    """A candidate re-probed under the other seeds, with its worst macro-F1."""

    probe_id: str
    worst_macro_f1: float | None
    seed_scores: tuple[SeedScore, ...]

    def to_json(self) -> dict[str, Any]:
        return {"probe_id": self.probe_id, "worst_macro_f1": self.worst_macro_f1,
                "seed_scores": [x.to_json() for x in self.seed_scores]}


@dataclass(frozen=True)
class Rejected:
    """A better-scoring, less steady or riskier candidate passed over, and why."""

    probe_id: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"probe_id": self.probe_id, "reason": self.reason}


@dataclass(frozen=True)
class Recommendation:
    """The one configuration to train with and the evidence for it.

    ``macro_f1`` and ``minority_recall`` are the worst over its seeds; ``accuracy`` and
    ``pr_auc`` its run seed's; ``seeds`` how many seeds back it (``seeds_requested``:
    ``--seeds``); ``finalists`` every re-probed candidate in rank order; ``reasons`` the
    sentences that say why; ``rejected`` the candidates passed over. A regression target
    has ``r2``, ``mae`` and ``rmse`` (``regression``) in place of the class scores.
    """

    probe_id: str
    class_weight: str
    learning_rate: float
    clip: str
    batch_size: int
    macro_f1: float | None
    minority_recall: float | None
    minority_class: str | None
    accuracy: float | None
    pr_auc: float | None
    stable_probes: int
    seeds: int
    seeds_requested: int
    seed_scores: tuple[SeedScore, ...]
    finalists: tuple[Finalist, ...]
    reasons: tuple[str, ...]
    rejected: tuple[Rejected, ...]
    regression: bool = False
    r2: float | None = None
    mae: float | None = None
    rmse: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's ``recommended_configuration``."""
        out: dict[str, Any] = {
            "probe_id": self.probe_id,
            "class_weight": self.class_weight,
            "learning_rate": self.learning_rate,
            "clip": self.clip,
            "batch_size": self.batch_size,
            "macro_f1": self.macro_f1,
            "minority_recall": self.minority_recall,
            "minority_class": self.minority_class,
            "accuracy": self.accuracy,
            "pr_auc": self.pr_auc,
            "stable_probes": self.stable_probes,
            "seeds": self.seeds,
            "seeds_requested": self.seeds_requested,
            "seed_scores": [x.to_json() for x in self.seed_scores],
            "finalists": [f.to_json() for f in self.finalists],
            "reasons": list(self.reasons),
            "rejected": [r.to_json() for r in self.rejected],
        }
        if self.regression:  # held-out errors in place of the class scores (null)
            out.update(r2=self.r2, mae=self.mae, rmse=self.rmse)
        return out

    # ------------------------------------------------------------------ its sentences

    def words(self) -> list[str]:
        """The settings as ``key=value`` words: ``["class_weight=balanced", "lr=0.01",
        "clip=global_norm=1", "batch_size=32"]`` (no class weight for a regression)."""
        words = [f"lr={fmt_lr(self.learning_rate)}", f"clip={self.clip}",
                 f"batch_size={self.batch_size}"]
        if self.regression:
            return words
        return [f"class_weight={self.class_weight}", *words]

    def scores(self) -> str:
        """Its held-out scores: ``"macro-F1 0.79, minority recall 0.80 (class 1), PR-AUC
        0.70, accuracy 90.0%"`` ("" without any)."""
        quality = []
        if self.r2 is not None:
            quality.append(f"R² {self.r2:.2f}")
        for key, value in (("mae", self.mae), ("rmse", self.rmse)):
            if value is not None:
                quality.append(f"{key.upper()} {value:.4g}")
        if self.macro_f1 is not None:
            quality.append(f"macro-F1 {self.macro_f1:.2f}")
        if self.minority_recall is not None:
            quality.append(f"minority recall {self.minority_recall:.2f} "
                           f"(class {self.minority_class})")
        if self.pr_auc is not None:
            quality.append(f"PR-AUC {self.pr_auc:.2f}")
        if self.accuracy is not None:
            quality.append(f"accuracy {100 * self.accuracy:.1f}%")
        return ", ".join(quality)

    def evidence(self) -> str:
        """The probe behind it and its held-out scores: ``"probe cw=...: macro-F1 0.79,
        ..."``."""
        scores = self.scores()
        return f"probe {self.probe_id}" + (": " + scores if scores else "")

    def why(self) -> str:
        """``"why: ..."``: the reasons (its minority recall, which ``evidence`` shows, left
        out)."""
        reasons = [r for r in self.reasons if not r.startswith("minority recall")]
        return "why: " + "; ".join(reasons)


# What the views say where no setting was stable.
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
