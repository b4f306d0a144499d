"""The ``--fail-on`` gate: which results fail a run (exit code 1).

A policy is a set of category names (``numerical``, ``memory``...), outcome names
(``non_finite``, ``oom_host``...), ``any`` (every category but ``ok``) or ``none``
(nothing fails). The CLI, the JUnit file and the Markdown summary all judge by ``fails``.

A run in which every probe ended ``error`` probed nothing: ``unprobed_cause`` gives the
first probe's cause, which the CLI reports as a usage error (exit 2) whatever the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from stabcheck.errors import ConfigError
from stabcheck.results import Category, Outcome, ProbeResult

__all__ = ["fails", "parse_fail_on", "unprobed_cause"]


def parse_fail_on(items: Iterable[str]) -> frozenset[str]:
    """Validate ``--fail-on`` values: categories, outcomes, ``any`` or ``none``."""
    known = {c.value for c in Category} | {o.value for o in Outcome} | {"any", "none"}
    chosen = set()
    for item in items:
        for part in str(item).split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name not in known:
                raise ConfigError(
                    f"unknown --fail-on value {part!r}; expected a category "
                    f"({', '.join(c.value for c in Category)}), an outcome, any or none"
                )
            chosen.add(name)
    return frozenset(chosen)


def fails(result: ProbeResult, policy: frozenset[str]) -> bool:
    """Whether ``result`` fails the run under the ``--fail-on`` policy.

    A memory outcome of a probe the memory ladder added itself (a rung, a forecast's check,
    a remedy: ``ProbeResult.is_memory_search``) is what the search is for, and never fails
    a run; the user's own batch sizes are judged as usual."""
    if "none" in policy:
        return False
    if result.verdict.category is Category.MEMORY and result.is_memory_search:
        return False
    if "any" in policy:
        return result.verdict.category is not Category.OK
    return bool({result.verdict.outcome.value, result.verdict.category.value} & policy)


def unprobed_cause(results: Sequence[ProbeResult]) -> str | None:
    """The first probe's cause, in one line, when every probe ended ``error``; else None.

    Such a run could not probe the input at all (a model that does not take the data, a
    custom step that raises, ...): that is a usage error, not a report.
    """
    if not results or any(r.verdict.outcome is not Outcome.ERROR for r in results):
        return None
    first = results[0]
    evidence = first.verdict.evidence
    line = _exception_line(str(evidence.get("message") or ""))
    if line and evidence.get("exception_type"):
        doing = "building the model" if evidence.get("phase") == "build" else "training"
        cause = f"{evidence['exception_type']} while {doing}: {line}"
    else:
        cause = " ".join(first.verdict.summary.split())
    if len(results) == 1:
        return f"the probe {first.probe.id} ended in an error: {cause}"
    return f"all {len(results)} probes ended in an error; the first ({first.probe.id}): {cause}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Keras bolds the message in a terminal


def _exception_line(message: str, limit: int = 300) -> str:
    """The sentence of an exception message that says what went wrong: its last line,
    leaving out the call context Keras wraps a layer's error in ("Exception encountered
    when calling ...", "Arguments received by ...: • x=...")."""
    lines = _ANSI.sub("", message).strip().splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith("Arguments received by"):
            lines = lines[:index]
            break
    kept = [line.strip() for line in lines
            if line.strip() and not line.strip().startswith("Exception encountered when")]
    return kept[-1][:limit] if kept else ""
