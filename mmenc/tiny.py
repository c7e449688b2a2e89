"""Tiny seeded models for tests and demos, written to disk and loaded like real checkpoints.

A family's builder writes a complete model folder in the real format (config, safetensors,
tokenizer files); ``materialize`` caches it under ``$MMENC_CACHE/tiny`` (default
``~/.cache/mmenc/tiny``) so it is built once, then the family loads it through its normal path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    return Path(os.environ.get("MMENC_CACHE", Path.home() / ".cache" / "mmenc")).expanduser()


def materialize(key: str, build: Callable[[Path], None]) -> Path:
    """The folder for ``key``, building it with ``build(folder)`` the first time.

    Builds into a temporary folder and renames it into place, so a crash or a concurrent build
    never leaves a half-written model under the final name. Put a version in ``key`` and bump
    it when the builder changes.
    """
    target = cache_root() / "tiny" / key
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=target.parent))
    try:
        build(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # not a lost race with another builder
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch's global RNG for a build, restoring the caller's RNG state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def save_seeded(model_class: Any, config: Any, preprocessor: Any, folder: Path) -> None:
    """Write ``model_class(config)`` with weights drawn under ``seeded(0)``, and its tokenizer or
    processor, into ``folder``: a tiny checkpoint's usual last step."""
    with seeded(0):
        model = model_class(config)
    model.save_pretrained(folder)
    preprocessor.save_pretrained(folder)
