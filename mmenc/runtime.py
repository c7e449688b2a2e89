"""Device and dtype choices, shared by every family."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None means the best available: cuda, then mps, then cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """None means float32; strings as in ``_DTYPES``."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype {dtype} is not supported; use float32, bfloat16 or float16")
        return dtype
    try:
        return _DTYPES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(
            f"unknown dtype {dtype!r}; use None, 'float32', 'bfloat16' or 'float16'"
        ) from None


def check_fast(device: torch.device, dtype: torch.dtype) -> None:
    """Warn when bfloat16 is asked for on a CPU that only emulates it (it runs slower there)."""
    if device.type == "cpu" and dtype == torch.bfloat16 and not cpu_has_native_bf16():
        warnings.warn(
            "this CPU has no native bfloat16 matrix units (no AVX-512 BF16 / AMX), so "
            "dtype='bfloat16' will run slower than float32 here; use float32 on this machine",
            RuntimeWarning,
            stacklevel=3,
        )


def cpu_has_native_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Random draws from ``seed`` inside the block (None: the global random state, as it is),
    restoring the caller's state afterwards, on the CPU and every device of ``device``'s kind."""
    if seed is None:
        yield
        return
    kind = device.type
    devices = [] if kind == "cpu" else range(torch.get_device_module(kind).device_count())
    with torch.random.fork_rng(devices=devices, device_type=None if kind == "cpu" else kind):
        torch.manual_seed(seed)
        yield


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
STREAMING_MMAP_THRESHOLD = 4 * 2**20


def stream_memory() -> None:
    """Keep the resident memory of a long streaming run flat (glibc; a no-op elsewhere).

    Batches of different lengths allocate activation buffers of many sizes; glibc serves the
    large ones from its heaps once its adaptive mmap threshold has grown, and freed heap space
    stays resident and fragments. Fixing the threshold at 4 MiB sends every large buffer to its
    own mapping, returned to the system when freed (20,000 texts through ``mmenc embed``: peak
    +304 MB -> see docs/benchmarks.md). Costs a page fault per fresh buffer, so only streaming
    commands call it."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, STREAMING_MMAP_THRESHOLD)


def release_freed_memory() -> None:
    """Give the small freed blocks in glibc's heaps back to the system (``malloc_trim``; a
    no-op elsewhere); a streaming run calls it between chunks."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _glibc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None
