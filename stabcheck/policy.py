"""The ``--fail-on`` gate: which results fail a run (exit code 1).

A policy is a set of category names (``numerical``, ``memory``...), outcome names
(``non_finite``, ``oom_host``...), ``any`` (every category but ``ok``) or ``none``
(nothing fails). The CLI, the JUnit file and the Markdown summary all judge by ``fails``.
"""

from __future__ import annotations

from collections.abc import Iterable

from stabcheck.errors import ConfigError
from stabcheck.results import Category, Outcome, ProbeResult

__all__ = ["fails", "parse_fail_on"]


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
