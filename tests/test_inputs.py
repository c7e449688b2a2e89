"""Input decoding and bad input, through BaseEncoder with a tiny weight-free image encoder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmenc
from mmenc.base import BaseEncoder
from mmenc.inputs import decode_image


class ColourStats(BaseEncoder):
    """Per-channel mean and std of the image: exact, cheap, and sensitive to orientation."""

    family = "test"
    modalities = frozenset({"image"})

    def __init__(self) -> None:
        super().__init__(
            name="colour-stats", embed_dim=8, device=torch.device("cpu"), dtype=torch.float32
        )

    def _prepare_image(self, image: Image.Image) -> torch.Tensor:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)) / 255.0
        top_left = pixels[: pixels.shape[0] // 2, : pixels.shape[1] // 2].mean()
        return torch.cat(
            [
                pixels.mean((0, 1)),
                pixels.std((0, 1)),
                top_left[None],
                torch.tensor([pixels.shape[0] / pixels.shape[1]]),
            ]
        )

    def _embed_images(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(images)


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def encoder() -> ColourStats:
    return ColourStats()


@pytest.fixture
def photo() -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), "RGB")


def test_every_accepted_image_form_gives_the_same_row(encoder, photo, tmp_path):
    png = _encoded(photo, "PNG")
    (tmp_path / "p.png").write_bytes(png)
    forms = [photo, png, tmp_path / "p.png", str(tmp_path / "p.png"), np.asarray(photo)]
    out = encoder.encode_image(forms, normalize=False)
    assert torch.allclose(out, out[0].expand_as(out))


def test_bad_images_are_all_named_and_good_ones_come_back(encoder, photo, tmp_path):
    png = _encoded(photo, "PNG")
    items = [
        photo,
        b"not an image at all",
        png[: len(png) // 2],
        tmp_path / "missing.jpg",
        42,
        Image.new("RGB", (0, 5)),
        photo,
    ]
    with pytest.raises(mmenc.InvalidInputError) as caught:
        encoder.encode_image(items)
    causes = dict(caught.value.problems)
    assert sorted(causes) == [1, 2, 3, 4, 5]
    assert "not a recognised image" in causes[1]
    assert "truncated" in causes[2]
    assert "file not found" in causes[3]
    assert "got int" in causes[4]
    assert "zero size" in causes[5]
    assert isinstance(caught.value, ValueError)  # callers catching ValueError still work

    out = encoder.encode_image(items, on_error="nan")
    assert torch.isnan(out[1:6]).all()
    assert torch.allclose(out[0], out[6]) and not torch.isnan(out[0]).any()


def test_bad_images_in_every_batch_are_named_in_one_error(encoder, photo):
    """Raise mode names every bad item, not only those of the first batch that has one."""
    items = [photo, *[b"junk"] * 40, photo]
    with pytest.raises(mmenc.InvalidInputError) as caught:
        encoder.encode_image(items, batch_size=4)
    assert [index for index, _ in caught.value.problems] == list(range(1, 41))


@pytest.mark.filterwarnings("ignore::UserWarning:PIL")
def test_decoding_never_swaps_the_warning_filters(encoder, photo, monkeypatch):
    """PIL warns about broken metadata. Silencing that with warnings.catch_warnings on the
    decoding threads is not thread-safe: two threads inside it can leave every warning of the
    process switched off. So decoding must not use it."""
    import warnings

    def forbidden(*args, **kwargs):
        raise AssertionError("image decoding entered warnings.catch_warnings")

    monkeypatch.setattr(warnings, "catch_warnings", forbidden)
    broken_tiff = _encoded(Image.new("RGB", (64, 64)), "TIFF")[:-100]
    out = encoder.encode_image([photo, broken_tiff, _encoded(photo, "PNG")], on_error="nan")
    assert torch.isnan(out[1]).all() and torch.equal(out[0], out[2])


def test_decompression_bomb_is_refused(monkeypatch, photo):
    monkeypatch.setenv("MMENC_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError, match="over the limit"):
        decode_image(_encoded(photo, "PNG"))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_modes_convert_to_rgb(mode, photo):
    image = photo.convert(mode)
    if mode == "P":
        image.info["transparency"] = 0
    decoded = decode_image(_encoded(image, "TIFF" if mode == "CMYK" else "PNG"))
    assert decoded.mode == "RGB" and decoded.size == photo.size


def test_16_bit_and_float_images_keep_their_contrast():
    ramp = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    sixteen_bit = Image.fromarray(ramp)
    assert sixteen_bit.mode == "I;16"
    decoded = np.asarray(decode_image(_encoded(sixteen_bit, "PNG")))
    assert decoded.min() == 0 and decoded.max() == 255
    floats = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    assert np.asarray(decode_image(_encoded(floats, "TIFF"))).max() == 255


def test_exif_rotated_jpeg_is_upright(encoder):
    wide = Image.new("RGB", (60, 20), "white")
    wide.paste((255, 0, 0), (0, 0, 30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    decoded = decode_image(_encoded(wide, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (20, 60)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(buffer.getvalue()).getpixel((0, 0))[0] > 200


def test_bad_array_shape_and_dtype_are_explained():
    with pytest.raises(ValueError, match="uint8"):
        decode_image(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="HxW"):
        decode_image(np.zeros((4, 4, 5), dtype=np.uint8))


def test_empty_list_gives_zero_rows(encoder):
    assert encoder.encode_image([]).shape == (0, 8)


def test_batches_are_invariant_and_ordered(encoder, sample_images):
    one = encoder.encode_image(sample_images, batch_size=1)
    many = encoder.encode_image(sample_images, batch_size=3)
    assert torch.equal(one, many)
    assert torch.equal(encoder.encode_image(sample_images[::-1]), one.flip(0))


def test_text_on_image_only_encoder_is_a_modality_error(encoder):
    with pytest.raises(mmenc.UnsupportedModalityError, match="cannot encode text"):
        encoder.encode_text(["hello"])
    with pytest.raises(mmenc.UnsupportedModalityError, match="no shared text-image space"):
        encoder.similarity([Image.new("RGB", (4, 4))], ["a text"])


def test_mixed_list_is_rejected(encoder):
    with pytest.raises(mmenc.InvalidInputError, match="mixes texts and images"):
        encoder.similarity([Image.new("RGB", (4, 4)), "text"], [Image.new("RGB", (4, 4))])


def test_path_like_single_item(encoder, photo, tmp_path):
    path = tmp_path / "one.png"
    photo.save(path)
    assert encoder.encode_image(Path(path)).shape == (1, 8)


def test_unknown_on_error_mode_is_refused(encoder, photo):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'nan'"):
        encoder.encode_image([photo], on_error="skip")
