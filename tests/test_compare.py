"""mmenc.compare (the harness) and the `mmenc zero-shot` / `mmenc compare` commands."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

import mmenc
from mmenc.cli import main
from mmenc.comparison.datasets import load_dataset
from mmenc.zeroshot import ZeroShotClassifier

SHAPE_WORDS = {
    "circle": "a round circle", "cross": "a plus-shaped cross", "hexagon": "a six-sided hexagon",
    "square": "a square box", "star": "a pointed star", "triangle": "a three-sided triangle",
}  # fmt: skip


def _accuracy(model: str, dataset: str, limit: int) -> float:
    """Top-1 computed directly with the classifier, for checking the harness's streaming."""
    data = load_dataset(dataset, limit=limit)
    examples = list(data)
    scores = ZeroShotClassifier(model, data.labels, device="cpu").scores(
        [e.input for e in examples]
    )
    targets = torch.tensor([data.labels.index(e.label) for e in examples])
    return float((scores.argmax(1) == targets).float().mean())


def test_tiny_clip_on_shapes_matches_the_classifier():
    report = mmenc.compare(["tiny-clip"], "shapes", limit=12, batch_size=5, progress=False)
    (run,) = report.runs
    assert (run.model, run.method, run.dataset, run.modality) == (
        "tiny-clip", "similarity", "shapes", "image"
    )  # fmt: skip
    assert run.examples == 12 and run.errors == [] and report.skipped == []
    assert sum(map(sum, run.metrics.confusion)) == 12 and len(run.labels) == 6
    assert run.metrics.top1 == pytest.approx(_accuracy("tiny-clip", "shapes", 12))
    assert run.examples_per_second > 0 and run.load_seconds > 0 and run.peak_memory_mb > 50


def test_minilm_on_topics_is_accurate():
    (run,) = mmenc.compare(["minilm-l6"], "topics", limit=40, progress=False).runs
    assert run.modality == "text" and run.examples == 40
    assert run.metrics.top1 == pytest.approx(_accuracy("minilm-l6", "topics", 40))
    assert run.metrics.top1 >= 0.8  # real weights: topics is an easy set for MiniLM


def test_texts_and_images_share_one_report_and_unfit_models_are_skipped():
    texts = load_dataset([(text, label) for label, text in SHAPE_WORDS.items()])
    shapes = load_dataset("shapes", limit=6)
    report = mmenc.compare(["tiny-clip", "tiny-bert"], [shapes, texts], progress=False)
    ran = [(r.model, r.modality) for r in report.runs]
    assert ran == [("tiny-clip", "image"), ("tiny-clip", "text"), ("tiny-bert", "text")]
    assert all(r.labels == sorted(SHAPE_WORDS) for r in report.runs)
    ((what, why),) = report.skipped
    assert what == "tiny-bert · similarity on shapes" and "cannot classify images" in why
    assert "skipped tiny-bert · similarity on shapes" in report.table()


def test_a_method_the_model_cannot_serve_is_skipped_with_its_reason():
    report = mmenc.compare(
        ["tiny-bert"], "topics", methods=["similarity", "likelihood"], limit=8, progress=False
    )
    assert [r.method for r in report.runs] == ["similarity"]
    ((what, why),) = report.skipped
    assert what.startswith("tiny-bert · likelihood") and "log_likelihood" in why


def test_an_encoder_object_is_used_as_is():
    encoder = mmenc.load("tiny-bert", device="cpu")
    (run,) = mmenc.compare([encoder], "topics", limit=8, progress=False).runs
    assert run.model == encoder.name and run.load_seconds < 1.0


def test_a_broken_image_is_reported_with_its_path_and_the_rest_evaluated(tmp_path, sample_images):
    for label, images in (("cat", sample_images[:2]), ("dog", sample_images[2:4])):
        (tmp_path / label).mkdir()
        for n, image in enumerate(images):
            image.save(tmp_path / label / f"{n}.png")
    broken = tmp_path / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (run,) = mmenc.compare(["tiny-clip"], tmp_path, batch_size=2, progress=False).runs
    assert run.examples == 4 and sum(map(sum, run.metrics.confusion)) == 4
    sources = dict(run.errors)
    assert set(sources) == {str(broken), str(tmp_path / "cat" / "notes.txt")}
    assert "image" in sources[str(broken)]


def test_the_dataset_is_streamed_one_batch_at_a_time(monkeypatch):
    sizes = []
    original = ZeroShotClassifier.scores

    def spy(self, inputs, **kwargs):
        sizes.append(len(inputs))
        return original(self, inputs, **kwargs)

    monkeypatch.setattr(ZeroShotClassifier, "scores", spy)
    mmenc.compare(["tiny-bert"], "topics", limit=10, batch_size=3, progress=False)
    assert sizes == [3, 3, 3, 1]


def test_labels_fix_the_label_set_and_a_row_outside_it_is_named():
    pairs = [("the striker scored", "sports"), ("stocks fell", "business")]
    labels = ["business", "sports", "weather"]
    (run,) = mmenc.compare(["tiny-bert"], pairs, labels=labels, progress=False).runs
    assert run.labels == labels and len(run.metrics.confusion) == 3
    with pytest.raises(ValueError, match=r"pair 1.*'business'.*not in the label set"):
        mmenc.compare(["tiny-bert"], pairs, labels=["sports", "weather"], progress=False)


def test_bad_arguments_fail_before_any_model_loads():
    with pytest.raises(ValueError, match="different label sets"):
        mmenc.compare(["tiny-bert"], ["topics", "shapes"], progress=False)
    with pytest.raises(ValueError, match="unknown zero-shot method 'nope'"):
        mmenc.compare(["tiny-bert"], "topics", methods=["nope"])
    with pytest.raises(ValueError, match="batch_size"):
        mmenc.compare(["tiny-bert"], "topics", batch_size=0)
    with pytest.raises(ValueError, match="at least one model"):
        mmenc.compare([], "topics")
    with pytest.raises(ValueError, match="'no placeholder' has 0 replacement fields"):
        mmenc.compare(["no-such-model"], "topics", templates=["no placeholder"])
    with pytest.raises(ValueError, match="at least two labels"):
        mmenc.compare(["no-such-model"], [("a text", "only")])


def test_progress_bar_only_when_asked(capsys):
    mmenc.compare(["tiny-bert"], "topics", limit=4, progress=True)
    assert "tiny-bert · similarity on topics" in capsys.readouterr().err
    mmenc.compare(["tiny-bert"], "topics", limit=4)  # stderr is not a terminal under pytest
    assert "similarity on topics" not in capsys.readouterr().err


def test_compare_is_exported_lazily():
    import mmenc.comparison.metrics

    assert callable(mmenc.compare) and mmenc.comparison.metrics is not None
    assert list(inspect.signature(mmenc.compare).parameters)[:2] == ["models", "dataset"]
    from mmenc.comparison.report import ComparisonReport

    assert mmenc.ComparisonReport is ComparisonReport
    code = "import mmenc, sys; mmenc.ComparisonReport; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- the command line ------------------------------------------------------------------------


def test_cli_compare_prints_the_table_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["compare", "-d", "topics", "-m", "tiny-bert", "-m", "minilm-l6", "--limit", "8"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| tiny-bert | similarity | topics |" in printed and "| minilm-l6 |" in printed
    for name in ("report.md", "results.csv", "results.json"):
        assert (out / name).is_file()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 4  # accuracy bars, a confusion matrix per run, the recall heat map
    assert f"results.json and 4 PNG plots to {out}/" in printed
    for png in pngs:
        Image.open(png).verify()
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["model"] for r in runs] == ["tiny-bert", "minilm-l6"]


def test_cli_compare_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit, match="--limit must be at least 1"):
        main(["compare", "-d", "topics", "-m", "tiny-bert", "--limit", "0"])
    assert main(["compare", "-d", str(tmp_path / "none.csv"), "-m", "tiny-bert", "-q"]) == 2
    assert "none.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="unknown zero-shot method"):
        main(["compare", "-d", "topics", "-m", "tiny-bert", "--method", "guess"])


def test_cli_zero_shot_images_and_folders(tmp_path, sample_images, capsys):
    (tmp_path / "more").mkdir()
    paths = [tmp_path / "a.png", tmp_path / "more" / "b.png", tmp_path / "more" / "c.jpg"]
    for path, image in zip(paths, sample_images, strict=False):
        image.save(path)
    labels = ["cat", "dog", "car"]
    argv = ["zero-shot", "-m", "tiny-clip", "--labels", "cat, dog,car", str(paths[0])]
    assert main([*argv, str(tmp_path / "more"), "--top-k", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in rows] == list(map(str, paths))
    expected = ZeroShotClassifier("tiny-clip", labels, device="cpu").predict(paths, top_k=2)
    for row, want in zip(rows, expected, strict=True):
        assert [p["label"] for p in row["predictions"]] == [w["label"] for w in want]
        assert [p["score"] for p in row["predictions"]] == pytest.approx(
            [w["score"] for w in want], abs=1e-6
        )
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a.png" and lines[1].split() == ["label", "score"] and len(lines) == 6


def test_cli_zero_shot_texts_with_templates(capsys):
    argv = ["zero-shot", "-m", "minilm-l6", "--labels", "sports,business", "--json"]
    assert main([*argv, "-t", "News about {}.", "-t", "{}", "--text", "the striker scored"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["input"] == "the striker scored"
    assert row["predictions"][0]["label"] == "sports"


def test_cli_zero_shot_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no such file or folder"):
        main(["zero-shot", "-m", "tiny-clip", "--labels", "a,b", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="no image files in the folder"):
        main(["zero-shot", "-m", "tiny-clip", "--labels", "a,b", str(tmp_path)])
    with pytest.raises(SystemExit, match="2"):
        main(["zero-shot", "-m", "tiny-clip", "--labels", "a,b"])
    assert "one of the arguments --text INPUT --input is required" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="repeats label 0"):
        main(["zero-shot", "-m", "tiny-bert", "--labels", "a,a", "--text", "x"])
    with pytest.raises(SystemExit, match=r"\{\}"):
        main(
            ["zero-shot", "-m", "tiny-bert", "--labels", "a,b", "-t", "x", "-t", "y", "--text", "x"]
        )
