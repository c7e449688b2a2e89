"""Test set-up: offline always, tiny models built once per session in a temporary cache."""

from __future__ import annotations

import os
import tempfile

# Before anything imports huggingface_hub: it reads these once, at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MMENC_CACHE", tempfile.mkdtemp(prefix="mmenc-test-cache-"))
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="mmenc-test-hf-home-"))

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def sample_images() -> list[Image.Image]:
    """Four deterministic RGB images of different sizes and content."""
    import numpy as np

    rng = np.random.default_rng(0)
    sizes = [(64, 48), (32, 32), (80, 120), (50, 70)]
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB") for w, h in sizes
    ]


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    return [
        "a photo of a cat",
        "",
        "a much longer sentence about a dog that runs across a green field in the morning sun",
        "zebra",
        "Ünïcödé text with accents and 漢字",
    ]
