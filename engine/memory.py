"""Recognising an allocation failure, on the GPU or the CPU, so it reaches the user as "out of memory" with advice
instead of an internal error."""
from __future__ import annotations

from typing import Callable, TypeVar

import torch

from .types import EngineError

T = TypeVar("T")

# What torch's CPU allocator says when malloc fails (a RuntimeError, not MemoryError).
CPU_ALLOCATOR_FAILURE = "DefaultCPUAllocator: can't allocate memory"
# GPU allocations outside torch's caching allocator (cuBLAS, cuDNN workspaces) fail as plain RuntimeErrors, and a
# wrapper (a compiler's, autotuning's) may carry the caching allocator's message in its own RuntimeError.
GPU_ALLOCATION_FAILURES = ("CUDA error: out of memory", "CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED",
                           "CUDNN_STATUS_ALLOC_FAILED")


def out_of_memory(exc: BaseException) -> str | None:
    """"GPU" or "CPU" when `exc` is an allocation failure there, else None."""
    if isinstance(exc, torch.OutOfMemoryError):   # torch.cuda.OutOfMemoryError is this class
        return "GPU"
    if isinstance(exc, RuntimeError) and any(failure in str(exc) for failure in GPU_ALLOCATION_FAILURES):
        return "GPU"
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and CPU_ALLOCATOR_FAILURE in str(exc)):
        return "CPU"
    return None


def release_cached_gpu_memory() -> None:
    """After a GPU allocation failure the caching allocator still holds the blocks of the failed run."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reporting_out_of_memory(run: Callable[[], T], error: type[EngineError], doing: str, advice: str) -> T:
    """run(), with an allocation failure re-raised as `error` ("out of GPU memory while ...; advice"); any other
    failure passes through unchanged.

    The caching allocator's blocks are handed back only after the handler is left: until then the exception's
    traceback keeps the failed run's frames, and with them its tensors, alive. For the same reason the new error is
    not chained to the old one."""
    try:
        return run()
    except (RuntimeError, MemoryError) as exc:
        where = out_of_memory(exc)
        if where is None:
            raise
    release_cached_gpu_memory()
    raise error(f"out of {where} memory {doing}; {advice}")


def available_cpu_memory() -> int | None:
    """Bytes the kernel can hand out without swapping (Linux MemAvailable, page cache included); None where
    unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
