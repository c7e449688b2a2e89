"""Pooling token states into one vector per text, respecting the attention mask."""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls", "max", "last")


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """(batch, tokens, dim) states and (batch, tokens) mask → (batch, dim), in float32.

    ``last`` takes the last non-padding token, for right- or left-padded batches alike.
    """
    hidden = hidden.float()
    if mode == "cls":
        return hidden[:, 0]
    if mode == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == "max":
        return hidden.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(1).values
    if mode == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = (positions * mask.long()).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {mode!r}; use one of {', '.join(POOLINGS)}")
