"""Image rows from JPEG paths, seeded random weights in the real architectures: CLIP ViT-B/32
against open_clip's documented loop (``preprocess`` per image, ``encode_image`` per batch), and
timm's ViT-B/16 against timm's own data config and transform per image, forward per batch."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import Row, alternate
from benchmarks.peak import efficiency, flop_counter


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


def run(
    n: int = 64,
    repeats: int = 3,
    dtypes: tuple[str, ...] = ("float32", "bfloat16"),
    batch_size: int = 32,
) -> list[Row]:
    """CLIP ViT-B/32 (random weights, written as an open_clip folder): mmenc from the file
    paths in each of ``dtypes``, against open_clip float32 as its README shows it (``preprocess``
    per image, ``encode_image`` per batch)."""
    import open_clip

    import mmenc

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = jpegs(Path(tmp), n)
        torch.manual_seed(0)
        peer, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
        peer.eval()
        folder = open_clip_folder(Path(tmp), peer)

        def peer_encode() -> torch.Tensor:
            out = []
            for start in range(0, n, batch_size):
                chunk = paths[start : start + batch_size]
                pixels = torch.stack([preprocess(Image.open(p)) for p in chunk])
                out.append(peer.encode_image(pixels))
            return torch.nn.functional.normalize(torch.cat(out), dim=-1)

        for dtype in dtypes:
            encode = partial(
                mmenc.load(str(folder), device="cpu", dtype=dtype).encode_image,
                paths,
                batch_size=batch_size,
            )
            mine, theirs, t_ours, t_peer, flops = _timed(encode, peer_encode, repeats)
            cosine = float((mine * theirs).sum(1).min())
            note = efficiency(flops / n, n / t_ours, dtype)
            rows.append(
                Row(f"CLIP ViT-B/32 images, {n} JPEG files, mmenc {dtype}", n / t_ours,
                    n / t_peer, "images/s", "open_clip float32", IMAGE_TARGETS[dtype],
                    f"min cosine to peer {cosine:.5f}; mmenc {note}")
            )  # fmt: skip
    return rows


IMAGE_TARGETS = {"float32": 1.0, "bfloat16": 1.8}


def run_timm(n: int = 32, repeats: int = 3, batch_size: int = 32) -> list[Row]:
    """timm's vit_base_patch16_224 (random weights, written in timm's folder format): mmenc
    loads the folder with ``timm:``; the peer loads it as timm documents (``local-dir:``,
    ``num_classes=0`` for the pooled features) and preprocesses with ``resolve_data_config``
    + ``create_transform``, one image at a time, the forward pass per batch."""
    import timm
    from timm.data import create_transform, resolve_data_config
    from timm.models import save_for_hf

    import mmenc

    with tempfile.TemporaryDirectory() as tmp:
        paths = jpegs(Path(tmp), n)
        folder = Path(tmp) / "vit_base_patch16_224"
        torch.manual_seed(0)
        model = timm.create_model("vit_base_patch16_224", pretrained=False)
        save_for_hf(model, str(folder), safe_serialization=True)
        peer = timm.create_model(f"local-dir:{folder}", pretrained=True, num_classes=0).eval()
        transform = create_transform(**resolve_data_config({}, model=peer))
        ours = mmenc.load(f"timm:{folder}", device="cpu")

        def peer_encode() -> torch.Tensor:
            out = []
            for start in range(0, n, batch_size):
                chunk = paths[start : start + batch_size]
                out.append(
                    peer(torch.stack([transform(Image.open(p).convert("RGB")) for p in chunk]))
                )
            return torch.nn.functional.normalize(torch.cat(out), dim=-1)

        mine, theirs, t_ours, t_peer, flops = _timed(
            lambda: ours.encode_image(paths, batch_size=batch_size), peer_encode, repeats
        )
        diff = float((mine - theirs).abs().max())
    note = efficiency(flops / n, n / t_ours, "float32")
    return [
        Row(f"timm ViT-B/16 images, {n} JPEG files, float32", n / t_ours, n / t_peer,
            "images/s", "timm float32", 1.0,
            f"max abs difference of normalised embeddings {diff:.1e}; mmenc {note}")
    ]  # fmt: skip


def _timed(
    ours: Callable[[], torch.Tensor], peer: Callable[[], torch.Tensor], repeats: int
) -> tuple[torch.Tensor, torch.Tensor, float, float, float]:
    """Both outputs of a first, counted pass (mmenc's FLOPs; it warms both up), then the median
    seconds of each over ``repeats`` alternating runs."""
    with torch.inference_mode():
        with flop_counter() as counter:
            mine = ours()
        theirs = peer()
        t_ours, t_peer = alternate(ours, peer, repeats, warm_up=False)
    return mine, theirs, t_ours, t_peer, counter.get_total_flops()
