"""The words and small formats every renderer shares: display only.

The terminal report, the Markdown summary and the HTML report name an outcome with the
same short word (``NaN``, ``OOM host``), a failure with the step it happened at (``@37``),
a clip and a learning rate the same way. They take those words from here, so that the
renderers cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stabcheck.results import Category, Outcome, ProbeResult

__all__ = [
    "CELLS",
    "MISSING",
    "UNJUDGED_CELL",
    "cell",
    "FAILURE_SECTIONS",
    "capped_batch_notes",
    "fmt_lr",
    "fmt_number",
    "fmt_weight",
    "join",
    "plural",
    "short_clip",
    "step_suffix",
]

# The short word each outcome shows in the grid, and its colour.
CELLS: dict[Outcome, tuple[str, str]] = {
    Outcome.STABLE: ("ok", "green"),
    Outcome.NON_FINITE: ("NaN", "red"),
    Outcome.DIVERGED: ("diverged", "red"),
    Outcome.EXPLODING_GRADIENTS: ("explodes", "red"),
    Outcome.STALLED: ("stalled", "yellow"),
    Outcome.MINORITY_COLLAPSE: ("collapse", "yellow"),
    Outcome.OVERCORRECTED: ("overcorr", "yellow"),
    Outcome.OOM_HOST: ("OOM host", "magenta"),
    Outcome.OOM_GPU: ("OOM GPU", "magenta"),
    Outcome.CRASHED: ("crashed", "bold yellow"),
    Outcome.TIMEOUT: ("timeout", "bold yellow"),
    Outcome.ERROR: ("error", "dim"),
}

# A stable setting whose learning was not judged (not a contender, or the budget ended)
# while its held-out predictions showed a problem: "ok" with a question mark.
UNJUDGED_CELL = ("ok?", "yellow")


def cell(result: ProbeResult) -> tuple[str, str]:
    """The grid word and colour of a ``ProbeResult`` (``CELLS``, or ``UNJUDGED_CELL``)."""
    evidence = result.verdict.evidence
    schedule = evidence.get("schedule") if isinstance(evidence.get("schedule"), dict) else {}
    early = schedule.get("first_rung_not_judged") in ("still_learning", "bn_warmup")
    if result.verdict.outcome is Outcome.STABLE and evidence.get("withheld_verdict") and \
            evidence.get("not_judged_because") in ("not_contender", "budget") and not early:
        return UNJUDGED_CELL  # a problem seen, not a class the model is still learning
    return CELLS[result.verdict.outcome]


# Failure sections, in the order the report shows them: category, title, title style.
FAILURE_SECTIONS: tuple[tuple[Category, str, str], ...] = (
    (Category.NUMERICAL, "Numerical failures", "bold red"),
    (Category.MEMORY, "Memory exhaustion", "bold magenta"),
    (Category.CRASH, "Crashes and timeouts", "bold yellow"),
    (Category.LEARNING, "Learning problems", "bold yellow"),
    (Category.ERROR, "Errors", "bold"),
)

# A grid cell whose probe did not run.
MISSING = "·"

_CLIP_WORDS = {"global_norm": "gnorm", "norm": "norm", "value": "value"}


def fmt_lr(lr: float) -> str:
    """A learning rate as the grid shows it: ``0.001``, ``1e-05``."""
    return f"{lr:g}"


def fmt_number(value: float | None) -> str:
    """A weight or ratio in at most a few characters: 0.55, 5, 12.5, 1000, 12,345."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_weight(value: float | None) -> str:
    """A class weight with its significant digits (4): 0.5009, 285.5, 4.397e-06; whole
    thousands in full with separators (1,000, 28,550)."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return fmt_number(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def plural(n: int, word: str, plural: str | None = None) -> str:
    """``"1 probe"``, ``"3 probes"`` (or the ``plural`` given)."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def join(names: Sequence[str]) -> str:
    """Names separated by commas."""
    return ", ".join(names)


def short_clip(clip: str) -> str:
    """A grid header's clip label: ``no clip``, ``gnorm 1``, ``norm 0.5``, ``value 1``."""
    kind, _, value = clip.partition("=")
    return "no clip" if clip == "none" else f"{_CLIP_WORDS.get(kind, kind)} {value}"


def step_suffix(result: ProbeResult) -> str:
    """``"@37"`` for a failure whose evidence names the step it happened at."""
    if result.verdict.category in (Category.OK, Category.LEARNING, Category.ERROR):
        return ""
    step = result.verdict.evidence.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0:
        return f"@{step}"
    return ""


def capped_batch_notes(results: Sequence[ProbeResult]) -> list[str]:
    """One sentence per batch size that was larger than the training sample (its probes
    trained on the whole sample a step, as ``fit`` would), in the order they ran."""
    seen: dict[int, int] = {}
    for result in results:
        settings = result.probe.settings
        if settings.effective_batch_size is not None:
            seen.setdefault(settings.batch_size, settings.effective_batch_size)
    return [f"batch {size} is larger than the {n} training samples: probed as {n}, as fit "
            "would" for size, n in seen.items()]


def executor_text(environment: dict[str, Any]) -> str | None:
    """Where the probes ran, when not on this machine: ``on a Ray cluster (local; 3 nodes,
    2 CPUs, 1 GPU)``; None for the local executor."""
    cluster = environment.get("ray")
    if environment.get("executor") != "ray" or not isinstance(cluster, dict):
        return None
    cpus, gpus = int(cluster.get("cpus") or 0), int(cluster.get("gpus") or 0)
    return (f"on a Ray cluster ({cluster.get('address', '?')}; "
            f"{plural(int(cluster.get('nodes') or 0), 'node')}, {plural(cpus, 'CPU')}"
            + (f", {plural(gpus, 'GPU')}" if gpus else "") + ")")
