"""``mmenc embed`` loses no work: a run stopped at any point resumes with --resume, embeds only
what was not saved, and ends with exactly the file of an uninterrupted run."""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import TEST_DEVICE

import mmenc
from mmenc.cli import main

WORDS = ["the", "cat", "dog", "sat", "on", "a", "mat", "and", "ran", "far", "under", "sky"]


def _texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 20))) for _ in range(count)]


class CountingEncoder:
    """An encoder counting the inputs it embeds, so a test sees what a resume recomputed."""

    def __init__(self, encoder: mmenc.Encoder) -> None:
        self.encoder, self.embedded = encoder, 0

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def encode_text(self, texts, **options):
        self.embedded += len(texts)
        return self.encoder.encode_text(texts, **options)

    def encode_image(self, images, **options):
        self.embedded += len(images)
        return self.encoder.encode_image(images, **options)


@pytest.fixture
def counting(monkeypatch):
    """Every mmenc.load of the test gives one counting tiny-bert (or tiny-clip, by name)."""
    encoders = {name: CountingEncoder(_loaded(name)) for name in ("tiny-bert", "tiny-clip")}
    monkeypatch.setattr(mmenc, "load", lambda name, **kwargs: encoders[name])
    return encoders["tiny-bert"]


@functools.cache
def _loaded(name: str) -> mmenc.Encoder:
    return mmenc.load(name, device=TEST_DEVICE)


def _embed(texts_file, out, *extra: str) -> int:
    args = ["embed", "-m", "tiny-bert", "--texts-file", str(texts_file), "--out", str(out)]
    return main([*args, "--chunk-size", "3", "--batch-size", "2", "--no-progress", *extra])


def _saved(out) -> int:
    manifest = json.loads((out.parent / f"{out.name}.partial" / "manifest.json").read_text())
    return sum(chunk["rows"] for chunk in manifest["chunks"])


class Killed(BaseException):
    """Stands for SIGKILL: no handler of the job catches it, so nothing tidies up."""


class KillSwitch:
    """Counts the fsyncs and renames of a run, each a point where what is on disk changes, and
    kills the run at the one numbered ``kill_at``."""

    def __init__(self, patch: pytest.MonkeyPatch, kill_at: int | None = None) -> None:
        self.calls, self.kill_at = 0, kill_at
        for name in ("fsync", "replace"):
            patch.setattr(os, name, self._counted(getattr(os, name)))

    def _counted(self, call):
        def counted(*args):
            self.calls += 1
            if self.calls == self.kill_at:
                raise Killed
            return call(*args)

        return counted


@pytest.mark.parametrize("suffix", [".npy", ".jsonl"])
def test_a_kill_at_every_write_resumes_to_the_uninterrupted_file(
    tmp_path, monkeypatch, counting, suffix
):
    """Kill the run at each of its fsyncs and renames, resume, and compare with an
    uninterrupted run byte for byte; the resume embeds exactly the rows not yet recorded."""
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(_texts(10)) + "\n", encoding="utf-8")
    expected = tmp_path / f"expected{suffix}"
    with monkeypatch.context() as patch:
        switch = KillSwitch(patch)
        assert _embed(texts, expected) == 0
    # the empty manifest (fsync, rename); four chunks (rows fsync, manifest fsync, rename); the
    # finished file (fsync, rename)
    assert switch.calls == 2 + 4 * 3 + 2
    for kill_at in range(1, switch.calls + 1):
        out = tmp_path / f"out{kill_at}{suffix}"
        with monkeypatch.context() as patch, pytest.raises(Killed):
            KillSwitch(patch, kill_at)
            _embed(texts, out)
        assert not out.exists()  # never a half-written file under the final name
        saved = _saved(out) if (tmp_path / f"{out.name}.partial" / "manifest.json").exists() else 0
        counting.embedded = 0
        assert _embed(texts, out, "--resume") == 0
        assert counting.embedded == 10 - saved, f"killed at step {kill_at}"
        assert out.read_bytes() == expected.read_bytes(), f"killed at step {kill_at}"
        assert not (tmp_path / f"{out.name}.partial").exists()


def test_refuses_to_start_over_saved_rows_and_to_resume_with_other_settings(
    tmp_path, counting, capsys
):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(_texts(9)) + "\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    _stop_after_two_chunks(texts, out)
    with pytest.raises(SystemExit, match=r"left 6 rows in .*e\.npy\.partial; run .* --resume"):
        _embed(texts, out)
    with pytest.raises(SystemExit, match=r"batch_size=2 then, 4 now.*delete"):
        _embed(texts, out, "--resume", "--batch-size", "4")
    assert _saved(out) == 6  # a refused resume keeps what was saved
    assert _embed(texts, out, "--resume") == 0
    assert "(6 reused from the interrupted run)" in capsys.readouterr().err


def _stop_after_two_chunks(texts, out) -> None:
    """A run stopped by Ctrl-C in its third chunk, leaving two recorded chunks."""
    encoder = mmenc.load("tiny-bert")
    real = encoder.encode_text

    def failing(texts, **options):
        if encoder.embedded >= 6:
            raise KeyboardInterrupt
        return real(texts, **options)

    encoder.encode_text = failing
    try:
        with pytest.raises(SystemExit) as stopped:
            _embed(texts, out)
        assert stopped.value.code == 130
    finally:
        del encoder.encode_text


def test_a_bad_input_stops_the_run_and_the_fixed_input_resumes_from_its_chunk(
    tmp_path, counting, sample_images, capsys
):
    """The flow the error message suggests: a broken file in chunk 3 stops the run with the rows
    before it saved; removing it and resuming embeds only from that chunk on, and the file
    equals a clean run over the fixed list, its .npy header counting the rows it has."""
    paths = []
    for n, image in enumerate(sample_images * 2):
        paths.append(str(tmp_path / f"img{n}.png"))
        image.save(paths[-1])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    clip = mmenc.load("tiny-clip")
    out, clean = tmp_path / "e.npy", tmp_path / "clean.npy"
    args = ["embed", "-m", "tiny-clip", "--chunk-size", "2", "--no-progress", "--out"]
    assert main([*args, str(out), *paths[:5], str(broken), *paths[5:]]) == 2
    error = capsys.readouterr().err
    assert "item 5:" in error and "4 rows are saved" in error and "--resume" in error
    clip.embedded = 0
    assert main([*args, str(out), *paths, "--resume"]) == 0
    assert clip.embedded == 8 - 4
    assert main([*args, str(clean), *paths]) == 0
    assert out.read_bytes() == clean.read_bytes()
    assert np.load(out).shape == (8, 16)


def test_a_second_run_on_the_same_output_is_refused(tmp_path, counting):
    import fcntl

    texts = tmp_path / "texts.txt"
    texts.write_text("a\nb\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    folder = tmp_path / "e.npy.partial"
    folder.mkdir()
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with pytest.raises(SystemExit, match="another mmenc embed is writing"):
            _embed(texts, out)
    assert _embed(texts, out) == 0 and not folder.exists()


def test_resume_with_nothing_saved_starts_from_the_first_input(tmp_path, counting, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("a\nb\n", encoding="utf-8")
    assert _embed(texts, tmp_path / "e.jsonl", "--resume") == 0
    assert counting.embedded == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGINT], ids=["KILL", "INT"])
def test_a_real_signal_mid_run(tmp_path, signal_number):
    """The real thing, in a child process: stop it once it has recorded a few chunks, resume,
    and compare with an uninterrupted run."""
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(_texts(400, seed=1)) + "\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    command = [sys.executable, "-m", "mmenc.cli", "embed", "-m", "tiny-bert", "--no-progress"]
    command += ["--device", TEST_DEVICE]
    command += ["--texts-file", str(texts), "--out", str(out), "--chunk-size", "10"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "e.npy.partial" / "manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if manifest.is_file() and len(json.loads(manifest.read_text())["chunks"]) >= 3:
            break
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be stopped"
    child.send_signal(signal_number)
    _, stderr = child.communicate(timeout=60)
    assert not out.exists()
    saved = _saved(out)
    assert 3 * 10 <= saved < 400
    if signal_number == signal.SIGINT:
        assert child.returncode == 130
        assert f"{saved:,} rows are saved" in stderr and "--resume" in stderr
    assert main([*command[3:], "--resume"]) == 0
    expected = tmp_path / "expected.npy"
    assert main([*command[3:-4], "--out", str(expected), "--chunk-size", "10"]) == 0
    assert out.read_bytes() == expected.read_bytes()


def test_a_texts_file_that_changes_while_it_is_read_is_reported(tmp_path, monkeypatch, capsys):
    """The file is counted, then read again to embed: the output holds what was read."""
    import mmenc.cli

    monkeypatch.setattr(mmenc.cli, "_embed_inputs", lambda args: (3, iter(["a cat", "a dog"])))
    texts, out = tmp_path / "texts.txt", tmp_path / "e.npy"
    texts.write_text("a cat\na dog\n", encoding="utf-8")
    assert _embed(texts, out) == 0
    assert "changed while it was read: 3 lines when counted, 2 when embedded" in (
        capsys.readouterr().err
    )
    assert np.load(out).shape == (2, 32)
