"""mmenc plugin: LiT models (a trained image tower aligned to a frozen mmenc text encoder).

Registers ``lit-demo``, the model that ships inside this package (trained by
``examples/train_lit_demo.py``), and resolves any folder written by ``mmenc.train.lit`` (one
with ``lit_config.json``). Imports no torch: the encoder lives in ``_encoder``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from mmenc import EncoderSpec, hookimpl

FAMILY = "lit"
CONFIG_FILE = "lit_config.json"  # mmenc.train.lit_model.CONFIG_FILE, without importing torch
DEMO = Path(__file__).parent / "lit-demo"


def _load(folder: Path, **kwargs: Any) -> Any:
    from mmenc_lit._encoder import LitEncoder

    return LitEncoder.from_folder(folder, **kwargs)


def _spec(name: str, folder: Path, **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities={"text", "image"},
        factory=partial(_load, folder),
        **fields,
    )


@hookimpl
def mmenc_encoders() -> list[EncoderSpec]:
    return [
        _spec(
            "lit-demo",
            DEMO,
            description=(
                "LiT: a MobileNetV3 image tower trained on digits and shapes against the frozen "
                "all-MiniLM-L6-v2 (384-d); ships with mmenc"
            ),
            source="trained by examples/train_lit_demo.py",
        )
    ]


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    folder = Path(name).expanduser()
    if (folder / CONFIG_FILE).is_file():
        return _spec(name, folder, source=str(folder), description="LiT model folder")
    return None
