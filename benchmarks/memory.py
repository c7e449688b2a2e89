"""Peak memory of ``mmenc embed`` writing a .npy file (``python -m benchmarks.memory``).

Each run is a fresh process: ``mmenc embed`` over all the inputs, and, for the model's own
footprint, a process that only loads the model and encodes one batch (the longest texts, as
the embed run meets them too, or the first image files). Both are started by a small process
that imports no torch and reads its children's peak resident memory (``ru_maxrss``), so the
figures are the commands' own. The difference is what grows with the number of inputs; the
target is at most 300 MB.

Texts: all-MiniLM-L6-v2 (real weights), sentences of 5-120 words with a fixed seed. Images:
tiny-clip (seeded random weights, 32 px input), JPEG files of 300-640 px: decoding and
resizing the files, which is what could pile up, does not depend on the model's size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import sentences
from benchmarks.images import jpegs

LIMIT_MB = 300
TEXT_MODEL = "all-minilm-l6-v2"
IMAGE_MODEL = "tiny-clip"
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
_ONE_BATCH = (
    "import json, sys, mmenc; modality, model, items = sys.argv[1:4]; "
    "items = json.loads(items); encoder = mmenc.load(model); "
    "getattr(encoder, 'encode_' + modality)(items, batch_size=len(items))"
)


def peak_mb(command: list[str]) -> float:
    """Peak resident MB of ``command``, run as the only child of a fresh small process.
    (Linux's ``ru_maxrss`` is in KiB and includes the forking process's peak: hence a small one.)"""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True
    )
    kib = int(done.stdout.split()[-1])
    return kib / 2**20 if sys.platform == "darwin" else kib / 1024


def measure(modality: str, model: str, inputs: list[str], batch: list[str], folder: Path) -> dict:
    """Peak MB of one batch and of ``mmenc embed`` over ``inputs``, which it writes to .npy."""
    out = folder / f"{modality}.npy"
    source = ["--texts-file", str(folder / "texts.txt")] if modality == "text" else inputs
    embed = [sys.executable, "-m", "mmenc.cli", "embed", "-m", model, *source]
    embed += ["--out", str(out), "--batch-size", str(len(batch)), "--no-progress"]
    base = peak_mb([sys.executable, "-c", _ONE_BATCH, modality, model, json.dumps(batch)])
    peak = peak_mb(embed)
    rows = np.load(out, mmap_mode="r").shape
    assert rows[0] == len(inputs), rows
    return {"inputs": len(inputs), "model": model, "base": base, "peak": peak, "shape": rows}


def run(texts: int = 20000, images: int = 2000, batch_size: int = 32) -> list[dict]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if texts:
            lines = sentences(texts)
            (folder / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            longest = sorted(lines, key=len)[-batch_size:]
            results.append(measure("text", TEXT_MODEL, lines, longest, folder))
        if images:
            files = [str(p) for p in jpegs(folder, images)]
            results.append(measure("image", IMAGE_MODEL, files, files[:batch_size], folder))
    return results


def table(results: list[dict]) -> str:
    lines = [
        "| `mmenc embed` to .npy | model | peak RSS, load + one batch | peak RSS, embed all "
        "| growth | target |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        growth = r["peak"] - r["base"]
        kind = "texts" if r["model"] == TEXT_MODEL else "JPEG files"
        ok = "✓" if growth <= LIMIT_MB else "✗"
        lines.append(
            f"| {r['inputs']:,} {kind} ({r['shape'][0]:,} x {r['shape'][1]}) | {r['model']} "
            f"| {r['base']:,.0f} MB | {r['peak']:,.0f} MB | {growth:+,.0f} MB "
            f"| ≤ {LIMIT_MB} MB {ok} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=20000, help="texts to embed (0 skips)")
    parser.add_argument("--images", type=int, default=2000, help="JPEG files (0 skips)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    print(table(run(args.texts, args.images, args.batch_size)))
