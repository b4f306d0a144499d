"""The probe-id grammar: how a probe's id is built and read, in one place.

A probe of the user's grid is ``cw=<strategy>,lr=<lr>,clip=<clip>,bs=<batch size>``
(``cw=balanced,lr=0.01,clip=none,bs=32``). A probe the memory search adds is
``<tag>:<grid id>[,<setting>=<value>...]``: ``memory:`` for a batch size the user asked
``stabcheck memory`` for, ``ladder:`` for a rung measured on the way to a forecast,
``verify:`` for a forecast's check, ``accumulate:`` and ``mixed:`` for the remedies
measured for a batch size that does not fit (with ``accumulation_steps=N`` or
``dtype_policy=...`` appended, sorted by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A batch size the user asked ``stabcheck memory`` for: measured, one of their settings.
REQUESTED_TAG = "memory"
# The memory search's own probes: their running out of memory is a finding, not a failure.
MEMORY_SEARCH_TAGS = ("ladder", "verify", "accumulate", "mixed")


def grid_id(class_weight: str, lr: float, clip: str, batch_size: int) -> str:
    """The contract's id of a grid probe: ``cw=balanced,lr=0.01,clip=none,bs=32``."""
    return f"cw={class_weight},lr={lr:g},clip={clip},bs={batch_size}"


def search_id(tag: str, class_weight: str, lr: float, clip: str, batch_size: int,
              changes: Mapping[str, Any] | None = None) -> str:
    """The id of a probe of the memory search: ``ladder:cw=none,...,bs=728``, or
    ``accumulate:cw=none,...,bs=862,accumulation_steps=4`` with its changed settings."""
    if tag != REQUESTED_TAG and tag not in MEMORY_SEARCH_TAGS:
        raise ValueError(f"unknown memory-search tag {tag!r}")
    suffix = "".join(f",{k}={v}" for k, v in sorted((changes or {}).items()))
    return f"{tag}:{grid_id(class_weight, lr, clip, batch_size)}{suffix}"


def tag_of(probe_id: str) -> str | None:
    """The memory-search tag of an id (``ladder``, ``memory``, ...), None for a grid probe."""
    tag, colon, _ = probe_id.partition(":")
    return tag if colon and "=" not in tag else None


def is_memory_search(probe_id: str) -> bool:
    """A probe stabcheck added to find the memory limit, not one the user asked for."""
    return tag_of(probe_id) in MEMORY_SEARCH_TAGS
