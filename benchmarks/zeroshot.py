"""Zero-shot image classification: ``ZeroShotClassifier`` against transformers' pipeline, and
the streaming memory check of ``mmenc.compare``
(``python -m benchmarks.zeroshot``).

Speed: both classify the same JPEG files against the same 100 labels (CIFAR-100's class names)
with the same one template, on a transformers ``CLIPModel`` of the CLIP ViT-B/32 architecture
(``CLIPConfig()``'s defaults) with seeded random weights and OpenAI's CLIP BPE vocabulary.
transformers' pipeline encodes every label again for every image, so its cost per image is
constant: it is timed on the first ``peer_images`` of the files and reported per image, while
mmenc classifies them all (and builds its label weights inside each timed run).

Memory: ``mmenc.compare`` classifies 5,000 and 100 JPEG files in fresh processes; the table
reports the difference of their peak resident memory (Linux's ``VmHWM``). The model is tiny-clip
(32 px input): the check is about streaming the files, which does not depend on the model.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks.common import Row, alternate
from benchmarks.images import jpegs

LABELS = [
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
]  # fmt: skip
TEMPLATE = "a photo of a {}."
MEMORY_LIMIT_MB = 300


def clip_folder(folder: Path) -> Path:
    """A transformers CLIP of the ViT-B/32 architecture, seeded random weights, in ``folder``."""
    from mmenc_clip._tiny import clip_tokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).save_pretrained(folder)  # the defaults are ViT-B/32's
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=clip_tokenizer()).save_pretrained(
        folder
    )
    return folder


def run(n: int = 256, peer_images: int = 16, repeats: int = 2, batch_size: int = 32) -> list[Row]:
    """The speed row: images/s of each, label weights built inside every mmenc run."""
    import transformers

    import mmenc

    with tempfile.TemporaryDirectory() as tmp:
        folder = clip_folder(Path(tmp) / "clip")
        paths = jpegs(Path(tmp), n)
        encoder = mmenc.load(str(folder), device="cpu")
        peer = transformers.pipeline(
            "zero-shot-image-classification",
            model=transformers.CLIPModel.from_pretrained(folder),
            tokenizer=transformers.CLIPTokenizer.from_pretrained(folder),
            image_processor=transformers.CLIPImageProcessor.from_pretrained(folder),
            device="cpu",
        )
        few = [str(p) for p in paths[:peer_images]]

        def ours(items: list[Any]) -> torch.Tensor:
            classifier = mmenc.ZeroShotClassifier(
                encoder, LABELS, templates=[TEMPLATE], batch_size=batch_size
            )
            return classifier.scores(items)

        def theirs(items: list[str]) -> list[Any]:
            return peer(items, candidate_labels=LABELS, hypothesis_template=TEMPLATE)

        with torch.inference_mode():
            difference = _max_difference(ours(paths[:peer_images]), theirs(few))
            t_ours, t_peer = alternate(
                lambda: ours(paths), lambda: theirs(few), repeats, warm_up=False
            )
    return [
        Row(
            f"zero-shot images, {n} JPEG files x {len(LABELS)} labels, CLIP ViT-B/32 "
            "architecture, float32",
            n / t_ours,
            peer_images / t_peer,
            "images/s",
            "transformers pipeline float32",
            5.0,
            f"transformers timed on {peer_images} of the files (it re-encodes the labels per "
            f"image); max probability difference {difference:.1e}",
        )
    ]


def _max_difference(ours: torch.Tensor, peer: list[list[dict[str, Any]]]) -> float:
    column = {label: k for k, label in enumerate(LABELS)}
    worst = 0.0
    for row, ranked in zip(ours.tolist(), peer, strict=True):
        for entry in ranked:
            worst = max(worst, abs(row[column[entry["label"]]] - entry["score"]))
    return worst


def memory(large: int = 5000, small: int = 100, batch_size: int = 32) -> list[dict[str, float]]:
    """Peak resident MB of ``mmenc.compare`` over ``small`` and over ``large`` JPEG files, each
    in a fresh process so that neither run's peak hides the other's: ``peak`` from the kernel,
    ``sampled`` as the report's ``peak_memory_mb``."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.json"
        listing.write_text(json.dumps([str(p) for p in _photos(Path(tmp), large)]))
        return [_child_peak(listing, n, batch_size) for n in (small, large)]


def memory_table(large: int = 5000, small: int = 100) -> str:
    """The streaming check as a Markdown table."""
    few, many = memory(large, small)
    growth = many["peak"] - few["peak"]
    ok = "✓" if growth <= MEMORY_LIMIT_MB else "✗"
    return (
        f"| streaming, compare() with tiny-clip | peak RSS, {small} files | "
        f"peak RSS, {large:,} files | growth | target |\n|---|---|---|---|---|\n"
        f"| JPEG files 224-480 px (report's sampled peak: {few['sampled']:,.0f} / "
        f"{many['sampled']:,.0f} MB) | {few['peak']:,.0f} MB | {many['peak']:,.0f} MB "
        f"| {growth:+,.0f} MB | ≤ {MEMORY_LIMIT_MB} MB {ok} |"
    )


def _photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n JPEG files of 224-480 px per side (smaller than ``jpegs``' so 5,000 are quick to write)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = rng.integers(224, 481, size=2)
        base = rng.integers(0, 256, size=(h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((int(w), int(h)), Image.Resampling.BILINEAR)
        paths.append(folder / f"{i:05d}.jpg")
        image.save(paths[-1], quality=85)
    return paths


def _child_peak(listing: Path, count: int, batch_size: int) -> dict[str, float]:
    code = (
        "from benchmarks.zeroshot import _classify; "
        f"_classify({str(listing)!r}, {count}, {batch_size})"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _classify(listing: str, count: int, batch_size: int) -> None:
    """In the child: classify the first ``count`` files with compare(); print the peaks."""
    import mmenc

    paths = json.loads(Path(listing).read_text())[:count]
    pairs = [(Path(p), LABELS[i % 10]) for i, p in enumerate(paths)]
    report = mmenc.compare(["tiny-clip"], pairs, batch_size=batch_size, progress=False)
    assert report.runs[0].examples == count, report.runs[0].errors[:3]
    print(json.dumps({"peak": _peak_rss_mb(), "sampled": report.runs[0].peak_memory_mb}))


def _peak_rss_mb() -> float:
    """This process's peak RSS: Linux's VmHWM, else ``ru_maxrss``. (On Linux ``ru_maxrss``
    keeps the parent's peak across fork + exec, so a child would report its parent's.)"""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


if __name__ == "__main__":
    import argparse

    from benchmarks.common import markdown

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=256, help="files mmenc classifies")
    parser.add_argument("--peer-images", type=int, default=16, help="files transformers does")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-images", type=int, default=5000, help="0 skips the check")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(markdown(run(args.images, args.peer_images, args.repeats)))
    if args.memory_images:
        print("\n" + memory_table(args.memory_images))
