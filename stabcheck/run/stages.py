"""The grid in stages: every setting's first rung, the contenders' longer runs, the seeds.

    probes ──▶ stage 1: each setting to the first rung ─────────────▶ numerical, memory
                  │      (a numerical risk: on to --steps)              verdicts final
                  ▼  contenders = the recommendation's finalists (judge.stages)
               stage 2: the contenders from scratch to --steps, and beyond while
                  │      their learning verdict is unsettled; beside them the first
                  │      rung's leader under every other seed (--seeds)
                  ▼  judge.stages.seed_candidate
               stage 3: the next contender's seeds, when the leader's worst seed falls
                        behind its one seed (or the leader failed a seed)

Every job's result is journaled the moment it arrives (``"probe"`` with its ``stage``,
``"seed_probe"`` with its seed); a resumed run takes the results of the jobs it finds
there and, as the decisions between stages are pure functions of those results, runs
exactly the jobs the interrupted run had still to run.

Stage 1 is skipped when every setting is a contender anyway (no more settings than
finalists): they go straight to stage 2, and the leader's seeds to stage 3. The run's
budget (``--budget``: optimizer steps, or seconds) bounds stages 2 and 3: a contender the
budget does not afford is left at its first rung, its learning not judged, and the report
says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stabcheck.config.thresholds import Thresholds
from stabcheck.executors import Runner
from stabcheck.judge.ranking import FINALISTS, reprobe_seeds
from stabcheck.judge.rungs import (
    CONTENDER,
    FIRST_RUNG,
    SEED,
    Ladder,
    ladder,
    rung_trend_words,
    staged,
    unsettled,
)
from stabcheck.judge.stages import (
    StepBudget,
    contender_caps,
    contenders,
    default_budget,
    healthy,
    seed_candidate,
)
from stabcheck.results import (
    Category,
    Probe,
    ProbeResult,
    ProbeRun,
    RunReport,
    SeedProbe,
    Verdict,
)
from stabcheck.run.scheduler import GridRun, Job


@dataclass
class StageLog:
    """What one stage ran: for the report's "how the steps were spent"."""

    stage: str
    jobs: int = 0
    steps: int = 0
    seconds: float = 0.0
    skipped: int = 0  # jobs the deadline left unstarted

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "jobs": self.jobs, "steps": self.steps,
                "seconds": round(self.seconds, 3), "skipped": self.skipped}


@dataclass
class StagedResult:
    """The grid's results (one per setting, plan order), the re-probes, the schedule."""

    results: list[ProbeResult] = field(default_factory=list)
    seed_probes: list[SeedProbe] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageHooks:
    """What the stages call.

    Args:
        classify: ProbeRun -> Verdict.
        record: journals and reports one job's result (job, count in its stage, the
            stage's job count, result, resumed).
        stage_started: told when a stage begins (its name, a sentence, its job count).
        report_of: the results so far as a report (for ranking them).
    """

    classify: Callable[[ProbeRun], Verdict]
    record: Callable[[Job, int, int, ProbeResult, bool], None]
    stage_started: Callable[[str, str, int], None]
    report_of: Callable[[list[ProbeResult], list[SeedProbe]], RunReport]


@dataclass(frozen=True)
class StageSetup:
    """What the stages follow.

    Args:
        thresholds: the run's.
        seed: the run's seed; ``seeds``: how many back the recommendation.
        budget_steps: ``--budget`` in steps (None: the default, or a time budget).
        budget_seconds: ``--budget`` in seconds (None: none).
        done: the results of a resumed run's journal, by job key.
        class_names: the data set's, for the sentences.
    """

    thresholds: Thresholds
    seed: int
    seeds: int
    budget_steps: int | None
    budget_seconds: float | None
    done: dict[Any, ProbeResult]
    class_names: Sequence[str] = ()


class StagedRun:
    """Runs a planned grid in stages on ``runners`` (see the module's docstring).

    Args:
        runners: the run's workers.
        weights: class weights per strategy, as the runner takes them.
        hooks: what the stages call (``StageHooks``).
        setup: what the stages follow (``StageSetup``).
    """

    def __init__(self, runners: list[Runner], weights: dict[str, list[float] | None],
                 hooks: StageHooks, setup: StageSetup) -> None:
        self._class_names = tuple(setup.class_names)
        self._runners = runners
        self._weights = weights
        self._classify = hooks.classify
        self._record = hooks.record
        self._stage_started = hooks.stage_started
        self._report_of = hooks.report_of
        self._t = setup.thresholds
        self._seed = setup.seed
        self._seeds = setup.seeds
        self._budget_steps = setup.budget_steps
        self._budget_seconds = setup.budget_seconds
        self._done = setup.done
        self._logs: list[StageLog] = []
        self._spent = 0
        self._order: list[str] = []  # the plan's probe ids
        self._budget_total: int | None = None  # the run's bound in steps
        self._latest: dict[str, ProbeResult] = {}  # each setting's latest grid result

    def run(self, probes: list[Probe], out: StagedResult) -> StagedResult:
        """Run the stages; ``out`` holds what finished, also when an interrupt ends it."""
        started = time.monotonic()
        self._order = [p.id for p in probes]
        deadline = None if self._budget_seconds is None else started + self._budget_seconds
        steps = probes[0].steps if probes else 1
        lad = ladder(steps, self._t)
        budget_default = self._budget_steps is None and self._budget_seconds is None
        total = (self._budget_steps if self._budget_steps is not None
                 else default_budget(len(probes), lad, self._seeds)
                 if budget_default else None)
        self._budget_total = total
        out.schedule = {"rungs": list(lad.rungs), "fit_loop_steps": len(probes) * steps,
                        "budget": {"steps": total, "seconds": self._budget_seconds,
                                   "default": budget_default},
                        "stages": []}
        first: dict[str, ProbeResult] = {}
        # Every setting is a contender anyway: straight to stage 2, no first rung to redo.
        direct = ((len(probes) <= FINALISTS or lad.first >= lad.steps)
                  and (total is None or total >= len(probes) * lad.steps))
        if direct:
            chosen = probes
        else:
            jobs = [Job(staged(p, FIRST_RUNG, lad.steps, self._t)) for p in probes]
            results = self._stage(FIRST_RUNG, f"first rung: {len(jobs)} settings x "
                                  f"{lad.first} steps", jobs, deadline, out)
            first = {r.probe.id: r for r in results}
            out.results[:] = [first[p.id] for p in probes if p.id in first]
            ranked_first = contenders(self._report_of(
                [first[p.id] for p in probes if p.id in first and healthy(first[p.id])], []))
            chosen = _unstaged([r.probe for r in ranked_first])
        # A contender whose first stage already trained its planned steps with a settled
        # verdict (it climbed there for a learning trend or a numerical risk) is judged:
        # it needs no second run.
        judged = [p for p in chosen if p.id in first and _settled_at_steps(first[p.id])]
        budget = self._time_budget(
            StepBudget(None if total is None else total - self._spent), deadline)
        caps = contender_caps([_stub(p) for p in chosen if p not in judged], lad, budget,
                              reserve=(self._seeds - 1) * lad.steps)
        caps.update({p.id: lad.steps for p in judged})
        jobs = [Job(staged(p, CONTENDER, caps[p.id], self._t)) for p in chosen
                if p.id in caps and p not in judged]
        # The leader after the first rung climbs under its other seeds beside the
        # contenders (a seed is a rung like another: no stage of its own to wait for).
        seeded = self._leader_seeds(chosen, caps, lad) if not direct else []
        jobs = [j for job in jobs for j in [job, *(s for s in seeded
                                                   if s.probe.id == job.probe.id)]] + [
            s for s in seeded if s.probe.id not in {j.probe.id for j in jobs}]
        by_id = dict(first)
        if jobs:
            second = self._stage(CONTENDER, _contender_text(jobs, lad), jobs, deadline, out)
            by_id.update({r.probe.id: r for r in second if r.probe.stage != SEED})
        out.results[:] = [by_id[p.id] for p in probes if p.id in by_id]
        contender_ids = [p.id for p in chosen if p.id in caps]
        self._seed_stage(out, caps, contender_ids, deadline,
                         done=sorted({j.probe.id for j in seeded}))
        chosen_ids = [p.id for p in chosen]
        out.results[:] = [_with_schedule(r, contender_ids, chosen_ids, lad, caps, direct,
                                         self._class_names, self._t)
                          for r in out.results]
        out.schedule.update(
            contenders=contender_ids, steps_run=self._spent,
            seconds=round(time.monotonic() - started, 3),
            stages=[log.to_json() for log in self._logs])
        return out

    # -- stages ------------------------------------------------------------------------

    def _stage(self, name: str, text: str, jobs: list[Job], deadline: float | None,
               out: StagedResult) -> list[ProbeResult]:
        """Run one stage's jobs; ``out`` holds every setting's latest result as they come
        (what an interrupt leaves)."""
        log = StageLog(name, jobs=len(jobs))
        self._logs.append(log)
        self._stage_started(name, text, len(jobs))
        started = time.monotonic()

        def record(count: int, job: Job, result: ProbeResult, resumed: bool) -> None:
            log.steps += result.run.steps_completed
            self._spent += result.run.steps_completed
            self._record(job, count, len(jobs), result, resumed)
            if job.seed is not None:
                out.seed_probes.append(SeedProbe(job.seed, result))
            else:  # the grid's result of the setting so far (what an interrupt leaves)
                self._latest[result.probe.id] = result
                out.results[:] = [self._latest[i] for i in self._order if i in self._latest]

        grid = GridRun(self._runners, self._weights, self._classify, record, deadline)
        try:
            return list(grid.run(jobs, self._done))
        finally:
            log.seconds = time.monotonic() - started
            log.skipped = grid.skipped

    def _leader_seeds(self, chosen: list[Probe], caps: dict[str, int],
                      lad: Ladder) -> list[Job]:
        """The first-rung leader's jobs under the other seeds (as the budget affords)."""
        seeds = reprobe_seeds(self._seed, self._seeds)
        leader = next((p for p in chosen if p.id in caps), None)
        if not seeds or leader is None:
            return []
        left = (None if self._budget_total is None else
                self._budget_total - self._spent - sum(caps.values()))
        cap = caps[leader.id]
        return [Job(staged(leader, SEED, cap, self._t), seed=s)
                for i, s in enumerate(seeds) if left is None or (i + 1) * lad.steps <= left]

    def _seed_stage(self, out: StagedResult, caps: dict[str, int],
                    contender_ids: list[str], deadline: float | None,
                    done: list[str] | None = None) -> None:
        """Re-probe contenders under the other seeds, the leader first (``done``: those
        already re-probed)."""
        seeds = reprobe_seeds(self._seed, self._seeds)
        if not seeds or not contender_ids:
            return
        done = list(done or [])
        while True:
            report = self._report_of(
                [r for r in out.results if r.probe.id in contender_ids], out.seed_probes)
            candidate = seed_candidate(report, done)
            if candidate is None or candidate.probe.id not in caps:
                return
            budget = self._time_budget(
                StepBudget(None if out.schedule["budget"]["steps"] is None
                           else out.schedule["budget"]["steps"] - self._spent), deadline)
            # the seeds climb as far as the contender did (within its cap)
            cap = min(caps[candidate.probe.id],
                      max(candidate.run.steps_completed, candidate.probe.steps))
            affordable = [s for i, s in enumerate(seeds) if budget.affords((i + 1) * cap)]
            if not affordable:
                return
            probe = _unstaged([candidate.probe])[0]
            jobs = [Job(staged(probe, SEED, cap, self._t), seed=s) for s in affordable]
            self._stage(SEED, f"{candidate.probe.id} under seed"
                        f"{'s' if len(jobs) > 1 else ''} "
                        f"{', '.join(str(s) for s in affordable)}", jobs, deadline, out)
            done.append(candidate.probe.id)
            out.seed_probes.sort(key=lambda p: (p.seed, p.probe_id))

    def _time_budget(self, budget: StepBudget, deadline: float | None) -> StepBudget:
        """``budget`` bounded by what the time left affords at the pace of the steps run
        so far (seconds per step on each worker)."""
        if deadline is None:
            return budget
        left = deadline - time.monotonic()
        ran = [log for log in self._logs if log.steps]
        if left <= 0:
            return StepBudget(0)
        if not ran:
            return budget
        pace = sum(log.seconds for log in ran) / sum(log.steps for log in ran)
        steps = int(left / max(pace, 1e-6) * len(self._runners))
        return StepBudget(steps if budget.left is None else min(steps, budget.left))


def _settled_at_steps(result: ProbeResult) -> bool:
    """A result that trained its planned steps and whose verdict no more steps would
    settle differently (``unsettled``)."""
    return result.run.steps_completed >= result.probe.steps and not unsettled(result.verdict)


def _stub(probe: Probe) -> ProbeResult:
    """A probe as a result, for ``contender_caps`` (which reads only its id)."""
    from stabcheck.results import Outcome, Termination

    return ProbeResult(ProbeRun(probe, Termination.NOT_RUN),
                       Verdict(Outcome.STABLE, {}, ""))


def _unstaged(probes: list[Probe]) -> list[Probe]:
    """The planned probes (a first-stage result's probe carries that stage's rungs)."""
    return [replace(p, rungs=(), stage="") for p in probes]


def _contender_text(jobs: list[Job], lad: Ladder) -> str:
    n = sum(job.seed is None for job in jobs)
    seeds = len(jobs) - n
    text = f"{n} contender{'s' if n != 1 else ''} to {lad.steps} steps and beyond if unsettled"
    return text + (f", the leader under {seeds} more seed{'s' if seeds != 1 else ''}"
                   if seeds else "")


def _with_schedule(result: ProbeResult, contender_ids: list[str], chosen_ids: list[str],
                   lad: Ladder, caps: dict[str, int], direct: bool,
                   class_names: Sequence[str], t: Thresholds) -> ProbeResult:
    """The result with ``evidence["schedule"]``: its stage, whether it was a contender,
    the steps it ran to. A healthy setting whose learning was not judged says why and how
    far it got: left at the first rung (not a contender, or one the budget did not
    afford), or a contender whose unsettled verdict met the budget's end; a learning
    problem it showed stays in its warnings."""
    pid = result.probe.id
    contender = pid in contender_ids
    verdict = result.verdict
    steps = result.run.steps_completed
    info = {"stage": result.probe.stage or (CONTENDER if direct else FIRST_RUNG),
            "contender": contender, "steps": steps, "cap": caps.get(pid)}
    evidence = {**verdict.evidence, "schedule": info}
    summary = verdict.summary
    reason, because = None, None
    if verdict.category is Category.OK and result.ran:
        seen = rung_trend_words(result.run, class_names, t)
        seen = f": {seen}" if seen else ""
        if not contender and pid in chosen_ids:
            because = "budget"
            reason = (f"stable at {steps} steps; learning not judged: the budget ended before "
                      f"it could train to its {result.probe.steps} planned steps{seen}")
        elif not contender and evidence.get("not_judged_because") in (
                None, "one_rung", "still_learning", "bn_warmup", "plateau"):
            because = "not_contender"
            if evidence.get("not_judged_because"):  # what the first rung itself said
                info["first_rung_not_judged"] = evidence["not_judged_because"]
            withheld = evidence.get("withheld_summary")
            shown = (f"; at step {steps} it showed: {withheld}"
                     if withheld and withheld not in summary else "")
            reason = (f"learning not judged: not among the {FINALISTS} contenders after the "
                      f"first rung ({steps} steps){shown}")
        elif contender and unsettled(verdict) and steps < lad.top:
            because = "budget"
            reason = f"stable at {steps} steps; not judged: the budget ended there{seen}"
    if reason is not None:
        info["stopped_by"] = because
        evidence.update(learning_verdict="not_judged", not_judged_because=because,
                        learning_verdict_reason=reason)
        summary = f"{summary}; {reason}" if summary else reason
    return ProbeResult(result.run, Verdict(verdict.outcome, evidence, summary))
