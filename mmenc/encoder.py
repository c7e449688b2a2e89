"""The Encoder contract every family implements. Importing it does not import torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class Encoder(Protocol):
    """What a consumer of mmenc can rely on, whatever the family.

    ``encode_*`` return float32 CPU tensors of shape (n, embed_dim), rows in input order.
    """

    name: str
    family: str
    modalities: frozenset[str]
    embed_dim: int
    device: torch.device
    dtype: torch.dtype

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        progress: bool = False,
    ) -> torch.Tensor: ...

    def encode_image(
        self,
        images: Sequence[Any],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        progress: bool = False,
    ) -> torch.Tensor: ...

    def similarity(self, a: Sequence[Any], b: Sequence[Any]) -> torch.Tensor: ...
