"""``mmenc.integrations.ray`` and ``mmenc embed|zero-shot --engine ray`` on one local Ray
instance with 2 CPUs: the same numbers as one process, one encoder load per actor, bad rows
that finish with a reason, and a Parquet round trip."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip(
    "ray", reason="install mmenc[ray] (pip install 'mmenc[ray]') for the Ray tests"
)
pytest.importorskip(
    "ray.data", reason="install mmenc[ray] (pip install 'mmenc[ray]') for the Ray tests"
)
pq = pytest.importorskip("pyarrow.parquet", reason="Ray Data brings pyarrow")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")  # Ray's own

import mmenc  # noqa: E402
from mmenc.cli import main  # noqa: E402
from mmenc.integrations import ray as mmenc_ray  # noqa: E402

TEXTS = [
    "a photo of a cat",
    "the market fell sharply this morning",
    "a much longer sentence about a dog that runs across a green field in the morning sun " * 3,
    "zebra",
    "Ünïcödé text with accents and 漢字",
    "the team won the final match 2-1",
    "rain again",
    "an old train station by the river",
] * 3


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module: 2 CPUs, no dashboard, no progress bars. Its
    workers inherit this process's environment (offline, the test caches)."""
    mmenc.load("tiny-bert", device="cpu"), mmenc.load("tiny-clip", device="cpu")  # built once
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def _vectors(rows: list[dict], column: str = "embedding") -> np.ndarray:
    return np.array([row[column] for row in rows], dtype=np.float32)


def test_embed_texts_equal_one_process_in_order_and_load_once_per_actor():
    items = [{"id": i, "text": text} for i, text in enumerate(TEXTS)]
    dataset = ray.data.from_items(items, override_num_blocks=6)
    result = mmenc_ray.embed(
        dataset,
        "tiny-bert",
        column="text",
        batch_size=4,
        rows_per_call=4,
        concurrency=2,
        preserve_order=True,
        worker_column="worker",
    )
    rows = result.take_all()
    assert [row["id"] for row in rows] == list(range(len(TEXTS)))
    assert all(row["error"] is None for row in rows)
    expected = mmenc.load("tiny-bert", device="cpu").encode_text(TEXTS).numpy()
    assert np.abs(_vectors(rows) - expected).max() <= 1e-5
    # 6 calls over at most 2 actors: a load per call would count past 1 in some process
    workers = {row["worker"] for row in rows}
    assert 1 <= len(workers) <= 2 and all(worker.endswith("#1") for worker in workers), workers
    assert not ray.data.DataContext.get_current().execution_options.preserve_order


def test_image_folder_with_a_broken_file_finishes_with_its_reason(tmp_path, sample_images):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n, image in enumerate(sample_images):
        image.save(folder / f"img{n}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("not read: not an image file")
    rows = mmenc_ray.embed(folder, "tiny-clip", batch_size=2).take_all()
    assert sorted(Path(row["path"]).name for row in rows) == sorted(
        ["broken.png", *(f"img{n}.png" for n in range(len(sample_images)))]
    )
    assert all("bytes" not in row for row in rows)  # the path names each row
    bad = [row for row in rows if row["error"] is not None]
    assert [Path(row["path"]).name for row in bad] == ["broken.png"]
    assert bad[0]["embedding"] is None and "not a recognised image format" in bad[0]["error"]
    good = sorted((row for row in rows if row["error"] is None), key=lambda row: row["path"])
    clip = mmenc.load("tiny-clip", device="cpu")
    expected = clip.encode_image([Path(row["path"]) for row in good]).numpy()
    assert np.abs(_vectors(good) - expected).max() <= 1e-5


def test_classify_matches_the_classifier_with_null_rows_for_bad_texts():
    from mmenc.zeroshot import ZeroShotClassifier

    labels = ["animals", "finance", "sports", "travel"]
    texts = [*TEXTS[:8], None, "", "  "]
    dataset = ray.data.from_items([{"text": text} for text in texts])
    summary_source = mmenc_ray.classify(
        dataset, "minilm-l6", labels, batch_size=4, concurrency=1, preserve_order=True
    ).materialize()
    rows = summary_source.take_all()
    expected = ZeroShotClassifier("minilm-l6", labels, device="cpu").predict(TEXTS[:8])
    for row, (best,) in zip(rows[:8], expected, strict=True):
        assert row["error"] is None and row["label"] == best["label"]
        assert abs(row["score"] - best["score"]) <= 1e-5
    assert [row["label"] for row in rows[8:]] == [None] * 3
    assert [row["score"] for row in rows[8:]] == [None] * 3
    assert "expected a str, got NoneType" in rows[8]["error"]
    assert all("empty" in row["error"] for row in rows[9:])
    summary = mmenc_ray.summarize(summary_source)
    assert (summary.rows, summary.bad) == (len(texts), 3)
    assert len(summary.reasons) == 2  # None, and the blank texts' one reason


def test_cli_parquet_round_trip_with_bad_rows(tmp_path, capsys):
    import pyarrow as pa

    texts = [*TEXTS[:6], None, TEXTS[6]]
    source = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"id": list(range(len(texts))), "caption": texts}), source)
    out = tmp_path / "embeddings.parquet"
    args = ["embed", "--engine", "ray", "-m", "tiny-bert", "--input", str(source)]
    options = ["--column", "caption", "--concurrency", "2", "--batch-size", "3"]
    assert main([*args, "--out", str(out), *options, "--preserve-order", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"wrote {len(texts)} rows" in err and "1 bad rows" in err and "NoneType" in err
    table = pq.read_table(out)  # any Parquet reader, not only Ray's
    assert table.column("id").to_pylist() == list(range(len(texts)))
    errors = table.column("error").to_pylist()
    assert [i for i, why in enumerate(errors) if why] == [6]
    vectors = table.column("embedding").to_pylist()
    assert vectors[6] is None
    good = [i for i in range(len(texts)) if i != 6]
    expected = mmenc.load("tiny-bert", device="cpu").encode_text([texts[i] for i in good])
    written = np.array([vectors[i] for i in good], dtype=np.float32)
    assert written.dtype == np.float32 and np.abs(written - expected.numpy()).max() <= 1e-5
    again = sorted(ray.data.read_parquet(str(out)).take_all(), key=lambda row: row["id"])
    assert np.array_equal(_vectors([again[i] for i in good]), written)  # and back through Ray


def test_cli_zero_shot_on_ray_writes_label_and_score(tmp_path, sample_images, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n, image in enumerate(sample_images):
        image.save(folder / f"img{n}.png")
    (folder / "cut.png").write_bytes((folder / "img0.png").read_bytes()[:60])
    out = tmp_path / "labels.parquet"
    args = ["zero-shot", "--engine", "ray", "-m", "tiny-clip", "--labels", "cat,dog,car"]
    assert main([*args, "--input", str(folder), "--out", str(out), "--no-progress"]) == 0
    assert "1 bad rows" in capsys.readouterr().err
    rows = sorted(pq.read_table(out).to_pylist(), key=lambda row: row["path"])
    by_name = {Path(row["path"]).name: row for row in rows}
    assert by_name["cut.png"]["label"] is None and by_name["cut.png"]["error"]
    from mmenc.zeroshot import ZeroShotClassifier

    files = [folder / f"img{n}.png" for n in range(len(sample_images))]
    expected = ZeroShotClassifier("tiny-clip", ["cat", "dog", "car"], device="cpu").scores(files)
    for path, scores in zip(files, expected, strict=True):
        row = by_name[path.name]
        assert row["error"] is None and abs(row["score"] - float(scores.max())) <= 1e-5


def test_cli_engine_option_errors(tmp_path, capsys):
    source = tmp_path / "t.csv"
    source.write_text("text\nhello\n")
    out = str(tmp_path / "e.parquet")
    with pytest.raises(SystemExit, match="--input is for --engine ray"):
        main(["embed", "-m", "tiny-bert", "--input", str(source), "--out", out])
    with pytest.raises(SystemExit, match="reads --input PATH"):
        main(["embed", "--engine", "ray", "-m", "tiny-bert", "--text", "a", "--out", out])
    with pytest.raises(SystemExit, match=r"writes --out DIR\.parquet"):
        args = ["embed", "--engine", "ray", "-m", "tiny-bert", "--input", str(source)]
        main([*args, "--out", str(tmp_path / "e.npy")])
    with pytest.raises(SystemExit, match="no column 'caption'"):
        main([*args, "--out", out, "--column", "caption", "--no-progress"])
    # an error on the actors (an unknown model) arrives as mmenc's own one-line error
    other = str(tmp_path / "other.parquet")
    assert main([*args, "--out", other, "--no-progress", "-m", "minilm-l7"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after what Ray logs of it
    assert last.startswith("mmenc: error: unknown encoder 'minilm-l7'. Did you mean: minilm-l6")
