"""A loss history as a line of block characters, for the terminal grid's cells."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SPARK_WIDTH", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_BROKEN = "×"
SPARK_WIDTH = 8
# A sparkline spans at least a factor 2 of loss: a flat or barely moving curve stays a
# flat line in the middle instead of its noise being stretched over all eight levels.
_MIN_SPAN = math.log10(2.0)


def sparkline(losses: Sequence[float | None], width: int = SPARK_WIDTH,
              broken: bool = False) -> str:
    """A loss history as ``width`` block characters on a log scale, oldest first.

    The history is cut into ``width`` equal runs of steps, each shown by its geometric
    mean, scaled from the lowest to the highest of them (at least a factor 2 apart).
    A history that reaches NaN, Inf or ``None`` (a non-finite value in the JSON) ends
    in ``×`` after its finite part, as does any history with ``broken`` set (a probe whose
    gradient or weight turned non-finite while its loss was still finite).

    Args:
        losses: the loss per step.
        width: characters, ``×`` included; fewer when there are fewer steps.
        broken: end in ``×`` even when every loss is finite.

    Returns:
        The sparkline, e.g. ``"█▆▄▃▂▂▁▁"`` or ``"▁▁▂▃▅▇×"``; ``""`` without any step.
    """
    finite: list[float] = []
    for value in losses:
        if value is None or not math.isfinite(value):
            broken = True
            break
        finite.append(float(value))
    bars = width - 1 if broken else width
    if not finite or bars < 1:
        return _BROKEN if broken else ""
    positive = [v for v in finite if v > 0]
    floor = min(positive) / 10 if positive else 1.0  # a zero loss shows below the rest
    logs = [math.log10(max(v, floor)) for v in finite]
    n = min(bars, len(logs))
    means = []
    for i in range(n):
        chunk = logs[i * len(logs) // n: (i + 1) * len(logs) // n]
        means.append(sum(chunk) / len(chunk))
    low, high = min(means), max(means)
    span = max(high - low, _MIN_SPAN)
    base = (low + high) / 2 - span / 2
    top = len(_BARS) - 1
    line = "".join(_BARS[min(top, max(0, round((m - base) / span * top)))] for m in means)
    return line + (_BROKEN if broken else "")
