"""How a run spent its time and steps, in one line for every view.

``"18 probes in 8.6 s: 4 decided in the first rung (25 steps), 1 on to 100 steps for a
numerical risk, 3 contenders to 100 steps, 2 seed runs; 1,200 steps in all, against 1,800
for a plain fit of every setting"``. Read from the report's ``schedule`` (written by
``stabcheck.run.stages``) and its results. Pure.
"""

from __future__ import annotations

from stabcheck.results import Category, RunReport
from stabcheck.text import plural

__all__ = ["spending_line"]


def spending_line(report: RunReport) -> str | None:
    """The line, or None for a run without a staged grid (a memory run, an old result)."""
    schedule = report.schedule or {}
    rungs = schedule.get("rungs") or []
    if not rungs or not report.results:
        return None
    first = rungs[0]
    staged = {r.probe.id: (r.verdict.evidence.get("schedule") or {}) for r in report.results}
    firsts = [r for r in report.results if staged[r.probe.id].get("stage") == "first_rung"]
    decided = [r for r in firsts if r.verdict.category not in (Category.OK, Category.LEARNING)]
    climbed = [r for r in firsts if r not in decided and r.run.steps_completed > first]
    contenders = schedule.get("contenders") or []
    seconds = schedule.get("run_seconds", schedule.get("seconds"))
    head = plural(len(report.results), "probe")
    if isinstance(seconds, (int, float)):
        head += f" in {seconds:.1f} s"
    parts = []
    if firsts:
        parts.append(f"{len(decided)} decided in the first rung ({first} steps)")
        if climbed:  # only a numerical risk climbs past the first rung there
            parts.append(f"{len(climbed)} on to {max(r.run.steps_completed for r in climbed)} "
                         "steps for a numerical risk")
    if contenders:
        steps = [r.run.steps_completed for r in report.results if r.probe.id in contenders]
        reach = (f"{min(steps)}" if min(steps, default=0) == max(steps, default=0)
                 else f"{min(steps)}-{max(steps)}")
        parts.append(f"{plural(len(contenders), 'contender')} to {reach} steps")
    if report.seed_probes:
        parts.append(plural(len(report.seed_probes), "seed run"))
    line = f"{head}: {', '.join(parts)}" if parts else head
    run, fit = schedule.get("steps_run"), schedule.get("fit_loop_steps")
    if isinstance(run, int) and isinstance(fit, int):
        line += f"; {run:,} steps in all, against {fit:,} for a plain fit of every setting"
    skipped = sum(int(s.get("skipped") or 0) for s in schedule.get("stages") or ())
    if skipped:
        line += f"; the budget left {plural(skipped, 'job')} unstarted"
    return line
