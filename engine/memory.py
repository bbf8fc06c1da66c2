"""Recognising an allocation failure, on the GPU or the CPU, so it reaches the user as "out of memory" with advice
instead of an internal error."""
from __future__ import annotations

import torch

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
