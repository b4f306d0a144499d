"""Plain formatting shared by the report views."""

from __future__ import annotations

import pytest

from stabcheck.text import executor_text


@pytest.mark.parametrize(("environment", "expected"), [
    ({"executor": "ray", "ray": {"address": "local", "nodes": 3, "cpus": 2.0, "gpus": 0}},
     "on a Ray cluster (local; 3 nodes, 2 CPUs)"),
    ({"executor": "ray", "ray": {"address": "ray://head:10001", "nodes": 1, "cpus": 16.0,
                                 "gpus": 8.0}},
     "on a Ray cluster (ray://head:10001; 1 node, 16 CPUs, 8 GPUs)"),
    ({"executor": "local"}, None),
    ({}, None),  # a result from before executors
])
def test_where_the_probes_ran(environment: dict, expected: str | None) -> None:
    assert executor_text(environment) == expected
