"""Training image-text models for zero-shot classification.

``mmenc.train.lit``: locked-image text tuning (LiT) of any timm backbone against any frozen
mmenc text encoder; the result opens with ``mmenc.load(folder)``.
"""

from __future__ import annotations

from mmenc.train.lit_trainer import DEFAULT_CAPTIONS, LitResult, lit

__all__ = ["DEFAULT_CAPTIONS", "LitResult", "lit"]
