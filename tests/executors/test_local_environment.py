"""What a worker process is started with: its Keras backend and its GPU
(``runner.worker_environment``). Pure: no process starts."""

from __future__ import annotations

import pytest

from stabcheck.executors.process import worker_environment
from stabcheck.protocol.messages import WorkerInit


def _init(backend: str = "tensorflow") -> WorkerInit:
    return WorkerInit("data.npz", {"kind": "builtin", "text": "builtin:mlp"}, None, None, 0,
                      backend=backend)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_worker_gets_its_backend_whatever_the_parent_has(
        monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "something-else")
    env = worker_environment(_init(backend))
    assert env["KERAS_BACKEND"] == backend
    assert _init(backend).message()["backend"] == backend


def test_without_a_gpu_of_its_own_the_worker_sees_what_stabcheck_sees(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    env = worker_environment(_init())
    assert env["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert "CUDA_DEVICE_ORDER" not in env


def test_a_worker_given_a_gpu_sees_only_it_numbered_as_nvml_numbers_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    env = worker_environment(_init("jax"), gpu="2")
    assert env["CUDA_VISIBLE_DEVICES"] == "2"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # the user's order stands
    assert worker_environment(_init(), gpu="0")["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
