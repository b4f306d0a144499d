"""Recognising memory exhaustion: small pure checks, testable without a GPU.

Like Lightning's ``is_oom_error``: an exception is an out-of-memory error by its *type*
first (TensorFlow's ``ResourceExhaustedError``, PyTorch's ``torch.OutOfMemoryError``
alias ``torch.cuda.OutOfMemoryError``, Python's ``MemoryError``; JAX's
``JaxRuntimeError``, formerly ``jaxlib.xla_extension.XlaRuntimeError``, carries XLA's
status code at the start of its message, and ``RESOURCE_EXHAUSTED`` is the allocator's)
and by its message second, for the frameworks that raise generic types (XLA and CUDA
report through ``InternalError``/``RuntimeError`` with a recognisable text). The same
texts identify an allocator abort in the stderr of a worker that died without raising.
"""

from __future__ import annotations

import re

# Exception class names that always mean memory exhaustion.
_OOM_TYPES = frozenset({"ResourceExhaustedError", "MemoryError", "OutOfMemoryError"})
# XLA's status errors as JAX raises them: the status code leads the message.
_XLA_STATUS_TYPES = frozenset({"JaxRuntimeError", "XlaRuntimeError"})

# Messages of allocator failures, as TensorFlow, XLA and CUDA print them.
_OOM_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bOOM when allocating tensor\b",  # TensorFlow BFC allocator
        r"\bOut of memory while trying to allocate\b",  # XLA
        r"\bCUDA_ERROR_OUT_OF_MEMORY\b",  # CUDA driver API
        r"\bCUDA out of memory\b",  # PyTorch / JAX CUDA allocators
        r"\bRESOURCE_EXHAUSTED\b.*\b(memory|allocat)",  # XLA/JAX status codes
        r"\bfailed to allocate\b.*\bbytes\b",  # TensorFlow GPU allocator log line
        r"\bcuMemAlloc\b.*\bout of memory\b",
        r"\bstd::bad_alloc\b",  # a C++ allocation failure that aborted the process
    )
)

# Texts that mention memory but are not exhaustion: never treat them as OOM.
_NEAR_MISSES = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bIncompatible shapes\b",
        r"\bNaN\b|\bInf\b",
    )
)


def is_oom_message(text: str) -> bool:
    """True when ``text`` contains an allocator's out-of-memory report."""
    return any(p.search(text) for p in _OOM_PATTERNS)


def is_oom_error(exc_type_name: str, message: str) -> bool:
    """True when an exception (by class name and message) is memory exhaustion.

    Args:
        exc_type_name: the exception's class name, e.g. ``"ResourceExhaustedError"``.
        message: ``str(exc)``.
    """
    if exc_type_name in _OOM_TYPES:
        # ResourceExhaustedError also covers exhausted quotas that are not memory;
        # TensorFlow's memory ones say "OOM" or "allocat" in their message.
        if exc_type_name == "ResourceExhaustedError":
            return is_oom_message(message) or bool(re.search(r"\bOOM\b|alloc", message))
        return True
    if exc_type_name in _XLA_STATUS_TYPES and message.lstrip().startswith("RESOURCE_EXHAUSTED"):
        # the status of an allocation that failed ("Out of memory while trying to
        # allocate ..."); other statuses (INTERNAL, ...) are judged by their text below
        return True
    if any(p.search(message) for p in _NEAR_MISSES) and not is_oom_message(message):
        return False
    return is_oom_message(message)


def is_oom_exception(exc: BaseException) -> bool:
    """``is_oom_error`` for a live exception, checking its causes too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_oom_error(type(current).__name__, str(current)):
            return True
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False
