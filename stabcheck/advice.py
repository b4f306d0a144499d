""""What to do": the advice the report ends with, most urgent first, and the count line.

Numerical failures come first, explained by ``stabcheck.explain``; then memory
exhaustion, crashes and timeouts, learning problems and probes that could not start.
Pure functions returning plain sentences; the renderers add the markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from stabcheck.explain import numerical_explanations
from stabcheck.gridview import RAN, unique
from stabcheck.results import Category, Outcome, ProbeResult, RunReport
from stabcheck.units import human_bytes
from stabcheck.wording import join, plural

__all__ = ["COUNT_WORDS", "is_remedy_probe", "recommendations", "summary_counts"]

# The words of the count line, in its order.
COUNT_WORDS: tuple[tuple[Category, str], ...] = (
    (Category.OK, "stable"),
    (Category.NUMERICAL, "numerical"),
    (Category.MEMORY, "memory"),
    (Category.CRASH, "crash"),
    (Category.LEARNING, "learning"),
    (Category.ERROR, "error"),
)


def summary_counts(results: Iterable[ProbeResult]) -> dict[Category, int]:
    """How many results fall in each category; every category is present, zero or not."""
    counts = {category: 0 for category in Category}
    for result in results:
        counts[result.verdict.category] += 1
    return counts


def is_remedy_probe(result: ProbeResult) -> bool:
    """A memory ladder's remedy measurement (gradient accumulation, mixed precision), whose
    batch size is not one the user's float32 training would run at."""
    settings = result.probe.settings
    return settings.accumulation_steps != 1 or settings.dtype_policy is not None


def _memory_advice(report: RunReport) -> list[str]:
    """Which of the user's batch sizes exhausted memory, and the largest that fits: the
    memory ladder's forecast where a real run verified it, else the largest batch size that
    ran. Remedy measurements (``is_remedy_probe``) count for neither; the ladder's own
    rungs and checks that ran out are findings of its search, shown in the memory section."""
    results = [r for r in report.results if not is_remedy_probe(r)]
    failures = [r for r in results
                if r.verdict.category is Category.MEMORY and not r.is_memory_search]
    if not failures:
        return []
    building = [r for r in failures if r.verdict.evidence.get("phase") == "build"]
    if len(building) == len(failures):  # the model itself, before any batch
        weights = building[0].verdict.evidence.get("weight_bytes")
        need = f" (its weights alone need {human_bytes(weights)})" if weights else ""
        budget = building[0].verdict.evidence.get("budget_bytes")
        within = f"the {human_bytes(budget)} budget" if budget else "the memory there is"
        return [f"the model does not fit {within} even before training{need}: no batch "
                "size helps; give it a larger --memory-budget, or a smaller model or dtype"]
    exhausted = sorted(set(r.probe.settings.batch_size for r in failures))
    kinds = {r.verdict.outcome for r in failures}
    where = (
        "host memory"
        if kinds == {Outcome.OOM_HOST}
        else "GPU memory"
        if kinds == {Outcome.OOM_GPU}
        else "memory (host and GPU)"
    )
    sizes = join([str(b) for b in exhausted])
    text = f"batch size{'s' if len(exhausted) > 1 else ''} {sizes} exhausted {where}"
    memory = report.memory
    verified = memory.verified if memory is not None else None
    ran = [r.probe.settings.batch_size for r in results if r.verdict.category in RAN]
    if memory is not None and memory.forecast_batch is not None and verified is not None \
            and verified.fits:
        text += (f"; the largest batch size that fits the budget is {memory.forecast_batch} "
                 f"(forecast, verified by a real run at {human_bytes(verified.peak_bytes)})")
    elif ran:
        text += f"; the largest batch size that ran was {max(ran)}"
    else:
        budget = "--gpu-memory-budget" if kinds == {Outcome.OOM_GPU} else "--memory-budget"
        text += f"; no batch size ran: try smaller batch sizes or a larger {budget}"
    return [text]


def _why_crashed(result: ProbeResult) -> str:
    evidence = result.verdict.evidence
    for key in ("signal", "signal_name"):
        if isinstance(evidence.get(key), str) and evidence[key]:
            return evidence[key]
    code = evidence.get("returncode", result.run.returncode)
    return f"exit code {code}" if code is not None else "no exit status"


def _crash_advice(results: Sequence[ProbeResult]) -> list[str]:
    crashed = [r for r in results if r.verdict.outcome is Outcome.CRASHED]
    timeouts = [r for r in results if r.verdict.outcome is Outcome.TIMEOUT]
    advice = [
        f"probe {r.probe.id} crashed ({_why_crashed(r)}): look at its stderr tail in the JSON"
        for r in crashed[:3]
    ]
    if len(crashed) > 3:
        advice.append(f"{plural(len(crashed) - 3, 'more probe')} crashed: see the JSON")
    if len(timeouts) == 1:
        advice.append(f"probe {timeouts[0].probe.id} timed out: raise --timeout or lower --steps")
    elif timeouts:
        advice.append(f"{len(timeouts)} probes timed out: raise --timeout or lower --steps")
    return advice


def _learning_advice(results: Sequence[ProbeResult]) -> list[str]:
    def strategies(outcome: Outcome) -> str:
        return join(
            unique(r.probe.settings.class_weight for r in results if r.verdict.outcome is outcome)
        )

    outcomes = Counter(r.verdict.outcome for r in results)
    advice = []
    if outcomes[Outcome.OVERCORRECTED]:
        advice.append(
            f"class_weight={strategies(Outcome.OVERCORRECTED)} overcorrected (the rare classes "
            "are predicted far more often than they occur, at the common classes' expense): "
            "use a milder strategy such as sqrt or effective"
        )
    if outcomes[Outcome.MINORITY_COLLAPSE]:
        advice.append(
            f"with class_weight={strategies(Outcome.MINORITY_COLLAPSE)} the model ignores a "
            "minority class: weight the classes (balanced or sqrt)"
        )
    if outcomes[Outcome.STALLED]:
        n = outcomes[Outcome.STALLED]
        advice.append(
            f"{plural(n, 'probe')} stalled (the loss did not move, or a regression model "
            "predicts no better than the mean, R² <= 0): the learning rate may be too low, or "
            "--steps too few"
        )
    return advice


def _error_advice(results: Sequence[ProbeResult]) -> list[str]:
    errors = [r for r in results if r.verdict.category is Category.ERROR]
    if not errors:
        return []
    first = errors[0]
    more = f" (and {plural(len(errors) - 1, 'more probe')})" if len(errors) > 1 else ""
    return [f"probe {first.probe.id}{more} could not start: {first.verdict.summary}"]


def _count_line(results: Sequence[ProbeResult]) -> str:
    counts = summary_counts(results)
    parts = ", ".join(f"{counts[category]} {word}" for category, word in COUNT_WORDS)
    return f"{plural(len(results), 'probe')}: {parts}"


def recommendations(report: RunReport) -> list[str]:
    """What to do about the results, most urgent first; the last line counts the outcomes.

    Numerical failures come first, each explained by ``numerical_explanations``: where
    (step, variable or operation), why (the class weights or the learning rate, judged by
    the twins with milder weights) and what fixes it (what the grid shows to work).

    Args:
        report: the run to advise on.

    Returns:
        Plain sentences (no markup); the last one is always the count line
        ``"N probes: a stable, b numerical, c memory, d crash, e learning, f error"``.
    """
    results = report.results
    advice = (
        numerical_explanations(report)
        + _memory_advice(report)
        + _crash_advice(results)
        + _learning_advice(results)
        + _error_advice(results)
    )
    if not results:
        advice.append("no probe ran")
    elif all(r.verdict.outcome is Outcome.STABLE for r in results):
        advice.append(
            f"all {plural(len(results), 'probe')} were stable: "
            "every setting in this grid trained without trouble"
            if len(results) > 1
            else "the probe was stable: this setting trained without trouble"
        )
    advice.append(_count_line(results))
    return advice
