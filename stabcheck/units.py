"""Byte sizes: parse what users write (``2GiB``, ``512MiB``, ``1.5G``) and print them back.

Binary units (``KiB``, ``MiB``, ``GiB``, ``TiB``) and the bare letters ``K``, ``M``, ``G``,
``T`` mean powers of 1024, as in Docker's ``--memory``; ``KB``, ``MB``, ``GB``, ``TB``
mean powers of 1000. A plain integer is a number of bytes.
"""

from __future__ import annotations

import math
import re

from stabcheck.errors import ConfigError

_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[A-Za-z]*)\s*$")

_PREFIXES = "KMGTP"


def _multiplier(unit: str) -> int | None:
    """Bytes per ``unit``, or ``None`` where ``unit`` is not a size unit."""
    u = unit.upper()
    if u in ("", "B"):
        return 1
    prefix, rest = u[0], u[1:]
    power = _PREFIXES.find(prefix) + 1
    if power == 0:
        return None
    if rest in ("", "I", "IB"):  # K, Ki, KiB: binary, like Docker
        return 1024**power
    if rest == "B":  # KB: decimal, like disk vendors and the SI
        return 1000**power
    return None


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``"2GiB"``, ``"512MiB"``, ``"1.5G"``, ``"2GB"`` or ``"1024"``.

    Args:
        text: the size as written in a flag or config file; an ``int`` is taken as bytes.

    Returns:
        The size in bytes.

    Raises:
        ConfigError: ``text`` is not a non-negative number followed by a known unit.
    """
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    match = _SIZE.match(text) if isinstance(text, str) else None
    multiplier = _multiplier(match["unit"]) if match else None
    if match is None or multiplier is None or (multiplier == 1 and "." in match["number"]):
        raise ConfigError(
            f"invalid size '{text}': expected a number with a unit such as 512MiB or 2GiB"
        )
    return int(round(float(match["number"]) * multiplier))


_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: int | float | None) -> str:
    """A byte count for people: ``"512 B"``, ``"512.0 MiB"``, ``"2.1 GiB"``; ``"—"`` for None."""
    if n is None:
        return "—"
    if isinstance(n, float) and not math.isfinite(n):
        return str(n)
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    if value < 1024:
        return f"{sign}{int(value)} B"
    index = 0
    value /= 1024
    while round(value, 1) >= 1024 and index < len(_BINARY_UNITS) - 1:
        value /= 1024
        index += 1
    return f"{sign}{value:.1f} {_BINARY_UNITS[index]}"
