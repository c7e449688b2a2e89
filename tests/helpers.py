"""Helpers shared by tests: fake installed distributions with real entry-point metadata."""

from __future__ import annotations

import textwrap
from pathlib import Path


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
