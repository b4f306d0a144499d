"""The Keras backends a worker can train with: one module per backend, one interface.

A backend module (``tensorflow``, ``jax``, ``torch``) holds everything that differs
between the frameworks, and nothing else:

- ``Trainer``: the probe's training step (``base`` says what it offers): the
  backend's own Keras ``train_step``, the gradients' global norm and finiteness measured
  where the optimizer receives them, and the probe's clipping;
- ``check_model(model)``: refuses, as a usage error, a model the backend cannot probe
  as its ``fit`` trains it (JAX: a model's own ``train_step``);
- ``configure(threads, gpu_memory_budget)``: threads and the GPU memory cap, after the
  import; the devices it sees;
- ``oom_device(exc)``: "GPU" when an OOM exception's type says the GPU ran out;
- ``enable_check_numerics()`` (TensorFlow only: ``--check-numerics`` is refused under the
  others): the first operation to produce an Inf/NaN raises, named;
- ``reset_peak_gpu()`` / ``peak_gpu_bytes()``: the allocator's peak on the first GPU;
- ``framework_version()``.

The rest of the worker (``model_setup``, ``training``, ``evaluation``, ``main``) is
backend-neutral. The backend is the one Keras was imported with: the parent sets
``KERAS_BACKEND`` in the worker's environment, and ``prepare_environment`` sets what a
framework reads only at its import (JAX's GPU memory fraction) before Keras is imported.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from stabcheck.protocol.vocabulary import BACKENDS


def prepare_environment(backend: str, gpu_memory_budget: int | None) -> None:
    """Set the environment variables ``backend`` reads at its import (before Keras's).

    JAX: no preallocation of 75% of the card (workers share it, and the peak must be
    the probe's); under ``--gpu-memory-budget``, XLA's allocator is capped to that share
    of the first visible GPU (``XLA_PYTHON_CLIENT_MEM_FRACTION``), so a probe that
    needs more fails in the allocator, as on a smaller card.
    """
    if backend != "jax":
        return
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if gpu_memory_budget:
        total = _first_gpu_bytes()
        if total:
            fraction = min(1.0, gpu_memory_budget / total)
            os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:.6f}"


def _first_gpu_bytes() -> int | None:
    """Total memory of the first GPU this process may use (``CUDA_VISIBLE_DEVICES``)."""
    from stabcheck.system import nvml

    devices = nvml.devices()
    if not devices:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    by_index = {str(d["index"]): d for d in devices}
    return int(by_index.get(visible, devices[0])["memory_bytes"])


def load(name: str) -> ModuleType:
    """The backend module ``name`` (one of ``BACKENDS``); imports its framework."""
    if name not in BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}: expected one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{name}")


def current() -> ModuleType:
    """The backend module of the backend Keras was imported with."""
    import keras

    return load(keras.backend.backend())
