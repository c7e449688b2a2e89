"""ComparisonReport from hand-built RunResults: table, CSV, JSON, plots and save."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmenc.comparison.metrics import compute_metrics
from mmenc.comparison.report import ComparisonReport, RunResult, run_names

SHAPES = ["circle", "square", "triangle", "star", "hexagon"]


def make_run(model, labels, *, dataset="shapes", modality="image", method="similarity",
             skill=0.5, n=60, seed=0, errors=(), missing=None) -> RunResult:  # fmt: skip
    """A run whose scores favour the truth by ``skill``; label index ``missing`` gets no
    examples (so its recall is NaN)."""
    rng = np.random.default_rng(seed)
    k = len(labels)
    truth = rng.integers(0, k, n)
    if missing is not None:
        truth[truth == missing] = (missing + 1) % k
    scores = rng.random((n, k))
    scores[np.arange(n), truth] += skill
    return RunResult(
        model=model, method=method, dataset=dataset, modality=modality, labels=list(labels),
        metrics=compute_metrics(scores, truth.tolist(), k), examples=n,
        examples_per_second=250.0 + seed, load_seconds=1.25, peak_memory_mb=512.0,
        errors=list(errors),
    )  # fmt: skip


@pytest.fixture
def report() -> ComparisonReport:
    return ComparisonReport(
        runs=[
            make_run("tiny-clip", SHAPES, skill=0.1, errors=[("/data/bad.png", "cannot open")]),
            make_run("hf:org/model|v2", SHAPES, skill=0.9, seed=1, missing=4),
            make_run("minilm-l6", SHAPES[:3], dataset="topics", modality="text", seed=2),
        ],
        skipped=[("minilm-l6 · similarity on shapes", "minilm-l6 has no image tower")],
    )


def test_table_has_one_row_per_run_and_notes(report):
    table = report.table()
    lines = table.splitlines()
    assert lines[0].startswith("| model | method | dataset | modality | examples | top-1 |")
    assert set(lines[1]) <= set("|-: ")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 3
    top1 = report.runs[0].metrics.top1
    assert f"| {100 * top1:.1f}% |" in rows[0] and "| 250.0 | 1.25 | 512 | 1 |" in rows[0]
    assert "hf:org/model\\|v2" in rows[1]  # a "|" in a name does not break the table
    assert "top-5 with fewer than 5 labels counts every label" in table
    assert "skipped minilm-l6 · similarity on shapes: minilm-l6 has no image tower" in table
    assert str(report) == table


def test_undefined_numbers_show_as_n_a():
    run = make_run("m", SHAPES)
    run.examples_per_second = math.nan
    run.metrics = compute_metrics(np.zeros((0, 5)), [], 5)
    row = ComparisonReport([run]).table().splitlines()[2]
    assert row.count("n/a") == 5


def test_csv_round_trip(report, tmp_path):
    path = tmp_path / "results.csv"
    text = report.to_csv(path)
    assert path.read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["model"] for row in rows] == [run.model for run in report.runs]
    for row, run in zip(rows, report.runs, strict=True):
        m = run.metrics
        assert float(row["top1"]) == m.top1 and float(row["macro_f1"]) == m.macro_f1
        assert float(row["mean_recall"]) == m.mean_recall and float(row["top5"]) == m.top5
        assert int(row["examples"]) == run.examples and int(row["errors"]) == len(run.errors)
        assert int(row["num_labels"]) == len(run.labels)
        assert float(row["examples_per_second"]) == run.examples_per_second
    assert float(rows[0]["recall:star"]) == report.runs[0].metrics.per_class_recall[3]
    assert rows[1]["recall:hexagon"] == ""  # no examples: NaN is an empty cell
    assert rows[2]["recall:star"] == ""  # not one of this run's labels


def test_json_round_trip_keeps_everything(report, tmp_path):
    path = tmp_path / "results.json"
    text = report.to_json(path)
    assert path.read_text() == text
    data = json.loads(text)
    assert data["runs"][0]["metrics"]["confusion"] == report.runs[0].metrics.confusion
    assert data["runs"][0]["errors"] == [{"source": "/data/bad.png", "error": "cannot open"}]
    assert data["runs"][1]["metrics"]["per_class_recall"][4] is None
    assert data["skipped"][0]["reason"] == "minilm-l6 has no image tower"
    back = ComparisonReport.from_json(text)
    assert back.to_json() == text
    assert back.runs[0] == report.runs[0]
    assert back.skipped == report.skipped
    assert math.isnan(back.runs[1].metrics.per_class_recall[4])


def test_from_json_refuses_other_files():
    with pytest.raises(ValueError, match="not an mmenc comparison report"):
        ComparisonReport.from_json('{"runs": []}')


def test_json_writes_a_confusion_row_per_line():
    text = ComparisonReport([make_run("m", SHAPES)]).to_json()
    assert text.count("\n") < 60
    assert json.loads(text)["runs"][0]["labels"] == SHAPES


def test_plots_are_pngs_made_without_pyplot(report, tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    paths = report.plot(tmp_path / "plots")
    names = [path.name for path in paths]
    assert names[:2] == ["accuracy.png", "per_class_recall.png"]
    assert names[2:] == [
        "confusion-01-tiny-clip-on-shapes.png",
        "confusion-02-hf-org-model-v2-on-shapes.png",
        "confusion-03-minilm-l6-on-topics.png",
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 500 and image.height >= 300
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()


def test_many_runs_and_labels_still_plot(tmp_path):
    labels = [f"class {i}" for i in range(35)]
    runs = [make_run(f"model-{i}", labels, n=70, seed=i) for i in range(7)]
    paths = ComparisonReport(runs).plot(tmp_path)
    assert len(paths) == 2 + 7
    with Image.open(paths[1]) as heatmap:
        assert heatmap.width > heatmap.height


def test_save_writes_every_file(report, tmp_path):
    files = report.save(tmp_path / "out")
    assert {"report.md", "results.csv", "results.json", "accuracy.png"} <= set(files)
    assert len(files) == 3 + 2 + 3
    assert all(path.is_file() and path.parent == tmp_path / "out" for path in files.values())
    markdown = files["report.md"].read_text()
    assert report.table() in markdown
    assert "![accuracy](accuracy.png)" in markdown
    assert "`/data/bad.png`: cannot open" in markdown
    assert "## Metrics" in markdown
    assert ComparisonReport.from_json(files["results.json"].read_text()).to_csv() == (
        files["results.csv"].read_text()
    )


def test_an_empty_report_saves_without_plots(tmp_path):
    report = ComparisonReport([], skipped=[("m on shapes", "no image tower")])
    assert report.plot(tmp_path) == []
    files = report.save(tmp_path)
    assert set(files) == {"report.md", "results.csv", "results.json"}
    assert "no image tower" in files["report.md"].read_text()


def test_run_names_say_what_differs():
    a = make_run("clip", SHAPES)
    b = make_run("clip", SHAPES, method="itm")
    c = make_run("clip", SHAPES, dataset="digits")
    assert run_names([a, a]) == ["clip #1", "clip #2"]
    assert run_names([a, b]) == ["clip · similarity", "clip · itm"]
    assert run_names([a, c]) == ["clip on shapes", "clip on digits"]


def test_labels_must_match_the_confusion_matrix():
    run = make_run("m", SHAPES)
    with pytest.raises(ValueError, match="5 labels but a 3-row confusion matrix"):
        RunResult(**{**vars(run), "metrics": make_run("m", SHAPES[:3]).metrics})


def test_importing_the_report_loads_neither_matplotlib_nor_torch():
    code = (
        "import sys, mmenc.comparison.report; "
        "print(sorted({'matplotlib', 'torch'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr
