"""Labelled datasets for zero-shot comparison, all read into one lazy ``Dataset``.

Sources: the built-in demo sets (``"digits"``, ``"digits-words"``, ``"shapes"``, ``"topics"``),
an image folder (one subfolder per class), a ``.csv`` / ``.jsonl`` table of texts or image paths
with their labels, or a Python list of ``(input, label)`` pairs.

A dataset holds only its list of examples: image files stay ``pathlib.Path``s and the built-in
image sets render each image when iteration reaches it, so even a large set costs the memory of
its file list, and a consumer decodes one batch at a time. Image inputs are never ``str``: mmenc
reads a ``str`` as a text.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mmenc.errors import MmencError
from mmenc.inputs import IMAGE_TYPES, check_nonblank_text

DIGIT_SIZE = 64
SHAPE_SIZE = 96
SHAPES = ("circle", "cross", "hexagon", "square", "star", "triangle")
SHAPES_PER_LABEL = 50
_SHAPES_SEED = 20240604  # fixed: "shapes" is the same 300 images on every machine and run
DIGITS_TEST_FRACTION, DIGITS_TEST_SEED = 0.2, 0  # the digits held out of lit-demo
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SHOWN = 5  # bad rows quoted in an error message


@dataclass(frozen=True)
class Example:
    """One labelled input; ``source`` says where it came from (an image's path, or a file and
    line), so that an error about this example can point at it."""

    input: Any
    label: str
    source: str


class DatasetError(MmencError, ValueError):
    """A dataset that cannot be read. ``problems`` lists every bad row as ``(source, why)``."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        self.problems = list(problems)
        super().__init__(message)


class Dataset:
    """Labelled texts or images, iterated lazily as ``Example``s.

    ``labels`` is the candidate label set, in order: sorted, unless the source fixes an order
    (digits in numeric order). A subset keeps the full label set, so it poses the same task.
    ``problems`` lists ``(source, why)`` for files the source names but that were skipped when
    loading (a non-image file in an image folder, a missing image file in a table): they are
    not examples, and a report should show them next to the errors met while evaluating.
    ``render``, when given, turns each stored input into the model input as iteration reaches it
    (how the built-in image sets stay lazy).
    """

    def __init__(
        self,
        name: str,
        modality: str,
        examples: Sequence[Example],
        *,
        labels: Sequence[str] | None = None,
        description: str = "",
        problems: Sequence[tuple[str, str]] = (),
        render: Callable[[Any], Any] | None = None,
    ) -> None:
        if modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
        self.name = name
        self.modality = modality
        self.labels = list(labels) if labels is not None else sorted({e.label for e in examples})
        unknown = sorted({e.label for e in examples} - set(self.labels))
        if unknown:
            raise ValueError(f"dataset {name!r} has examples labelled {unknown}, not in its labels")
        self.description = description
        self.problems = list(problems)
        self._examples = list(examples)
        self._render = render

    def __len__(self) -> int:
        return len(self._examples)

    def __iter__(self) -> Iterator[Example]:
        for example in self._examples:
            if self._render is None:
                yield example
            else:
                yield replace(example, input=self._render(example.input))

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, {self.modality}, {len(self)} examples, "
            f"{len(self.labels)} labels)"
        )

    def subset(self, limit: int, seed: int = 0) -> Dataset:
        """At most ``limit`` examples, class-balanced: classes take turns (in a seeded random
        order) giving one seeded-random example each, so every class gets ``limit // K`` or one
        more unless it runs out first. The examples keep their original order."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        if limit >= len(self):
            return self
        chosen = _balanced([e.label for e in self._examples], limit, seed)
        return self._part(chosen, f"a class-balanced subset of {limit}, seed {seed}")

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """``(rest, held_out)``: a seeded, class-balanced ``fraction`` of the examples held out
        (as ``subset`` picks them), and the others; each keeps the full label set."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
        held = set(_balanced([e.label for e in self._examples], round(fraction * len(self)), seed))
        rest = [i for i in range(len(self)) if i not in held]
        note = f"{fraction:.0%} held out, seed {seed}"
        return self._part(rest, f"without the {note}"), self._part(sorted(held), f"the {note}")

    def _part(self, indices: Sequence[int], how: str) -> Dataset:
        return Dataset(
            self.name,
            self.modality,
            [self._examples[i] for i in indices],
            labels=self.labels,
            description=f"{self.description} ({how})",
            problems=self.problems,
            render=self._render,
        )


def load_dataset(
    spec: str | Path | Sequence[tuple[Any, str]] | Dataset,
    *,
    limit: int | None = None,
    seed: int = 0,
) -> Dataset:
    """A ``Dataset`` from a built-in name, a folder, a ``.csv`` / ``.jsonl`` file, a list of
    ``(input, label)`` pairs, or a ``Dataset`` (returned as is).

    A ``str`` that names a built-in set is that set (a folder of the same name needs ``./``).
    ``limit`` takes a seeded, class-balanced subset (``Dataset.subset``). Bad rows raise one
    ``DatasetError`` that names each of them.
    """
    dataset = _load(spec)
    return dataset if limit is None else dataset.subset(limit, seed)


def _load(spec: Any) -> Dataset:
    if isinstance(spec, Dataset):
        return spec
    if isinstance(spec, str) and spec in BUILTIN:
        return BUILTIN[spec]()
    if isinstance(spec, (str, Path)):
        return _from_path(Path(spec).expanduser(), spec)
    if isinstance(spec, (bytes, dict)) or not isinstance(spec, Iterable):
        raise TypeError(
            f"load_dataset takes a name ({', '.join(BUILTIN)}), a folder, a .csv / .jsonl file, "
            f"a list of (input, label) pairs or a Dataset; got {type(spec).__name__}"
        )
    return _from_pairs(list(spec))


def _from_path(path: Path, spec: str | Path) -> Dataset:
    if path.is_dir():
        return _image_folder(path)
    if path.is_file() and path.suffix.lower() in (".csv", ".jsonl"):
        return _table(path)
    if path.is_file():
        raise DatasetError(f"{path}: a dataset file must be .csv or .jsonl, not {path.suffix!r}")
    raise DatasetError(
        f"no dataset {str(spec)!r}: not a built-in name ({', '.join(BUILTIN)}) nor an existing "
        "folder or .csv / .jsonl file"
    )


# --- image folders --------------------------------------------------------------------------


def _image_folder(root: Path) -> Dataset:
    """One class per visible subfolder (its name is the label), images anywhere below it.

    Hidden files are ignored; other files whose extension PIL cannot open are skipped and listed
    in ``problems``. Files are not opened here: a corrupt image is found, and reported with its
    path, when it is decoded.
    """
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(
            f"{root} has no class subfolders: an image folder dataset has one subfolder per "
            f"class, named by its label (e.g. {root / 'cat' / '001.jpg'})"
        )
    extensions = set(Image.registered_extensions())
    examples, problems = [], []
    for folder in classes:
        for path in _visible_files(folder):
            if path.suffix.lower() in extensions:
                examples.append(Example(path, folder.name, str(path)))
            else:
                problems.append((str(path), "skipped: not an image file (by its extension)"))
    if not examples:
        raise DatasetError(
            f"{root}: no image files in its class folders {[c.name for c in classes]}"
        )
    return Dataset(
        root.name,
        "image",
        examples,
        labels=[c.name for c in classes],
        description=f"images in {root}, one subfolder per class",
        problems=problems,
    )


def _visible_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(folder).parts)
    )


# --- tables: CSV and JSONL ------------------------------------------------------------------


def _table(path: Path) -> Dataset:
    """Rows of (``text`` or ``image``, ``label``); image paths are relative to the file's
    folder. Other columns are ignored."""
    reader = _csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows
    with path.open(encoding="utf-8-sig", newline="") as file:  # -sig: spreadsheets write a BOM
        column, rows = reader(file, path.name)
    return _from_rows(
        rows, column, name=path.stem, folder=path.parent, description=f"{column}s in {path}"
    )


def _csv_rows(file: Iterable[str], where: str) -> tuple[str, list[tuple[str, Any]]]:
    reader = csv.DictReader(file)
    column = _column(reader.fieldnames or [], where)
    return column, [(f"{where} line {reader.line_num}", row) for row in reader]


def _jsonl_rows(lines: Iterable[str], where: str) -> tuple[str, list[tuple[str, Any]]]:
    rows: list[tuple[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append((f"{where} line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where} line {number}: not valid JSON ({exc.msg})") from None
    if not rows:
        raise DatasetError(f"{where} has no rows")
    first = rows[0][1]
    if not isinstance(first, dict):
        raise DatasetError(f"{rows[0][0]}: expected a JSON object, got {type(first).__name__}")
    return _column(first, where), rows


def _column(keys: Iterable[str], where: str) -> str:
    """Which input column a table has: exactly one of ``text`` and ``image``, plus ``label``."""
    keys = list(keys)
    inputs = [key for key in ("text", "image") if key in keys]
    if "label" not in keys or len(inputs) != 1:
        raise DatasetError(
            f"{where}: a dataset table needs a 'label' column and one of 'text' or 'image'; "
            f"found {keys}"
        )
    return inputs[0]


def _from_rows(
    rows: list[tuple[str, Any]], column: str, *, name: str, folder: Path, description: str
) -> Dataset:
    examples, bad, missing = [], [], []
    for where, row in rows:
        if not isinstance(row, dict):
            bad.append((where, f"expected a JSON object, got {type(row).__name__}"))
            continue
        label: Any = row.get("label")
        value: Any = row.get(column)
        why = _label_problem(label) or _value_problem(value, column)
        if why:
            bad.append((where, why))
        elif column == "text":
            examples.append(Example(value, label.strip(), where))
        elif not (path := folder / Path(value).expanduser()).is_file():
            missing.append((f"{path} ({where})", "skipped: image file not found"))
        else:
            examples.append(Example(path, label.strip(), f"{path} ({where})"))
    _raise_bad_rows(name, bad)
    if not examples:
        found = f": all {len(missing)} image files are missing" if missing else ""
        raise DatasetError(f"dataset {name!r} has no examples{found}", missing)
    return Dataset(name, column, examples, description=description, problems=missing)


def _label_problem(label: Any) -> str | None:
    if label is None:
        return "no label"
    if not isinstance(label, str):
        return f"the label must be a string, got {type(label).__name__} ({label!r})"
    return None if label.strip() else "the label is empty"


def _value_problem(value: Any, column: str) -> str | None:
    if value is None:
        return f"no {column!r} value"
    if column == "text":
        return check_nonblank_text(value)
    if not isinstance(value, str) or not value.strip():
        return f"the image path must be a non-empty string, got {value!r}"
    return None


def _raise_bad_rows(name: str, bad: list[tuple[str, str]]) -> None:
    if not bad:
        return
    shown = "; ".join(f"{where}: {why}" for where, why in bad[:_SHOWN])
    more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
    raise DatasetError(
        f"dataset {name!r} has {len(bad)} bad row(s): {shown}{more}. Fix or drop these rows.", bad
    )


# --- Python lists ---------------------------------------------------------------------------


def _from_pairs(pairs: list[Any]) -> Dataset:
    """``(input, label)`` pairs: all texts (``str``) or all images (paths, PIL images, bytes,
    arrays; a path given as ``str`` would be a text, so pass ``pathlib.Path``)."""
    examples: list[Example] = []
    bad: list[tuple[str, str]] = []
    modality = ""  # the first good pair's
    for i, pair in enumerate(pairs):
        where = f"pair {i}"
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            bad.append((where, f"expected an (input, label) pair, got {_short(pair)}"))
            continue
        item, label = pair
        kind, why = _input_kind(item)
        why = why or _label_problem(label)
        if not why and modality and kind != modality:
            why = f"a {kind} among {modality}s: a dataset is all texts or all images"
        if why:
            bad.append((where, why))
            continue
        modality = modality or kind
        source = str(item) if isinstance(item, Path) else where
        examples.append(Example(item, label.strip(), source))
    _raise_bad_rows("list", bad)
    if not examples:
        raise DatasetError("an empty list of (input, label) pairs has nothing to evaluate")
    return Dataset(
        "list", modality, examples, description=f"{len(examples)} {modality}s from a Python list"
    )


def _input_kind(item: Any) -> tuple[str, str | None]:
    """("text" or "image", why the item is unusable or None)."""
    if isinstance(item, str):
        return "text", check_nonblank_text(item)
    if isinstance(item, IMAGE_TYPES):
        return "image", None
    return "", f"expected a text (str) or an image, got {_short(item)}"


def _short(item: Any, width: int = 40) -> str:
    text = f"{type(item).__name__} {item!r}"
    return text if len(text) <= width else text[: width - 3] + "..."


# --- built-in sets --------------------------------------------------------------------------


def topics() -> Dataset:
    """240 short English sentences, 40 in each of 6 topics, written for mmenc (Apache-2.0)."""
    return _packaged(
        "topics", "240 short English sentences in 6 topics (40 each), written for mmenc"
    )


def shapes_text() -> Dataset:
    """48 sentences that describe one of the six ``shapes`` without naming it (8 each), written
    for mmenc: the text side of the shapes task, to run text models on the same labels."""
    return _packaged("shapes-text", "48 descriptions of the 6 shapes (8 each), written for mmenc")


def _packaged(name: str, description: str) -> Dataset:
    data = resources.files("mmenc.comparison").joinpath("data", f"{name}.jsonl")
    column, rows = _jsonl_rows(data.read_text(encoding="utf-8").splitlines(), f"{name}.jsonl")
    return _from_rows(rows, column, name=name, folder=Path(), description=description)


def digits(words: bool = False) -> Dataset:
    """scikit-learn's 1,797 handwritten digits (real scans: 8x8, 17 grey levels), drawn dark on
    white with a 1-pixel margin and upsampled to 64x64 RGB when iterated. Labels are "0".."9",
    or "zero".."nine" with ``words`` (a prompt may read better with a word than a numeral)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    data = load_digits()
    names = _DIGIT_WORDS if words else tuple(str(d) for d in range(10))
    ink = np.rint(data.images * (255 / 16)).astype(np.uint8)
    examples = [
        Example(ink[i], names[int(target)], f"digits #{i}") for i, target in enumerate(data.target)
    ]
    return Dataset(
        "digits-words" if words else "digits",
        "image",
        examples,
        labels=names,
        description="scikit-learn's 1,797 handwritten digits (UCI), upsampled to 64x64 RGB",
        render=_render_digit,
    )


def digits_test(words: bool = False) -> Dataset:
    """A fixed, class-balanced 20% of ``digits`` (359 images): the split that the shipped
    ``lit-demo`` model never saw in training, to test it on. The split is drawn on the numeral
    labels, so that ``words`` holds out the very same images."""
    _, held_out = digits().split(DIGITS_TEST_FRACTION, seed=DIGITS_TEST_SEED)
    names = dict(zip(held_out.labels, _DIGIT_WORDS if words else held_out.labels, strict=True))
    return Dataset(
        "digits-words-test" if words else "digits-test",
        "image",
        [replace(e, label=names[e.label]) for e in held_out._examples],
        labels=list(names.values()),
        description=held_out.description,
        render=_render_digit,
    )


def _render_digit(ink: np.ndarray) -> Image.Image:
    small = Image.fromarray(np.pad(255 - ink, 1, constant_values=255), "L")  # a white margin
    return small.resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BICUBIC).convert("RGB")


def shapes() -> Dataset:
    """300 procedurally drawn 96x96 images: 50 of each of 6 shapes, each in a random colour,
    size, place and rotation on a random background (solid, gradient, stripes, checks or
    noise). Rendered when iterated, from a fixed seed per image: the same on every run."""
    examples = [
        Example(i, SHAPES[i % len(SHAPES)], f"shapes #{i}")
        for i in range(SHAPES_PER_LABEL * len(SHAPES))
    ]
    return Dataset(
        "shapes",
        "image",
        examples,
        labels=SHAPES,
        description="300 procedurally rendered coloured shapes on varied backgrounds",
        render=_render_shape,
    )


def generated_shapes(
    per_label: int,
    *,
    seed: int,
    colours: Sequence[str] | None = None,
    exclude: Collection[tuple[str, str]] = (),
) -> Dataset:
    """``per_label`` more images per label, drawn like ``shapes()`` from another ``seed`` (the
    built-in 300 come from a seed of their own, so training data made here never repeats them).

    Without ``colours`` the labels are the shape names and each shape gets a random colour. With
    ``colours`` (names from ``NAMED_COLOURS``) the labels are ``"<colour> <shape>"`` for every
    pair but the ``(colour, shape)`` pairs in ``exclude``, and each shape is drawn in its colour
    on a contrasting background: a set to test whether a model composes colour and shape.
    """
    unknown = sorted(set(colours or ()) - set(NAMED_COLOURS))
    if unknown:
        raise ValueError(f"unknown colours {unknown}; choose from {sorted(NAMED_COLOURS)}")
    palette: list[str | None] = [*colours] if colours else [None]
    kinds = [
        (colour, shape) for colour in palette for shape in SHAPES if (colour, shape) not in exclude
    ]
    labels = [shape if colour is None else f"{colour} {shape}" for colour, shape in kinds]
    examples = [
        Example((seed, i, *kinds[i % len(kinds)]), labels[i % len(kinds)], f"shapes-{seed} #{i}")
        for i in range(per_label * len(kinds))
    ]
    return Dataset(
        f"shapes-{seed}",
        "image",
        examples,
        labels=labels,
        description=f"{len(examples)} rendered shapes ({', '.join(labels)}), seed {seed}",
        render=_render_generated,
    )


NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 140, 25),
    "yellow": (245, 220, 40),
    "green": (35, 160, 55),
    "blue": (40, 75, 215),
    "purple": (135, 50, 180),
}


def _render_shape(index: int) -> Image.Image:
    return _draw_shape(np.random.default_rng((_SHAPES_SEED, index)), SHAPES[index % len(SHAPES)])


def _render_generated(key: tuple[int, int, str | None, str]) -> Image.Image:
    seed, index, colour, shape = key
    rgb = NAMED_COLOURS[colour] if colour else None
    return _draw_shape(np.random.default_rng((seed, index)), shape, rgb)


def _draw_shape(
    rng: np.random.Generator, shape: str, colour: tuple[int, int, int] | None = None
) -> Image.Image:
    """Drawn at twice the size and downsampled, for smooth edges. A named ``colour`` is bright
    or dark by its luminance, and the background the opposite."""
    size = 2 * SHAPE_SIZE
    bright = bool(rng.random() < 0.5)  # a bright shape on a dark background, or the reverse
    if colour is not None:
        bright = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] > 120
    image = _background(rng, size, dark=bright)
    low, high = (150, 256) if bright else (0, 110)
    r, g, b = (int(c) for c in rng.integers(low, high, 3))  # drawn even when unused, so that
    fill = colour or (r, g, b)  # size, place and angle come from the same draws either way
    radius = size * rng.uniform(0.22, 0.36)
    centre = rng.uniform(radius + 4, size - radius - 4, 2)
    angle = rng.uniform(-np.pi / 7, np.pi / 7)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        x, y = centre
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    else:
        points = _outline(shape) * radius
        draw.polygon([tuple(p) for p in points @ _turn(angle).T + centre], fill=fill)
    return image.resize((SHAPE_SIZE, SHAPE_SIZE), Image.Resampling.LANCZOS)


def _outline(shape: str) -> np.ndarray:
    """The shape's corners around (0, 0), radius 1, pointing up (y grows downwards)."""
    if shape == "cross":
        t = 0.34
        quarter = [(t, -1), (t, -t), (1, -t)]
        corners = [c for k in range(4) for c in np.array(quarter) @ _turn(k * np.pi / 2).T]
        return np.array(corners)
    count, inner = {"triangle": (3, 1.0), "square": (4, 1.0), "hexagon": (6, 1.0)}.get(
        shape, (10, 0.45)
    )
    offset = np.pi / 4 if shape == "square" else 0.0
    angles = offset - np.pi / 2 + np.arange(count) * 2 * np.pi / count
    radii = np.where(np.arange(count) % 2 == 1, inner, 1.0)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _turn(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def _background(rng: np.random.Generator, size: int, *, dark: bool) -> Image.Image:
    low, high = (0, 100) if dark else (160, 256)
    a, b = rng.integers(low, high, (2, 3)).astype(np.float64)
    style = rng.integers(5)
    y, x = np.mgrid[0:size, 0:size] / size
    if style == 0:  # solid
        mix = np.zeros((size, size))
    elif style == 1:  # linear gradient in a random direction
        theta = rng.uniform(0, 2 * np.pi)
        mix = (np.cos(theta) * (x - 0.5) + np.sin(theta) * (y - 0.5)) / np.sqrt(2) + 0.5
    elif style == 2:  # stripes
        mix = (np.floor((x if rng.random() < 0.5 else y) * rng.integers(4, 12)) % 2).astype(float)
    elif style == 3:  # checks
        n = rng.integers(3, 9)
        mix = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(float)
    else:  # noise
        mix = rng.random((size, size))
    pixels = a + mix[..., None] * (b - a)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


BUILTIN: dict[str, Callable[[], Dataset]] = {
    "digits": digits,
    "digits-words": lambda: digits(words=True),
    "digits-test": digits_test,
    "digits-words-test": lambda: digits_test(words=True),
    "shapes": shapes,
    "shapes-text": shapes_text,
    "topics": topics,
}


def _balanced(labels: list[str], limit: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    queues = [rng.sample(indices, len(indices)) for _, indices in sorted(by_label.items())]
    rng.shuffle(queues)
    chosen: list[int] = []
    while len(chosen) < limit:
        chosen.extend(queue.pop() for queue in queues if queue)
    return sorted(chosen[:limit])
