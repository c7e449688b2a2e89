"""Hostile input: one generated corpus of broken, odd and extreme items through real encoders.

Every case sits in a batch between two valid items and is encoded twice, with
``on_error="raise"`` and ``on_error="nan"``. The contract: the item encodes (a finite row) or
``InvalidInputError`` names exactly its index with a reason; with "nan" the valid neighbours
equal encoding them alone; no other exception type escapes; and each case is bounded in time,
by a measured bound that is asserted (``CASE_SECONDS``) and by pytest-timeout as the hard stop
for a hang (``CASE_TIMEOUT``). The corpus is generated here, seeded: nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import re
import struct
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TEST_DEVICE
from PIL import Image

import mmenc
from mmenc.inputs import MAX_ASPECT_RATIO, decode_image

CASE_SECONDS = 10.0  # asserted: one case, encoded with both on_error modes
CASE_TIMEOUT = 20  # pytest-timeout's hard stop, were a case to hang
MAX_PIXELS = 1_000_000  # MMENC_MAX_IMAGE_PIXELS here, so that over-limit images stay cheap
MEGABYTE = 1_000_000

# centre-crop HF processor, squash-resize HF processor, LiT's own PIL crop into a timm tower
IMAGE_ENCODERS = ("tiny-clip", "tiny-vit", "lit-demo")
TEXT_ENCODERS = ("tiny-clip", "tiny-bert")  # byte-level BPE, WordPiece
TEXT_NEIGHBOURS = ("a photo of a cat", "zebra crossing at night")


@dataclass(frozen=True)
class Case:
    """One hostile item: ``make(folder)`` builds it (files go in ``folder``); ``rejected`` is
    the pattern its cause must match, or None when it must encode."""

    name: str
    make: Callable[[Path], Any]
    rejected: str | None = None

    def __str__(self) -> str:
        return self.name


# -- building the corpus ------------------------------------------------------------------


def _photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _strip(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(width + height).integers(0, 256, (height, width, 3), np.uint8)


def _encoded(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _truncated(fmt: str) -> bytes:
    data = _encoded(_photo(), fmt)
    return data[: len(data) // 2]


def _png_header(width: int, height: int) -> bytes:
    """A PNG holding only its header: it claims ``width`` x ``height`` pixels and has none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _animated_frames() -> list[Image.Image]:
    """Two different palette frames sharing one palette, so GIF stores them losslessly."""
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, 768, dtype=np.uint8).tobytes()
    frames = []
    for _ in range(2):
        frame = Image.fromarray(rng.integers(0, 16, (48, 64), dtype=np.uint8), "P")
        frame.putpalette(palette)
        frames.append(frame)
    return frames


def _animated_gif() -> bytes:
    first, *rest = _animated_frames()
    return _encoded(first, "GIF", save_all=True, append_images=rest, duration=50, loop=0)


def _sixteen_bit() -> Image.Image:
    return Image.fromarray(np.linspace(0, 65535, 48 * 64).astype(np.uint16).reshape(48, 64))


def _float(with_nan: bool = False) -> Image.Image:
    values = np.linspace(0, 1, 48 * 64, dtype=np.float32).reshape(48, 64)
    if with_nan:
        values[::3, ::5] = np.nan  # float images mark missing data with NaN
    return Image.fromarray(values)


def _palette_with_transparency() -> Image.Image:
    image = _photo().convert("P")
    image.info["transparency"] = 0
    return image


def _corrupt_exif_jpeg() -> bytes:
    """A rotated JPEG whose EXIF re-types the text Make tag as Predictor (a SHORT): PIL reads
    it, but ``ImageOps.exif_transpose`` raised struct.error writing it back."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    exif[0x010F] = "Maker"
    raw = exif.tobytes().replace(b"\x01\x0f\x00\x02", b"\x01\x3d\x00\x02")
    return _encoded(_photo(), "JPEG", exif=raw)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _as_file_and_bytes(name: str, data: Callable[[], bytes], rejected: str | None = None):
    """The same encoded data twice: as a file on disk and as bytes in memory."""
    return [
        Case(f"{name}-file", lambda folder: _write(folder / name, data()), rejected),
        Case(f"{name}-bytes", lambda folder: data(), rejected),
    ]


def _closed_lazy_image(folder: Path) -> Image.Image:
    path = _write(folder / "lazy.png", _encoded(_photo(), "PNG"))
    with Image.open(path) as image:
        pass  # never loaded: its pixels are still in the file the with block closed
    return image


def _named_pipe(folder: Path) -> Path:
    """Reading a pipe with no writer blocks forever: a path to one must be refused unread."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    path = folder / "pipe.png"
    if not path.exists():
        os.mkfifo(path)
    return path


def _unreadable_file(folder: Path) -> Path:
    """A regular file whose read fails (EIO), whoever runs the test, root included."""
    path = Path("/proc/self/mem")
    if not path.is_file():
        pytest.skip("no /proc/self/mem here")
    return path


ENCODED_CASES = [
    *_as_file_and_bytes(
        "random-bytes", lambda: np.random.default_rng(0).bytes(2048), "not a recognised image"
    ),
    *_as_file_and_bytes("zero-bytes", lambda: b"", "not a recognised image"),
    *_as_file_and_bytes("truncated-jpeg", lambda: _truncated("JPEG"), "(?i)truncated"),
    *_as_file_and_bytes("truncated-png", lambda: _truncated("PNG"), "truncated"),
    *_as_file_and_bytes("truncated-gif", lambda: _truncated("GIF"), "truncated"),
    *_as_file_and_bytes("truncated-webp", lambda: _truncated("WEBP"), "cannot read .* image"),
    *_as_file_and_bytes("header-only-png-over-limit", lambda: _png_header(2000, 2000), "limit"),
    *_as_file_and_bytes("header-only-png-10g-pixels", lambda: _png_header(10**5, 10**5), "bomb"),
    *_as_file_and_bytes("1x100000-png", lambda: _encoded(Image.fromarray(_strip(1, 10**5)), "PNG")),
    *_as_file_and_bytes("100000x1-png", lambda: _encoded(Image.fromarray(_strip(10**5, 1)), "PNG")),
    *_as_file_and_bytes("animated-gif", _animated_gif),
    *_as_file_and_bytes("16-bit-tiff", lambda: _encoded(_sixteen_bit(), "TIFF")),
    *_as_file_and_bytes("float-tiff", lambda: _encoded(_float(), "TIFF")),
    *_as_file_and_bytes("float-tiff-with-nan", lambda: _encoded(_float(with_nan=True), "TIFF")),
    *_as_file_and_bytes("cmyk-jpeg", lambda: _encoded(_photo().convert("CMYK"), "JPEG")),
    *_as_file_and_bytes(
        "palette-png-transparent", lambda: _encoded(_photo().convert("P"), "PNG", transparency=0)
    ),
    *_as_file_and_bytes("la-png", lambda: _encoded(_photo().convert("LA"), "PNG")),
    *_as_file_and_bytes("rgba-png", lambda: _encoded(_photo().convert("RGBA"), "PNG")),
    *_as_file_and_bytes("corrupt-exif-jpeg", _corrupt_exif_jpeg),
]
IN_MEMORY_CASES = [
    Case("zero-size-pil", lambda _: Image.new("RGB", (0, 5)), "zero size"),
    Case("zero-size-array", lambda _: np.zeros((0, 0, 3), np.uint8), "zero size"),
    Case("over-limit-pil", lambda _: Image.new("L", (1001, 1000)), "over the limit"),
    Case("1x100000-pil", lambda _: Image.fromarray(_strip(1, 10**5))),
    Case("1x100000-array", lambda _: _strip(1, 10**5)),
    Case("100000x1-array", lambda _: _strip(10**5, 1)),
    Case("16-bit-pil", lambda _: _sixteen_bit()),
    Case("float-pil-with-nan", lambda _: _float(with_nan=True)),
    Case("cmyk-pil", lambda _: _photo().convert("CMYK")),
    Case("palette-pil-transparent", lambda _: _palette_with_transparency()),
    Case("la-pil", lambda _: _photo().convert("LA")),
    Case("rgba-array", lambda _: np.asarray(_photo().convert("RGBA"))),
    Case("float-array", lambda _: np.zeros((8, 8, 3), np.float32), "must be uint8"),
    Case("two-channel-array", lambda _: np.zeros((8, 8, 2), np.uint8), "HxW or HxWxC"),
    Case("closed-lazy-pil", _closed_lazy_image, "closed before its pixels were read"),
    Case("not-an-image", lambda _: None, "expected a PIL image"),
]
PATH_CASES = [
    Case("missing-file", lambda folder: folder / "missing.png", "file not found"),
    Case("folder", lambda folder: folder, "not a regular file"),
    Case("named-pipe", _named_pipe, "not a regular file"),
    Case("path-too-long", lambda folder: str(folder / ("x" * 5000)), "cannot read file"),
    Case("unreadable-file", _unreadable_file, "cannot read file"),
]
IMAGE_CASES = ENCODED_CASES + IN_MEMORY_CASES + PATH_CASES

ZALGO = "".join(c + "\u0301\u0316\u0334\u0352\u0363" * 4 for c in "zalgo text")
TEXT_CASES = [
    Case("nul-characters", lambda _: "a\x00b\x00\x00c"),
    Case("lone-high-surrogate", lambda _: "broken \ud800 text", "lone surrogate"),
    Case("lone-low-surrogate", lambda _: "\udfff", "lone surrogate"),
    Case("1mb-of-words", lambda _: ("the quick brown fox " * (MEGABYTE // 20))[:MEGABYTE]),
    Case("1mb-without-whitespace", lambda _: np.random.default_rng(0).bytes(MEGABYTE // 2).hex()),
    Case("right-to-left", lambda _: "مرحبا بالعالم שלום עולם \u202eabc\u202c"),
    Case("combining-characters", lambda _: "e\u0301" * 2000),
    Case("zalgo", lambda _: ZALGO),
    Case("emoji-zwj-sequences", lambda _: "👩‍👩‍👧‍👦 👨🏽‍💻 🏳️‍🌈 🧑‍🤝‍🧑" * 50),
    Case("empty", lambda _: ""),
    Case("whitespace-only", lambda _: " \t\n\u3000\u00a0"),
    Case("control-characters", lambda _: "".join(map(chr, range(32))) + "\x7f"),
    Case("noncharacters-and-private-use", lambda _: "\ufeff\uffff\ufdd0\U0010ffff\ue000"),
    Case("not-a-str", lambda _: b"bytes, not text", "expected a str"),
]


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def small_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMENC_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


class _Encoders(dict):
    """Each encoder loaded once for the module, on first use: before any case's time is taken,
    and only those the selected tests need."""

    def __missing__(self, name: str) -> Any:
        self[name] = mmenc.load(name, device=TEST_DEVICE)
        return self[name]


@pytest.fixture(scope="module")
def encoders() -> dict[str, Any]:
    return _Encoders()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def _image_neighbours() -> list[Image.Image]:
    return [_photo(40, 30, seed=1), _photo(50, 70, seed=2)]


# -- the contract -------------------------------------------------------------------------


def _assert_contract(encode: Callable[..., torch.Tensor], item: Any, case: Case, good: list):
    """``item`` between ``good[0]`` and ``good[1]``: it encodes or is named, in both modes."""
    alone = encode(good)
    batch = [good[0], item, good[1]]
    started = time.perf_counter()
    row = _row_when_raising(encode, batch, case, alone)
    kept = encode(batch, on_error="nan")
    elapsed = time.perf_counter() - started
    assert torch.allclose(kept[[0, 2]], alone, atol=1e-5), "a valid neighbour changed"
    if row is None:
        assert torch.isnan(kept[1]).all()
    else:
        assert torch.allclose(kept[1], row, atol=1e-5)
    assert elapsed < CASE_SECONDS, f"{case} took {elapsed:.1f} s"


def _row_when_raising(
    encode: Callable[..., torch.Tensor], batch: list, case: Case, alone: torch.Tensor
) -> torch.Tensor | None:
    """The item's finite row with ``on_error="raise"``, or None once the error named it."""
    if case.rejected is not None:
        with pytest.raises(mmenc.InvalidInputError) as caught:
            encode(batch)
        assert [index for index, _ in caught.value.problems] == [1]
        assert re.search(case.rejected, caught.value.cause), caught.value.cause
        return None
    out = encode(batch)
    assert torch.isfinite(out).all(), f"{case} gave a non-finite row"
    assert torch.allclose(out[[0, 2]], alone, atol=1e-5)
    return out[1]


@pytest.mark.timeout(CASE_TIMEOUT, func_only=True)
@pytest.mark.parametrize("name", IMAGE_ENCODERS)
@pytest.mark.parametrize("case", IMAGE_CASES, ids=str)
def test_hostile_image_encodes_or_is_named(case, name, encoders, corpus_dir):
    item = case.make(corpus_dir)
    _assert_contract(encoders[name].encode_image, item, case, _image_neighbours())


@pytest.mark.timeout(CASE_TIMEOUT, func_only=True)
@pytest.mark.parametrize("name", TEXT_ENCODERS)
@pytest.mark.parametrize("case", TEXT_CASES, ids=str)
def test_hostile_text_encodes_or_is_named(case, name, encoders, corpus_dir):
    item = case.make(corpus_dir)
    _assert_contract(encoders[name].encode_text, item, case, list(TEXT_NEIGHBOURS))


def test_corpus_size_is_the_documented_one():
    """docs/reliability.md quotes these figures ("N cases x M encoders"); names are unique."""
    assert len(IMAGE_CASES) == 59 and len(TEXT_CASES) == 14
    assert len(IMAGE_ENCODERS) == 3 and len(TEXT_ENCODERS) == 2
    names = {case.name for case in IMAGE_CASES + TEXT_CASES}
    assert len(names) == len(IMAGE_CASES) + len(TEXT_CASES)


# -- what the corpus cannot say on its own ------------------------------------------------


@pytest.mark.parametrize("name", IMAGE_ENCODERS)
def test_animated_gif_encodes_as_its_first_frame(name, encoders):
    first, second = (frame.convert("RGB") for frame in _animated_frames())
    out = encoders[name].encode_image([_animated_gif(), first, second])
    assert torch.allclose(out[0], out[1], atol=1e-6)
    assert not torch.allclose(out[0], out[2], atol=1e-3)


def test_corrupt_exif_is_ignored_but_a_readable_orientation_still_applies():
    decoded = decode_image(_corrupt_exif_jpeg())
    assert decoded.size == (48, 64)  # stored 64x48, turned upright by orientation 6


def test_nan_pixels_of_float_images_read_as_black_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = np.asarray(decode_image(_float(with_nan=True)))
    assert decoded[0, 0].tolist() == [0, 0, 0] and decoded.max() == 255


# -- extreme aspect ratios ----------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 64), (64, 1), (1, 65), (3, 192), (100, 30), (640, 11)])
def test_images_within_the_aspect_ratio_are_untouched(size):
    strip = _strip(*size)
    assert np.array_equal(np.asarray(decode_image(strip)), strip)


@pytest.mark.parametrize("width, height", [(1, 333), (333, 1), (2, 500), (501, 3)])
def test_longer_strips_keep_their_exact_centre(width, height):
    strip = _strip(width, height)
    decoded = np.asarray(decode_image(strip))
    short, long = sorted((width, height))
    kept = max(decoded.shape[:2])
    assert min(decoded.shape[:2]) == short
    assert kept in (short * MAX_ASPECT_RATIO, short * MAX_ASPECT_RATIO + 1)
    assert (long - kept) % 2 == 0  # so the kept strip is exactly centred
    start = (long - kept) // 2
    centre = strip[start : start + kept] if height > width else strip[:, start : start + kept]
    assert np.array_equal(decoded, centre)


@pytest.mark.parametrize("name", ["tiny-clip", "lit-demo"])
@pytest.mark.parametrize("width, height", [(1, 64 * 5 + 13), (64 * 3 + 30, 1)])
def test_centre_crop_models_see_the_same_pixels_as_without_the_crop(name, width, height, encoders):
    """The reference preprocesses the whole strip, as before the crop existed."""
    model = encoders[name]
    strip = Image.fromarray(_strip(width, height))
    whole = model._prepare_image(strip)
    assert torch.equal(model._prepare_image(decode_image(strip)), whole)
    reference = torch.nn.functional.normalize(model._embed_images([whole]).float().cpu(), dim=-1)
    assert torch.allclose(model.encode_image([strip]), reference, atol=1e-6)
