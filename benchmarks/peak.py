"""Compute efficiency: the matrix-product peak of this machine, measured in the same run, and
the FLOPs a model spends, counted with ``torch.utils.flop_counter``, so that a row can say how
close its throughput comes to what the matrix units can do."""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


@functools.cache
def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the fastest of ``repeats`` size x size products (after one warm-up): the
    best this machine's matrix units reach in ``dtype``."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _cpu_attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
    return int(sdpa_flop_count(query, key, value))


def _native_mha(query: Any, key: Any, value: Any, embed_dim: int, *args: Any, **kwargs: Any) -> int:
    """nn.MultiheadAttention's inference fast path (batch first, as it requires): the q, k, v
    projections, the two attention products and the output projection in one op."""
    batch, q_len, _ = query
    k_len = key[1]
    projections = 2 * batch * embed_dim * embed_dim * (2 * q_len + 2 * k_len)
    return projections + 4 * batch * q_len * k_len * embed_dim


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that also counts the fused attention ops torch's table leaves out (CPU
    SDPA, nn.MultiheadAttention's fast path), whose products would otherwise count as zero."""
    aten = torch.ops.aten
    extra = {
        aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
        aten._native_multi_head_attention: _native_mha,
    }
    return FlopCounterMode(display=False, custom_mapping=extra)


def efficiency(flops_per_input: float, inputs_per_s: float, dtype: str) -> str:
    """Achieved GFLOP/s and its fraction of the ``dtype`` matrix-product peak, for a row note."""
    achieved = flops_per_input * inputs_per_s / 1e9
    peak = matmul_peak(getattr(torch, dtype))
    return (
        f"{flops_per_input / 1e9:.2f} GFLOP per input: {achieved:.0f} GFLOP/s, "
        f"{achieved / peak:.2f} of the {dtype} matmul peak ({peak:.0f} GFLOP/s)"
    )
