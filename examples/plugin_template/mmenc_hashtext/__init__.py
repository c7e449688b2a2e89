"""A complete third-party mmenc plugin: registers encoders, resolves a name scheme, adds a task.

This module is imported when mmenc builds its registry, so it imports only mmenc and the
standard library; the torch code lives in ``_encoder`` and ``_similarity``, imported by the
factories.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import mmenc
from mmenc.tasks import pipeline_factory


def _load(dim: int, **kwargs: Any) -> Any:
    from mmenc_hashtext._encoder import HashTextEncoder

    return HashTextEncoder(dim=dim, **kwargs)


def _spec(name: str, dim: int) -> mmenc.EncoderSpec:
    return mmenc.EncoderSpec(
        name=name,
        family="hashtext",
        modalities={"text"},
        factory=partial(_load, dim),
        description=f"feature-hashed bag of words ({dim}-d), no weights",
        source="computed",
    )


@mmenc.hookimpl
def mmenc_encoders() -> Iterator[mmenc.EncoderSpec]:
    """Names that `mmenc list` shows."""
    yield _spec("hash-text-256", 256)


@mmenc.hookimpl
def mmenc_resolve(name: str) -> mmenc.EncoderSpec | None:
    """Any ``hash:DIM`` name, e.g. ``mmenc.load("hash:1024")``."""
    if not name.startswith("hash:"):
        return None
    dim = name.removeprefix("hash:")
    if not dim.isdigit() or int(dim) < 1:
        raise mmenc.UnknownEncoderError(name, ["hash:256", "hash:1024"])
    return _spec(name, int(dim))


@mmenc.hookimpl
def mmenc_tasks() -> Iterator[mmenc.TaskSpec]:
    """Tasks that `mmenc tasks` shows and `mmenc.pipeline` builds."""
    yield mmenc.TaskSpec(
        name="sentence-similarity",
        factory=pipeline_factory("mmenc_hashtext._similarity:SentenceSimilarityPipeline"),
        default_model="hash-text-256",
        description="ranks sentences by similarity to a source sentence",
    )
