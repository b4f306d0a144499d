"""Tests of ``stabcheck.system.oom``: out-of-memory recognition by type and message, and its
near-misses. No GPU and no framework: the exceptions are planted.
"""

from __future__ import annotations

import pytest

from stabcheck.system.oom import is_oom_error, is_oom_exception, is_oom_message

TF_OOM = (
    "OOM when allocating tensor with shape[8192,64,8,8] and type float on "
    "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc"
)
XLA_OOM = "Out of memory while trying to allocate 123456 bytes."
CUDA_OOM = "CUDA_ERROR_OUT_OF_MEMORY: out of memory"


class ResourceExhaustedError(Exception):
    """Stands in for ``tf.errors.ResourceExhaustedError`` (matched by class name)."""


class InvalidArgumentError(Exception):
    """Stands in for ``tf.errors.InvalidArgumentError``."""


class XlaRuntimeError(RuntimeError):
    """Stands in for JAX/XLA's generic runtime error."""


@pytest.mark.parametrize(
    ("etype", "message"),
    [
        ("ResourceExhaustedError", TF_OOM),
        ("ResourceExhaustedError", "failed to allocate memory"),
        ("ResourceExhaustedError", "OOM"),
        ("InternalError", XLA_OOM),
        ("XlaRuntimeError", f"RESOURCE_EXHAUSTED: {XLA_OOM}"),
        ("XlaRuntimeError", "RESOURCE_EXHAUSTED: Failed to allocate request for 2.0GiB memory"),
        ("InternalError", CUDA_OOM),
        ("RuntimeError", "CUDA out of memory. Tried to allocate 20.00 MiB"),
        ("MemoryError", ""),
        ("MemoryError", "Unable to allocate 8.00 GiB for an array"),
        ("OutOfMemoryError", ""),
        ("RuntimeError", "std::bad_alloc"),
        ("InternalError", "failed to allocate 4294967296 bytes on device"),
    ],
)
def test_is_oom_error_recognises(etype: str, message: str) -> None:
    assert is_oom_error(etype, message)


@pytest.mark.parametrize(
    ("etype", "message"),
    [
        ("InvalidArgumentError", "Incompatible shapes: [32,10] vs. [32,1]"),
        ("InvalidArgumentError", "Tensor had NaN values"),
        ("InvalidArgumentError", "Tensor had Inf values"),
        ("ValueError", "memory_limit must be positive"),
        ("ResourceExhaustedError", "quota exceeded for requests"),
        ("ResourceExhaustedError", ""),
        ("RuntimeError", "out of range"),
        ("ValueError", "Input 0 of layer dense is incompatible with the layer"),
        ("KeyError", "'memory'"),
        ("RuntimeError", ""),
    ],
)
def test_is_oom_error_rejects_near_misses(etype: str, message: str) -> None:
    assert not is_oom_error(etype, message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TF_OOM, True),
        (XLA_OOM, True),
        (CUDA_OOM, True),
        ("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  "
         "std::bad_alloc", True),
        ("2024-01-01 12:00:00 W tensorflow/core/common_runtime/bfc_allocator.cc] "
         + TF_OOM + "\nAborted (core dumped)", True),
        ("E external/xla: cuMemAlloc failed: out of memory", True),
        ("", False),
        ("Incompatible shapes: [32,10] vs. [32,1]", False),
        ("Tensor had NaN values", False),
        ("memory_limit must be positive", False),
        ("Segmentation fault (core dumped)", False),
        ("quota exceeded for requests", False),
    ],
)
def test_is_oom_message(text: str, expected: bool) -> None:
    assert is_oom_message(text) is expected


def _chain(*excs: BaseException, implicit: bool = False) -> BaseException:
    """``excs[0]`` raised while handling ``excs[1]``, itself raised from ``excs[2]``, ..."""
    for outer, inner in zip(excs, excs[1:], strict=False):
        if implicit:
            outer.__context__ = inner
        else:
            outer.__cause__ = inner
    return excs[0]


def _raised_from(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("training failed") from exc
    except RuntimeError as outer:
        return outer


def _raised_during(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise ValueError("while handling another error")  # noqa: B904 (implicit context)
    except ValueError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ResourceExhaustedError(TF_OOM), True),
        (MemoryError(), True),
        (RuntimeError(XLA_OOM), True),
        (XlaRuntimeError(CUDA_OOM), True),
        (ValueError("bad input"), False),
        (ResourceExhaustedError("quota exceeded for requests"), False),
        (InvalidArgumentError("Incompatible shapes: [32,10] vs. [32,1]"), False),
        # explicit __cause__ chains, one and two levels deep
        (_raised_from(ResourceExhaustedError(TF_OOM)), True),
        (_raised_from(MemoryError()), True),
        (_chain(RuntimeError("fit failed"), ValueError("step failed"), MemoryError()), True),
        (_chain(RuntimeError("fit failed"), ValueError("step failed"),
                InvalidArgumentError("Tensor had NaN values")), False),
        # implicit __context__ chains
        (_raised_during(ResourceExhaustedError(TF_OOM)), True),
        (_chain(RuntimeError("cleanup failed"), MemoryError(), implicit=True), True),
        (_chain(RuntimeError("cleanup failed"), KeyError("x"), implicit=True), False),
    ],
)
def test_is_oom_exception(exc: BaseException, expected: bool) -> None:
    assert is_oom_exception(exc) is expected


def test_is_oom_exception_survives_a_cycle() -> None:
    a, b = RuntimeError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert is_oom_exception(a) is False
    c = RuntimeError("c")
    c.__cause__ = c
    assert is_oom_exception(c) is False
