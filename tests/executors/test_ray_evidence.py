"""Ray's evidence, read without a cluster: the node's memory in Ray's message at a
memory-monitor kill (its wording in Ray 2.5x and before)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from stabcheck.executors.ray.runner import _node_memory  # noqa: E402


@pytest.mark.parametrize(("message", "expected"), [
    ("1 worker(s) were killed due to the node running low on memory. Memory on the node "
     "(IP: 192.0.2.2, ID: 5480f5) was 2.57GB used / 23.54GB limit (0.109123)\nOOM kill "
     "reason: Memory usage 2749607936B exceeded threshold of 2669400064B (10.6% of "
     "25276071936B limit)",
     {"node_memory_used_bytes": 2749607936, "node_memory_threshold_bytes": 2669400064,
      "node_memory_total_bytes": 25276071936}),
    ("Task was killed due to the node running low on memory. Memory on the node (IP: "
     "10.0.0.7, ID: 5f2c) where the task (task ID: ab, name=f) was running was 30.52GB / "
     "31.90GB (0.956745), which exceeds the memory usage threshold of 0.95.",
     {"node_memory_used_bytes": 30_520_000_000, "node_memory_total_bytes": 31_900_000_000}),
    ("The actor died unexpectedly before finishing this task.", {}),
])
def test_the_nodes_memory_at_a_ray_memory_monitor_kill(message: str, expected: dict) -> None:
    assert _node_memory(message) == expected
