"""The rungs a probe climbs, and whether it climbs on: successive halving for verdicts.

A numerical blow-up or an OOM kill shows in a few steps; a learning verdict (a class never
predicted, an overcorrection) needs many, and is worth them only for the settings the
recommendation will choose between. So a probe is evaluated at *rungs* (Hyperband's and
ASHA's word, Li et al. 2017 and 2020): every setting climbs the first, and the evidence at
each rung decides whether it climbs the next.

    ladder(100):   25 ── 50 ── 100 ── 200 ── 400
                   first  second steps  (while a contender's learning verdict is unsettled)

Every setting climbs the first rung, the contenders the others.

The decision *at* a rung (``next_rung``) is a pure function of the probe's own run, so a
worker's parent anywhere (a Ray actor too) applies it the same way, and a resumed run
makes the same decisions. The decisions *between* probes (which settings are contenders,
which get seeds) are the engine's, between stages (``stabcheck.judge.stages``).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stabcheck.config.thresholds import DEFAULT_THRESHOLDS, Thresholds
from stabcheck.judge.trend import gradient_trend, loss_trend, untrained_loss
from stabcheck.results import Category, Probe, ProbeRun, Verdict

# A probe's stage: what it climbs for (``Probe.stage``).
FIRST_RUNG = "first_rung"  # every setting: numerical and memory verdicts
CONTENDER = "contender"  # the recommendation's finalists: to --steps and beyond
SEED = "seed"  # a contender under another seed (--seeds): the same rungs


@dataclass(frozen=True)
class Ladder:
    """The rungs of a run of ``steps`` planned steps (``ladder``)."""

    first: int
    second: int
    steps: int
    top: int

    @property
    def rungs(self) -> tuple[int, ...]:
        """Every rung, in order: first, second, steps, then doubling up to ``top``."""
        out = [self.first, self.second, self.steps]
        step = self.steps * 2
        while step <= self.top:
            out.append(step)
            step *= 2
        return tuple(sorted(set(out)))

    def up_to(self, last: int) -> tuple[int, ...]:
        """The rungs up to ``last`` steps."""
        return tuple(r for r in self.rungs if r <= last)


def ladder(steps: int, t: Thresholds = DEFAULT_THRESHOLDS) -> Ladder:
    """The rungs of a probe of ``steps`` planned steps.

    The first rung is ``first_rung_fraction`` of the steps, but at least the steps the
    loss-trend rule needs (``trend_min_steps``) so that a divergence is judged there, and
    at most half the steps (two rungs before ``steps``: a trend of the held-out
    predictions needs two evaluations). The second is twice the first. Past ``steps`` a
    contender's rungs double up to ``collapse_extension_factor`` x ``steps``.
    """
    steps = max(1, int(steps))
    first = min(math.ceil(steps / 2),
                max(math.ceil(steps * t.first_rung_fraction), t.trend_min_steps))
    first = max(1, first)
    second = min(2 * first, steps)
    top = steps * max(1, int(t.collapse_extension_factor))
    return Ladder(first, second, steps, top)


def staged(probe: Probe, stage: str, last: int, t: Thresholds = DEFAULT_THRESHOLDS) -> Probe:
    """``probe`` to climb as ``stage``, up to ``last`` steps (its rungs up to there)."""
    from dataclasses import replace

    return replace(probe, rungs=ladder(probe.steps, t).up_to(last), stage=stage)


def next_rung(run: ProbeRun, verdict: Verdict, t: Thresholds = DEFAULT_THRESHOLDS
              ) -> int | None:
    """Whether a probe just evaluated at a rung climbs to the next, and which step that is.

    ``verdict`` is the classifier's on the run so far. A numerical verdict is final: the
    probe stops. Otherwise, by the probe's stage:

    - the first rung (every setting): a probe whose loss or gradient norm is heading up
      (``numerical_risk``) climbs on to the planned steps, to see whether it blows up; the
      others stop there, their learning not judged (it is the contenders' to earn: a
      learning problem seen at the first rung is often gone at the long run's end);
    - a contender or a seed climbs every rung to the planned steps, and beyond them while
      its learning verdict is unsettled (a problem that shrinks from rung to rung, a
      class the model already ranks but does not predict yet, a loss on the class
      prior's plateau, BatchNormalization statistics not warmed up).

    Returns the step to train to, or None to finish.
    """
    probe = run.probe
    done = run.steps_completed
    later = [r for r in probe.rungs if r > done]
    if not later or done < 1:
        return None
    nxt = later[0]
    if verdict.category is Category.NUMERICAL:
        # NaN/Inf and a loss 1000x its start are final anywhere; a divergence or an
        # explosion seen in the trend of a run shorter than its planned steps is a risk to
        # confirm there (a spike the run recovers from is not a blow-up)
        if decisive(verdict) or done >= probe.steps:
            return None
        return nxt
    if probe.stage == FIRST_RUNG:
        # a learning verdict is the contenders' to earn: a setting climbs on from its
        # first rung only to settle a numerical risk
        return nxt if numerical_risk(run, t) is not None else None
    if done < probe.steps:
        return nxt
    return nxt if unsettled(verdict) or _hidden_but_ranked(run, verdict, t) else None


def _hidden_but_ranked(run: ProbeRun, verdict: Verdict, t: Thresholds) -> bool:
    """An overcorrection whose hidden class the model already ranks above chance: the
    weights hold a class under the threshold that the model is learning, and a longer run
    may bring it out (FordA-like series with x100 weights at lr 1e-2: class 0 ranked at
    ROC-AUC 0.74 -> 0.84 -> 0.90 at steps 100, 200, 400, never predicted yet; its long
    fit predicts it)."""
    from stabcheck.judge.withheld import hidden_but_ranked, hides_the_common_class

    return hides_the_common_class(verdict) and hidden_but_ranked(run, t)


def decisive(verdict: Verdict) -> bool:
    """A numerical verdict no later step can undo: a non-finite value, or a loss whose
    recent median is ``early_stop_factor`` x its start (what the worker stops on)."""
    from stabcheck.results import Outcome

    return verdict.outcome is Outcome.NON_FINITE or verdict.evidence.get("rule") == "blown_up"


def climb(run: ProbeRun, class_names: Sequence[str] = (), thresholds: Thresholds | None = None,
          deadline: float | None = None, class_counts: Sequence[int] = ()) -> int | None:
    """``next_rung`` on the classifier's verdict of the run so far: the engine's answer
    to a worker that evaluated a probe at a rung (a plain function a Ray actor calls too).
    ``deadline``: a ``time.time()`` past which no probe climbs (``--budget`` in time);
    ``class_counts``: training samples per class, as the classifier takes them."""
    import time

    from stabcheck.judge.classify import classify

    t = thresholds or DEFAULT_THRESHOLDS
    if deadline is not None and time.time() >= deadline:
        return None
    return next_rung(run, classify(run, class_names, t, class_counts=class_counts), t)


def unsettled(verdict: Verdict) -> bool:
    """A learning verdict that more steps may settle: a class never predicted (unweighted
    cross-entropy learns the class prior first and the rare classes later:
    ``collapse_extension_factor``), nothing learned yet, or a verdict withheld because the
    problem is shrinking, the model is still learning the class it misses, it sits on
    the class prior's plateau, or its BatchNormalization statistics are not warmed up."""
    from stabcheck.results import Outcome

    evidence = verdict.evidence
    if verdict.outcome in (Outcome.MINORITY_COLLAPSE, Outcome.STALLED):
        return True  # a slow start (the keras-io text model at lr 1e-3) learns later
    return evidence.get("learning_verdict") == "not_judged" and evidence.get(
        "not_judged_because") in ("shrinking", "still_learning", "bn_warmup", "plateau")


def numerical_risk(run: ProbeRun, t: Thresholds = DEFAULT_THRESHOLDS) -> dict | None:
    """Evidence that a probe that has not failed is heading for a numerical failure, or
    None: the medians of the loss's last three trend windows rise, the last to above
    ``risk_factor`` x the lowest (half way to the divergence rule's factor), or the
    gradient norm's trend at the last step (its rolling median) is a tenth of the
    explosion ratio above its baseline (``gradient_trend``)."""
    losses = [s.loss for s in run.steps]
    if len(losses) < t.trend_min_steps or not all(math.isfinite(v) for v in losses):
        return None
    trend = loss_trend(losses, t, start=untrained_loss(losses, run.step_info))
    medians: Sequence[float] = trend.evidence.get("window_medians") or ()
    if len(medians) >= 3:
        a, b, c = medians[-3:]
        low = max(min(medians), t.trend_floor * abs(losses[0]))
        if a < b < c and low > 0 and c > t.risk_factor * low:
            return {"kind": "loss_rising", "window_medians": list(medians[-3:]),
                    "lowest_median": low, "factor": c / low}
    grads = gradient_trend([s.grad_norm for s in run.steps], t)
    if grads is not None and grads["ratio"] >= t.explosion_ratio / 10:
        return {"kind": "gradient_rising", **grads}
    return None


def rung_trend_words(run: ProbeRun, class_names: Sequence[str] = (),
                     t: Thresholds = DEFAULT_THRESHOLDS) -> str | None:
    """What the held-out predictions did across the probe's rungs, for its rarest class
    (of at least ``min_class_support`` held-out samples): ``class 9 predicted 0 -> 12
    times (12 held out), still rising``; with one rung, its count there; None without
    evaluations."""
    from stabcheck.results import HoldoutEval

    evals = [r for r in run.rungs if isinstance(r.holdout, HoldoutEval) and r.holdout.n]
    if not evals:
        return None
    true = evals[-1].holdout.true_counts
    present = [c for c, n in enumerate(true) if n >= t.min_class_support]
    if not present:
        return None
    rare = min(present, key=lambda c: (true[c], c))
    name = str(class_names[rare]) if len(class_names) == len(true) else str(rare)
    counts = [e.holdout.pred_counts[rare] for e in evals]
    if len(counts) == 1:
        return (f"class {name} predicted {counts[0]} times at step {evals[0].step} "
                f"({true[rare]} held out)")
    a, b = counts[-2], counts[-1]
    trend = "still rising" if b > a else "falling" if b < a else "unchanged"
    shown = " -> ".join(str(c) for c in counts)
    return f"class {name} predicted {shown} times ({true[rare]} held out), {trend}"
