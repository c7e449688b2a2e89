"""Datasets for the comparison harness: built-in sets, folders, tables, lists, subsets."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmenc.comparison.datasets import (
    NAMED_COLOURS,
    SHAPES,
    Dataset,
    DatasetError,
    Example,
    generated_shapes,
    load_dataset,
)
from mmenc.inputs import decode_image

ROOT = Path(__file__).parents[1]


def _png(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), colour).save(path)
    return path


# --- built-in sets ---------------------------------------------------------------------------


def test_digits_are_sklearns_digits_upsampled_with_labels_in_numeric_order():
    from sklearn.datasets import load_digits

    data = load_dataset("digits")
    assert (data.name, data.modality, len(data)) == ("digits", "image", 1797)
    assert data.labels == [str(d) for d in range(10)]
    target = load_digits().target
    examples = list(itertools.islice(data, 20))
    assert [e.label for e in examples] == [str(t) for t in target[:20]]
    image = examples[0].input
    assert isinstance(image, Image.Image) and (image.mode, image.size) == ("RGB", (64, 64))
    pixels = np.asarray(image)
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels.min() < 60  # dark ink on white
    assert examples[3].source == "digits #3"


def test_digits_words_label_the_same_images_with_words():
    words = load_dataset("digits-words")
    assert words.labels[:3] == ["zero", "one", "two"] and len(words.labels) == 10
    first_numeral, first_word = next(iter(load_dataset("digits"))), next(iter(words))
    assert words.labels[int(first_numeral.label)] == first_word.label
    assert np.array_equal(np.asarray(first_numeral.input), np.asarray(first_word.input))


def test_shapes_are_balanced_deterministic_and_varied():
    data = load_dataset("shapes")
    assert data.labels == sorted(SHAPES) and len(data) == 300
    assert set(Counter(e.label for e in data).values()) == {50}
    first = list(itertools.islice(data, 12))
    again = list(itertools.islice(load_dataset("shapes"), 12))
    assert all(a.input.tobytes() == b.input.tobytes() for a, b in zip(first, again, strict=True))
    assert {(e.input.mode, e.input.size) for e in first} == {("RGB", (96, 96))}
    assert len({e.input.tobytes() for e in first}) == 12
    corners = {e.input.getpixel((0, 0)) for e in first}
    assert len(corners) > 6  # backgrounds vary


def test_generated_shapes_never_repeat_the_builtin_ones_and_can_leave_pairs_out():
    more = generated_shapes(2, seed=1)
    assert more.labels == list(SHAPES) and len(more) == 12
    builtin = {e.input.tobytes() for e in load_dataset("shapes")}
    assert not builtin & {e.input.tobytes() for e in more}
    again = generated_shapes(2, seed=1)
    assert [e.input.tobytes() for e in more] == [e.input.tobytes() for e in again]
    coloured = generated_shapes(1, seed=2, colours=["red", "blue"], exclude={("red", "star")})
    assert "red star" not in coloured.labels and "blue star" in coloured.labels
    assert len(coloured.labels) == 11 and len(coloured) == 11
    red = next(e.input for e in coloured if e.label == "red circle")
    assert NAMED_COLOURS["red"] in {pixel for _, pixel in red.getcolors(96 * 96)}
    with pytest.raises(ValueError, match=r"unknown colours.*'teal'"):
        generated_shapes(1, seed=2, colours=["teal"])


def test_split_holds_out_a_seeded_class_balanced_fraction():
    data = load_dataset("topics")
    rest, held = data.split(0.25, seed=3)
    assert len(held) == 60 and len(rest) == 180
    assert set(Counter(e.label for e in held).values()) == {10}
    assert not {e.source for e in rest} & {e.source for e in held}
    assert [e.source for e in data.split(0.25, seed=3)[1]] == [e.source for e in held]
    assert rest.labels == held.labels == data.labels
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            data.split(bad)


def test_digits_test_is_the_fixed_fifth_left_out_of_training():
    held = load_dataset("digits-test")
    assert (held.name, len(held), held.labels) == ("digits-test", 359, [str(d) for d in range(10)])
    train, same = load_dataset("digits").split(0.2, seed=0)
    assert [e.source for e in held] == [e.source for e in same]
    assert not {e.source for e in held} & {e.source for e in train}
    words = load_dataset("digits-words-test")
    assert [e.source for e in words] == [e.source for e in held]
    assert words.labels[7] == "seven"


def test_shapes_text_describes_each_shape_without_naming_it():
    data = load_dataset("shapes-text")
    assert data.modality == "text" and data.labels == sorted(SHAPES) and len(data) == 48
    assert set(Counter(e.label for e in data).values()) == {8}
    for example in data:
        assert example.label not in example.input.lower(), example.input


def _topic_rows() -> list[dict]:
    text = resources.files("mmenc.comparison").joinpath("data", "topics.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_topics_is_a_balanced_set_of_short_sentences():
    data = load_dataset("topics")
    assert data.modality == "text" and len(data) >= 200 and len(data.labels) >= 4
    assert "written for mmenc" in data.description
    counts = Counter(e.label for e in data)
    assert sorted(counts) == data.labels and len(set(counts.values())) == 1
    assert [e.input for e in data] == [row["text"] for row in _topic_rows()]
    for example in data:
        assert 4 <= len(example.input.split()) <= 16, example.input
        assert example.input[0].isupper() and example.input.endswith("."), example.input
    assert next(iter(data)).source == "topics.jsonl line 1"


def test_topics_has_no_near_duplicates():
    stop = {"the", "a", "an", "of", "to", "in", "and", "on", "for", "at", "with", "is", "was"}

    def words(text: str) -> set[str]:
        return set(re.findall(r"[a-z']+", text.lower())) - stop

    texts = [row["text"] for row in _topic_rows()]
    assert len({t.lower() for t in texts}) == len(texts)
    for a, b in itertools.combinations(texts, 2):
        overlap = len(words(a) & words(b)) / len(words(a) | words(b))
        assert overlap < 0.5, (a, b)


def test_topics_file_is_declared_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mmenc.comparison"]
    assert "data/*.jsonl" in patterns


def test_a_builtin_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    _png(tmp_path / "shapes" / "blob" / "1.png")
    monkeypatch.chdir(tmp_path)
    assert load_dataset("shapes").labels == sorted(SHAPES)
    assert load_dataset("./shapes").labels == ["blob"]
    assert load_dataset(Path("shapes")).labels == ["blob"]


# --- image folders ---------------------------------------------------------------------------


def test_image_folder_keeps_paths_and_reports_skipped_files(tmp_path):
    _png(tmp_path / "dog" / "b.png")
    _png(tmp_path / "cat" / "a.png")
    _png(tmp_path / "cat" / "more" / "c.png")  # nested: still a cat
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "cat" / "notes.txt").write_text("about cats")
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0")
    _png(tmp_path / ".thumbnails" / "x.png")  # a hidden folder is no class
    (tmp_path / "README.md").write_text("top-level files are not examples")

    data = load_dataset(tmp_path)
    assert (data.name, data.modality, data.labels) == (tmp_path.name, "image", ["cat", "dog"])
    examples = list(data)
    assert [(e.input.relative_to(tmp_path).as_posix(), e.label) for e in examples] == [
        ("cat/a.png", "cat"),
        ("cat/broken.png", "cat"),
        ("cat/more/c.png", "cat"),
        ("dog/b.png", "dog"),
    ]
    assert all(isinstance(e.input, Path) and e.source == str(e.input) for e in examples)
    [(source, why)] = data.problems
    assert source == str(tmp_path / "cat" / "notes.txt") and "not an image file" in why
    # the corrupt file stays an example; decoding it fails naming its path (the harness's error)
    with pytest.raises(ValueError, match=r"broken\.png"):
        decode_image(examples[1].input)


def test_image_folder_without_classes_or_images_is_an_error(tmp_path):
    _png(tmp_path / "flat" / "1.png")
    with pytest.raises(DatasetError, match=r"no class subfolders.*one subfolder per class"):
        load_dataset(tmp_path / "flat")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "a.txt").write_text("x")
    with pytest.raises(DatasetError, match=r"no image files in its class folders \['cat'\]"):
        load_dataset(tmp_path / "empty")


# --- CSV and JSONL ---------------------------------------------------------------------------


def test_csv_of_texts(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = 'id,text,label\n1,"Great, loved it",pos\n2,"He said ""meh""",neg\n3,Fine,pos\n'
    path.write_text(rows, encoding="utf-8-sig")  # a spreadsheet's byte-order mark
    data = load_dataset(path)
    assert (data.name, data.modality, data.labels, len(data)) == (
        "reviews",
        "text",
        ["neg", "pos"],
        3,
    )
    examples = list(data)
    assert examples[0] == Example("Great, loved it", "pos", "reviews.csv line 2")
    assert examples[1].input == 'He said "meh"'


def test_csv_of_images_resolves_paths_against_its_folder(tmp_path, monkeypatch):
    _png(tmp_path / "set" / "img" / "a.png")
    absolute = _png(tmp_path / "elsewhere" / "b.png")
    path = tmp_path / "set" / "labels.csv"
    path.write_text(f"image,label\nimg/a.png,red\n{absolute},red\nimg/missing.png,blue\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    data = load_dataset(str(path))
    assert data.modality == "image" and data.labels == ["red"]
    inputs = [e.input for e in data]
    assert inputs == [tmp_path / "set" / "img" / "a.png", absolute]
    assert all(decode_image(i).size == (12, 10) for i in inputs)
    assert next(iter(data)).source.endswith("a.png (labels.csv line 2)")
    [(source, why)] = data.problems  # a missing file is reported, not fatal
    assert "missing.png" in source and "labels.csv line 4" in source and "not found" in why


def test_bad_rows_are_all_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\nok,a\n,b\nfine,\n  ,c\nshort\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert [where for where, _ in info.value.problems] == [
        "bad.csv line 3",
        "bad.csv line 4",
        "bad.csv line 5",
        "bad.csv line 6",
    ]
    message = str(info.value)
    assert "4 bad row(s)" in message and "bad.csv line 4: the label is empty" in message
    assert "bad.csv line 6: no label" in message and "Fix or drop" in message

    many = tmp_path / "many.csv"
    many.write_text("text,label\n" + "x,\n" * 8)
    with pytest.raises(DatasetError, match=r"8 bad row\(s\).*\(and 3 more\)"):
        load_dataset(many)


@pytest.mark.parametrize(
    ("header", "match"),
    [("text,image,label", "one of 'text' or 'image'"), ("text,topic", "needs a 'label' column")],
)
def test_table_columns_are_checked(tmp_path, header, match):
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\nx,y,z\n")
    with pytest.raises(DatasetError, match=match):
        load_dataset(path)


def test_jsonl(tmp_path):
    path = tmp_path / "notes.jsonl"
    lines = [{"text": "rain again", "label": "weather", "id": 1}, {"text": "2-1", "label": "sport"}]
    path.write_text("\n".join(json.dumps(row) for row in lines[:1]) + "\n\n" + json.dumps(lines[1]))
    data = load_dataset(path)
    assert [(e.input, e.label, e.source) for e in data] == [
        ("rain again", "weather", "notes.jsonl line 1"),
        ("2-1", "sport", "notes.jsonl line 3"),
    ]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": 3}', r"line 2: the label must be"),
        ('{"text": "a", "label": "x"}\n{"text": "b", "label"', r"line 2: not valid JSON"),
        ('{"text": "a", "label": "x"}\n["b", "y"]', r"line 2: expected a JSON object"),
        ('{"image": "a.png", "label": "x"}\n{"image": 7, "label": "y"}', r"line 2: the image path"),
        ("\n", "has no rows"),
    ],
)
def test_bad_jsonl_names_the_line(tmp_path, lines, match):
    path = tmp_path / "d.jsonl"
    path.write_text(lines)
    with pytest.raises(DatasetError, match=match):
        load_dataset(path)


# --- Python lists ----------------------------------------------------------------------------


def test_pairs_of_texts_and_of_images(tmp_path):
    data = load_dataset([("a goal", "sport"), ("a vote", "politics"), ("a match", "sport")])
    assert (data.name, data.modality, data.labels) == ("list", "text", ["politics", "sport"])
    assert [e.source for e in data] == ["pair 0", "pair 1", "pair 2"]

    path = _png(tmp_path / "x.png")
    images = [
        (path, "red"),
        (Image.new("RGB", (4, 4)), "black"),
        (np.zeros((4, 4, 3), np.uint8), "black"),
    ]
    data = load_dataset(images)
    assert data.modality == "image" and [e.source for e in data] == [str(path), "pair 1", "pair 2"]


def test_bad_pairs_are_all_named():
    pairs = [("ok", "a"), ("", "a"), ("fine", 3), "topics", (7, "a"), (Path("x.png"), "a")]
    with pytest.raises(DatasetError) as info:
        load_dataset(pairs)
    problems = dict(info.value.problems)
    assert list(problems) == ["pair 1", "pair 2", "pair 3", "pair 4", "pair 5"]
    assert "empty" in problems["pair 1"] and "label must be a string" in problems["pair 2"]
    assert "expected an (input, label) pair, got str 'topics'" in problems["pair 3"]
    assert "expected a text (str) or an image" in problems["pair 4"]
    assert "all texts or all images" in problems["pair 5"]
    with pytest.raises(DatasetError, match="empty list"):
        load_dataset([])


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("nope", DatasetError, r"no dataset 'nope': not a built-in name \(digits, digits-words"),
        (12, TypeError, "load_dataset takes a name"),
    ],
)
def test_unknown_specs(spec, error, match):
    with pytest.raises(error, match=match):
        load_dataset(spec)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "d.xlsx").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"must be \.csv or \.jsonl, not '\.xlsx'"):
        load_dataset(tmp_path / "d.xlsx")


# --- the Dataset class and subsets -----------------------------------------------------------


def test_iteration_is_lazy():
    rendered: list[int] = []

    def render(i: int) -> str:
        rendered.append(i)
        return f"text {i}"

    data = Dataset("n", "text", [Example(i, "x", f"#{i}") for i in range(5)], render=render)
    iterator = iter(data)
    assert rendered == []
    assert next(iterator) == Example("text 0", "x", "#0") and rendered == [0]
    assert load_dataset(data) is data


def test_dataset_checks_its_fields():
    with pytest.raises(ValueError, match="modality must be"):
        Dataset("d", "audio", [])
    with pytest.raises(ValueError, match=r"labelled \['b'\], not in its labels"):
        Dataset("d", "text", [Example("t", "b", "#0")], labels=["a"])


def test_limit_takes_a_seeded_class_balanced_subset():
    data = load_dataset("topics")  # 6 labels x 40
    subset = load_dataset("topics", limit=62, seed=1)
    counts = Counter(e.label for e in subset)
    assert len(subset) == 62 and sorted(counts.values()) == [10, 10, 10, 10, 11, 11]
    assert subset.labels == data.labels and "subset of 62, seed 1" in subset.description
    sources = [e.source for e in subset]
    order = {e.source: i for i, e in enumerate(data)}
    assert sources == sorted(sources, key=order.__getitem__)  # original order kept
    assert sources == [e.source for e in load_dataset("topics", limit=62, seed=1)]
    assert sources != [e.source for e in load_dataset("topics", limit=62, seed=2)]
    assert load_dataset(data, limit=1000) is data


def test_limit_on_uneven_classes_fills_from_the_larger_ones():
    pairs = [("rare", "a"), ("rare too", "a")] + [(f"common {i}", "b") for i in range(20)]
    counts = Counter(e.label for e in load_dataset(pairs, limit=10))
    assert counts == {"a": 2, "b": 8}
    tiny = load_dataset(pairs, limit=1)
    assert len(tiny) == 1 and tiny.labels == ["a", "b"]  # a subset poses the same task


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_limit_must_be_a_positive_int(limit):
    with pytest.raises(ValueError, match="limit must be a positive int"):
        load_dataset([("a", "x"), ("b", "y")], limit=limit)
