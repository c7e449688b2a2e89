"""Helpers shared by tests: fake installed distributions, a pre-filled Hugging Face cache."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

TEST_DEVICE = os.environ.get("MMENC_TEST_DEVICE", "cpu")
"""Where the reliability tests run their models: cpu here and in CI; "cuda" reruns them on a
GPU machine (see docs/reliability.md)."""


def install_fake_distribution(
    site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """Write ``dist``'s .dist-info (METADATA + entry_points.txt) and its modules under ``site``.

    importlib.metadata reads exactly these files for an installed wheel, so a plugin found
    this way goes through the same discovery as one installed by pip.
    """
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[mmenc]\n{lines}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def install_in_hf_cache(folder: Path, repo: str, revision: str = "0" * 40) -> Path:
    """Copy a model folder into this session's HF cache as ``repo`` at ``revision``, the layout
    ``from_pretrained(repo, revision=...)`` reads with HF_HUB_OFFLINE=1 (refs/main points to it).
    """
    from huggingface_hub.constants import HF_HUB_CACHE

    root = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return snapshot
