"""mmenc: one Encoder contract for text and image models, with plugins per model family.

    >>> import mmenc
    >>> enc = mmenc.load("minilm-l6")
    >>> enc.similarity(["a cat"], ["a kitten", "a car"])

Importing mmenc does not import torch: the registry is built from plugin records, and torch is
imported when an encoder is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmenc import errors
from mmenc.encoder import Encoder
from mmenc.errors import (
    InvalidInputError,
    MmencError,
    PluginConflictError,
    PluginLoadError,
    PluginWarning,
    UnknownEncoderError,
    UnsupportedModalityError,
    WeightsUnavailableError,
)
from mmenc.hookspecs import hookimpl
from mmenc.plugins import PluginInfo, list_plugins, register_plugin
from mmenc.registry import get_spec, list_encoders, load
from mmenc.specs import EncoderSpec

if TYPE_CHECKING:
    from mmenc.base import BaseEncoder

__version__ = "0.1.0"

__all__ = [
    "BaseEncoder",
    "Encoder",
    "EncoderSpec",
    "InvalidInputError",
    "MmencError",
    "PluginConflictError",
    "PluginInfo",
    "PluginLoadError",
    "PluginWarning",
    "UnknownEncoderError",
    "UnsupportedModalityError",
    "WeightsUnavailableError",
    "errors",
    "get_spec",
    "hookimpl",
    "list_encoders",
    "list_plugins",
    "load",
    "register_plugin",
]


def __getattr__(name: str) -> Any:
    if name == "BaseEncoder":  # imports torch, so only on demand
        from mmenc.base import BaseEncoder

        return BaseEncoder
    raise AttributeError(f"module 'mmenc' has no attribute {name!r}")
