"""Which GPUs the workers are given: ``nvml.visible_gpus`` and the worker count it sets
(one worker per GPU). Pure: NVML's device list is planted."""

from __future__ import annotations

import pytest

from stabcheck.executors.local import LocalExecutor
from stabcheck.system import nvml


def _gpus(n: int) -> list[dict]:
    return [{"index": i, "name": "H200", "memory_bytes": 141 << 30, "driver": "580"}
            for i in range(n)]


@pytest.mark.parametrize(("found", "visible", "expected"), [
    (0, None, []),
    (0, "0,1", []),  # no driver: no GPU, whatever the variable says
    (1, None, ["0"]),
    (4, None, ["0", "1", "2", "3"]),
    (4, "2,3", ["2", "3"]),  # the user's choice stands
    (4, "GPU-1234abcd", ["GPU-1234abcd"]),
    (4, "", []),  # an empty CUDA_VISIBLE_DEVICES hides every GPU
    (4, "-1", []),
])
def test_visible_gpus(monkeypatch: pytest.MonkeyPatch, found: int, visible: str | None,
                      expected: list[str]) -> None:
    monkeypatch.setattr(nvml, "devices", lambda: _gpus(found))
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert nvml.visible_gpus() == expected


def test_one_worker_per_gpu_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(nvml, "devices", lambda: _gpus(3))
    assert LocalExecutor().workers(None) == 3
    monkeypatch.setattr(nvml, "devices", lambda: _gpus(1))
    assert LocalExecutor().workers(None) == 1
    assert LocalExecutor().workers(2) == 2
