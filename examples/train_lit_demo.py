"""Train ``lit-demo``, the image-text model that ships with mmenc, and measure it.

    python examples/train_lit_demo.py                  # writes plugins/mmenc_lit/lit-demo
    python examples/train_lit_demo.py --out /tmp/lit   # anywhere else
    python examples/train_lit_demo.py --evaluate       # only measure the shipped model

A MobileNetV3 image tower (from scratch, 64 px) learns, with ``mmenc.train.lit``, to embed
images where the frozen all-MiniLM-L6-v2 embeds their captions. Training data, all offline:
  * scikit-learn's handwritten digits, minus the fixed 20% held out as ``digits-test``;
  * rendered shapes in random colours (another seed than the built-in ``shapes`` set, so
    those 300 images stay unseen);
  * rendered shapes in six named colours, with six colour x shape pairs never shown, to test
    whether the model composes colour and shape.
Then it scores the model zero-shot on the held-out images with prompt templates that no
training caption used, and prints the table that docs/lit.md quotes.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import mmenc
from mmenc.comparison.datasets import (
    DIGITS_TEST_FRACTION,
    DIGITS_TEST_SEED,
    NAMED_COLOURS,
    SHAPES,
    digits,
    generated_shapes,
)

SHIPPED = Path(__file__).resolve().parents[1] / "plugins" / "mmenc_lit" / "lit-demo"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAINING_TEMPLATES = (
    "a photo of a {}.",
    "a picture of the {}.",
    "an image of a {}.",
    "a {}.",
    "{}",
)
DIGIT_TEMPLATES = (
    "a photo of the number {}.",
    "the digit {}",
    "an image of the number {}.",
    "the number {}",
    "{}",
)
HELD_OUT_COMBOS = (
    ("red", "circle"),
    ("orange", "cross"),
    ("yellow", "hexagon"),
    ("green", "square"),
    ("blue", "star"),
    ("purple", "triangle"),
)  # each colour and each shape is held out once, so both are still seen in training
SEED = 0
SHAPE_SEED, COLOUR_SEED, COMBO_TEST_SEED = 1, 2, 3
SHAPES_PER_LABEL, COLOURED_PER_PAIR = 600, 60

# Prompts for testing: none of them is a training caption (the tests check this).
TEST_DIGIT_TEMPLATES = ("a handwritten {}.", "a scan of a handwritten digit {}.")
TEST_SHAPE_TEMPLATES = ("a drawing of a {}.", "a {} on a background.")


def captions(label: str) -> list[str]:
    """A digit's captions name it as a numeral and as a word; a coloured shape's name the
    colour and shape together, the shape alone and the colour alone."""
    if label.isdigit():
        names = (label, DIGIT_WORDS[int(label)])
        return [t.format(name) for t in DIGIT_TEMPLATES for name in names]
    colour, _, shape = label.rpartition(" ")
    texts = [t.format(label) for t in TRAINING_TEMPLATES]
    if colour:
        texts += [t.format(shape) for t in TRAINING_TEMPLATES]
        texts += [f"something {colour}.", f"a {colour} shape."]
    return texts


def training_pairs() -> list[tuple[Any, str]]:
    train_digits, _ = digits().split(DIGITS_TEST_FRACTION, seed=DIGITS_TEST_SEED)
    shapes = generated_shapes(SHAPES_PER_LABEL, seed=SHAPE_SEED)
    coloured = generated_shapes(
        COLOURED_PER_PAIR, seed=COLOUR_SEED, colours=list(NAMED_COLOURS), exclude=HELD_OUT_COMBOS
    )
    return [(e.input, e.label) for data in (train_digits, shapes, coloured) for e in data]


def evaluate(model: Any) -> dict[str, dict[str, float]]:
    """Zero-shot top-1 on every held-out set, with the test prompts; chance beside each."""
    held_out = generated_shapes(20, seed=COMBO_TEST_SEED, colours=list(NAMED_COLOURS))
    unseen = [e for e in held_out if tuple(e.label.split()) in HELD_OUT_COMBOS]
    every_pair = held_out.labels
    rows = {
        "digits-test (labels 0-9)": _top1(model, "digits-test", None, TEST_DIGIT_TEMPLATES),
        "digits-test (labels zero-nine)": _top1(
            model, "digits-words-test", None, TEST_DIGIT_TEMPLATES
        ),
        "shapes (the built-in 300)": _top1(model, "shapes", None, TEST_SHAPE_TEMPLATES),
        "unseen colour x shape pairs, among all 36": _top1(
            model, [(e.input, e.label) for e in unseen], every_pair, TEST_SHAPE_TEMPLATES
        ),
        "unseen colour x shape pairs, among the 6 unseen": _top1(
            model,
            [(e.input, e.label) for e in unseen],
            [" ".join(pair) for pair in HELD_OUT_COMBOS],
            TEST_SHAPE_TEMPLATES,
        ),
        "unseen pairs: shape alone": _top1(
            model,
            [(e.input, e.label.split()[1]) for e in unseen],
            list(SHAPES),
            TEST_SHAPE_TEMPLATES,
        ),
        "unseen pairs: colour alone": _top1(
            model,
            [(e.input, e.label.split()[0]) for e in unseen],
            list(NAMED_COLOURS),
            ("something {}.", "a {} thing."),
        ),
    }
    return rows


def _top1(model: Any, dataset: Any, labels: Any, templates: tuple[str, ...]) -> dict[str, float]:
    report = mmenc.compare([model], dataset, labels=labels, templates=templates, progress=False)
    run = report.runs[0]
    return {"top1": run.metrics.top1, "chance": 1 / len(run.labels), "examples": run.examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--evaluate", action="store_true", help="measure --out, train nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.evaluate:
        train(args.out, args.epochs, args.resume)
    model = mmenc.load(str(args.out))
    print("\n| held-out set | top-1 | chance | images |\n|---|---|---|---|")
    results = evaluate(model)
    for name, row in results.items():
        print(f"| {name} | {row['top1']:.1%} | {row['chance']:.1%} | {row['examples']} |")


def train(out: Path, epochs: int, resume: bool) -> None:
    started = time.perf_counter()
    result = mmenc.train.lit(
        "mobilenetv3_small_050",
        "minilm-l6",
        training_pairs(),
        out_dir=out,
        captions=captions,
        validation_templates=TRAINING_TEMPLATES,
        epochs=epochs,
        batch_size=128,
        lr=2e-3,
        seed=SEED,
        image_size=64,
        resume=resume,
    )
    minutes = (time.perf_counter() - started) / 60
    print(f"\ntrained {result.path} in {minutes:.1f} min")


if __name__ == "__main__":
    main()
