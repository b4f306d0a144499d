"""The small vocabulary every verdict rule shares: building a ``Verdict``, a step in
words, the last finite loss. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stabcheck.results import (
    Outcome,
    StepRecord,
    Verdict,
)


def make_verdict(outcome: Outcome, evidence: dict[str, Any], summary: str) -> Verdict:
    return Verdict(outcome, evidence, summary)


def at_step(step: int) -> str:
    return f"at step {step}" if step else "during the first step"


def last_finite_loss(steps: Sequence[StepRecord]) -> float | None:
    for record in reversed(steps):
        if math.isfinite(record.loss):
            return record.loss
    return None
