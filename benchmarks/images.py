"""CLIP ViT-B/32 architecture (seeded random weights): mmenc.encode_image from JPEG paths
against open_clip's documented loop (``preprocess`` per image, ``encode_image`` per batch)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import Row, alternate


def jpegs(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n JPEG files of 300-640 px per side: smooth colour fields with noise, fixed seed."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = rng.integers(300, 641, size=2)
        ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(60, 200, 3)
        pixels = np.clip(ramp + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:04d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def open_clip_folder(folder: Path, model: torch.nn.Module) -> Path:
    """Write ``model`` in open_clip's local folder layout, so mmenc loads the same weights."""
    import open_clip
    from safetensors.torch import save_file

    config = {
        "model_cfg": open_clip.get_model_config("ViT-B-32"),
        "preprocess_cfg": open_clip.get_model_preprocess_cfg(model),
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


def run(n: int = 64, repeats: int = 3, batch_size: int = 32) -> list[Row]:
    import open_clip

    import mmenc

    with tempfile.TemporaryDirectory() as tmp:
        paths = jpegs(Path(tmp), n)
        torch.manual_seed(0)
        peer, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
        peer.eval()
        ours = mmenc.load(str(open_clip_folder(Path(tmp), peer)), device="cpu")

        def peer_encode() -> torch.Tensor:
            out = []
            for start in range(0, n, batch_size):
                chunk = paths[start : start + batch_size]
                pixels = torch.stack([preprocess(Image.open(p)) for p in chunk])
                out.append(peer.encode_image(pixels))
            return torch.nn.functional.normalize(torch.cat(out), dim=-1)

        with torch.inference_mode():
            cosine = float((ours.encode_image(paths) * peer_encode()).sum(1).min())
            t_ours, t_peer = alternate(
                lambda: ours.encode_image(paths, batch_size=batch_size), peer_encode, repeats
            )
    return [
        Row(f"CLIP ViT-B/32 images, {n} JPEG files, float32", n / t_ours, n / t_peer,
            "images/s", "open_clip float32", 1.0, f"min cosine to peer {cosine:.5f}")
    ]  # fmt: skip
