"""OOM recognition of the exceptions JAX and PyTorch really raise: the real classes,
constructed here (no GPU needed), checked by ``is_oom_exception`` as the worker checks
what its training step raised. Imports the frameworks: not in the fast loop."""

from __future__ import annotations

import pytest

from stabcheck.system.oom import is_oom_exception

pytestmark = pytest.mark.e2e  # imports JAX and PyTorch

XLA_OOM = ("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes. "
           "BufferAssignment OOM Debugging.")


def _jax_runtime_error() -> type[BaseException]:
    """The class JAX raises for a failed XLA status: ``jax.errors.JaxRuntimeError``
    (``jaxlib.xla_extension.XlaRuntimeError`` before JAX 0.4.36)."""
    jax_errors = pytest.importorskip("jax.errors")
    cls = getattr(jax_errors, "JaxRuntimeError", None)
    if cls is None:
        from jaxlib.xla_extension import XlaRuntimeError as cls  # older JAX
    return cls


def test_a_jax_resource_exhausted_status_is_oom() -> None:
    error = _jax_runtime_error()
    assert is_oom_exception(error(XLA_OOM))
    # the type with the allocator's status is enough, whatever XLA's wording
    assert is_oom_exception(error("RESOURCE_EXHAUSTED: Failed to allocate request"))


@pytest.mark.parametrize("message", [
    "INTERNAL: Generated function failed: CpuCallback error",
    "INVALID_ARGUMENT: Incompatible shapes for broadcasting",
    "FAILED_PRECONDITION: Buffer has been deleted or donated.",
])
def test_other_jax_statuses_are_not_oom(message: str) -> None:
    assert not is_oom_exception(_jax_runtime_error()(message))


def test_a_jax_oom_raised_from_inside_keras_is_found_through_the_chain() -> None:
    error = _jax_runtime_error()
    try:
        try:
            raise error(XLA_OOM)
        except error as exc:
            raise ValueError("Exception encountered when calling Dense.call()") from exc
    except ValueError as outer:
        assert is_oom_exception(outer)


def test_torch_cuda_out_of_memory_is_oom_by_its_type() -> None:
    torch = pytest.importorskip("torch")
    # raised by the CUDA caching allocator; an empty message still names the type
    assert is_oom_exception(torch.cuda.OutOfMemoryError(""))
    assert is_oom_exception(torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "139.81 GiB of which 1.2 GiB is free."))
    assert torch.OutOfMemoryError is torch.cuda.OutOfMemoryError


def test_torch_errors_that_are_not_memory() -> None:
    torch = pytest.importorskip("torch")
    x = torch.ones(32, 10)
    with pytest.raises(RuntimeError) as shapes:
        x @ torch.ones(4, 1)  # a real shape error from torch
    assert not is_oom_exception(shapes.value)
    # what check-numerics (anomaly mode) raises for a NaN in the backward pass
    assert not is_oom_exception(RuntimeError(
        "Function 'MulBackward0' returned nan values in its 0th output."))
