"""The encoder: subclass ``mmenc.BaseEncoder`` and implement one batch's forward."""

from __future__ import annotations

import re
import zlib

import torch

from mmenc.base import BaseEncoder

_WORD = re.compile(r"\w+")


class HashTextEncoder(BaseEncoder):
    """Counts of lower-cased words hashed into ``dim`` buckets (signed, to cancel collisions).

    BaseEncoder brings batching, input checks, ordering, normalisation and progress bars.
    """

    family = "hashtext"
    modalities = frozenset({"text"})

    def __init__(self, *, dim: int, name: str, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(name=name, embed_dim=dim, device=device, dtype=dtype)

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.embed_dim)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                code = zlib.crc32(word.encode("utf-8"))
                out[row, code % self.embed_dim] += 1.0 if code & 1 << 31 else -1.0
        return out
