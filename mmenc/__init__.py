"""mmenc: one Encoder contract for text and image models, with plugins per model family.

    >>> import mmenc
    >>> enc = mmenc.load("minilm-l6")
    >>> enc.similarity(["a cat"], ["a kitten", "a car"])
    >>> mmenc.pipeline("sentiment-analysis")("I love it")

Importing mmenc does not import torch: the registry is built from plugin records, and torch is
imported when an encoder is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmenc import errors
from mmenc.encoder import Encoder
from mmenc.errors import (
    IncompatibleModelError,
    InvalidInputError,
    MmencError,
    PluginConflictError,
    PluginLoadError,
    PluginWarning,
    SettingError,
    UnknownEncoderError,
    UnknownTaskError,
    UnsafeCheckpointError,
    UnsupportedModalityError,
    WeightsUnavailableError,
)
from mmenc.hookspecs import hookimpl
from mmenc.plugins import PluginInfo, list_plugins, register_plugin
from mmenc.registry import get_spec, list_encoders, load
from mmenc.specs import EncoderSpec, TaskSpec
from mmenc.tasks import get_task, list_tasks, pipeline

if TYPE_CHECKING:
    from mmenc.base import BaseEncoder

__version__ = "0.1.0"

__all__ = [
    "BaseEncoder",
    "ComparisonReport",
    "Encoder",
    "EncoderSpec",
    "IncompatibleModelError",
    "InvalidInputError",
    "MmencError",
    "PluginConflictError",
    "PluginInfo",
    "PluginLoadError",
    "PluginWarning",
    "SettingError",
    "TaskSpec",
    "UnknownEncoderError",
    "UnknownTaskError",
    "UnsafeCheckpointError",
    "UnsupportedModalityError",
    "WeightsUnavailableError",
    "ZeroShotClassifier",
    "compare",
    "errors",
    "get_spec",
    "get_task",
    "hookimpl",
    "list_encoders",
    "list_plugins",
    "list_tasks",
    "load",
    "pipeline",
    "register_plugin",
]


def __getattr__(name: str) -> Any:
    if name == "BaseEncoder":  # imports torch, so only on demand
        from mmenc.base import BaseEncoder

        return BaseEncoder
    if name == "compare":
        from mmenc.comparison.harness import compare

        return compare
    if name == "ComparisonReport":
        from mmenc.comparison.report import ComparisonReport

        return ComparisonReport
    if name == "train":  # imports torch, so only on demand
        import mmenc.train

        return mmenc.train
    if name == "ZeroShotClassifier":  # imports torch, so only on demand
        from mmenc.zeroshot import ZeroShotClassifier

        return ZeroShotClassifier
    raise AttributeError(f"module 'mmenc' has no attribute {name!r}")
