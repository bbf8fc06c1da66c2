"""Recognising an allocation failure, on the GPU or the CPU, so it reaches the user as "out of memory" with advice
instead of an internal error."""
from __future__ import annotations

from contextlib import contextmanager

import torch

from .types import EngineError

# What torch's CPU allocator says when malloc fails (a RuntimeError, not MemoryError).
CPU_ALLOCATOR_FAILURE = "DefaultCPUAllocator: can't allocate memory"


def out_of_memory(exc: BaseException) -> str | None:
    """"GPU" or "CPU" when `exc` is an allocation failure there, else None."""
    if isinstance(exc, torch.OutOfMemoryError):   # torch.cuda.OutOfMemoryError is this class
        return "GPU"
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and CPU_ALLOCATOR_FAILURE in str(exc)):
        return "CPU"
    return None


def release_cached_gpu_memory() -> None:
    """After a GPU allocation failure the caching allocator still holds the blocks of the failed run."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def out_of_memory_reported(error: type[EngineError], doing: str, advice: str):
    """Re-raise an allocation failure inside the block as `error` ("out of GPU memory while ...; advice"), after
    handing the caching allocator's blocks back; any other failure passes through unchanged."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        where = out_of_memory(exc)
        if where is None:
            raise
        release_cached_gpu_memory()
        raise error(f"out of {where} memory {doing}; {advice}") from exc
