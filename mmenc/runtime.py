"""Device and dtype choices, shared by every family."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

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


def release_freed_memory() -> None:
    """Give memory that torch has freed back to the operating system (glibc's ``malloc_trim``;
    a no-op elsewhere). Batches of different lengths leave freed activation buffers of many
    sizes in glibc's heaps, which it keeps: a long streaming run calls this between chunks so
    that its resident memory stays flat (see docs/benchmarks.md, memory)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)
