"""The Encoder contract, checked on every registered tiny encoder of every family, and on the
shipped lit-demo."""

from __future__ import annotations

import pytest
import torch

import mmenc

SHIPPED = ["lit-demo"]  # small enough to check like the tiny ones
TINY = mmenc.list_encoders("tiny-*") + SHIPPED
TINY_TEXT = mmenc.list_encoders("tiny-*", modality="text") + SHIPPED
TINY_IMAGE = mmenc.list_encoders("tiny-*", modality="image") + SHIPPED


@pytest.fixture(scope="module", params=TINY)
def encoder(request):
    return mmenc.load(request.param, device="cpu")


@pytest.fixture(scope="module", params=TINY_TEXT)
def text_encoder(request):
    return mmenc.load(request.param, device="cpu")


@pytest.fixture(scope="module", params=TINY_IMAGE)
def image_encoder(request):
    return mmenc.load(request.param, device="cpu")


def _inputs(encoder, modality, sample_texts, sample_images):
    return sample_texts if modality == "text" else sample_images


def _encode(encoder, modality, items, **options):
    encode = encoder.encode_text if modality == "text" else encoder.encode_image
    return encode(items, **options)


def test_attributes(encoder):
    assert isinstance(encoder, mmenc.Encoder)
    spec = mmenc.get_spec(encoder.name)
    assert encoder.family == spec.family
    assert encoder.modalities == spec.modalities
    assert encoder.embed_dim > 0
    assert encoder.device == torch.device("cpu")
    assert encoder.dtype == torch.float32


@pytest.mark.parametrize("modality", ["text", "image"])
def test_shapes_norms_determinism_batching_order(encoder, modality, sample_texts, sample_images):
    if modality not in encoder.modalities:
        with pytest.raises(mmenc.UnsupportedModalityError):
            _encode(encoder, modality, _inputs(encoder, modality, sample_texts, sample_images))
        return
    items = _inputs(encoder, modality, sample_texts, sample_images)
    out = _encode(encoder, modality, items, batch_size=32)
    assert out.shape == (len(items), encoder.embed_dim)
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.allclose(out.norm(dim=1), torch.ones(len(items)), atol=1e-5)
    assert torch.equal(out, _encode(encoder, modality, items, batch_size=32))
    one_by_one = _encode(encoder, modality, items, batch_size=1)
    assert (out - one_by_one).abs().max() <= 1e-5
    reversed_out = _encode(encoder, modality, items[::-1], batch_size=2)
    assert (reversed_out.flip(0) - out).abs().max() <= 1e-5
    raw = _encode(encoder, modality, items, normalize=False)
    assert torch.allclose(torch.nn.functional.normalize(raw, dim=1), out, atol=1e-5)
    assert _encode(encoder, modality, [], batch_size=4).shape == (0, encoder.embed_dim)


def test_similarity(encoder, sample_texts, sample_images):
    modality = sorted(encoder.modalities)[-1]  # "text" if present
    items = _inputs(encoder, modality, sample_texts, sample_images)[:3]
    table = encoder.similarity(items, items)
    assert table.shape == (3, 3)
    assert torch.allclose(table.diagonal(), torch.ones(3), atol=1e-4)
    if encoder.modalities == {"text", "image"} and not getattr(encoder, "shared_space", False):
        with pytest.raises(mmenc.UnsupportedModalityError):
            encoder.similarity(sample_texts[:1], sample_images[:1])
    if getattr(encoder, "shared_space", False):
        assert encoder.similarity(sample_texts[:2], sample_images[:3]).shape == (2, 3)


def test_bad_text_items_are_named(text_encoder):
    encoder = text_encoder
    with pytest.raises(mmenc.InvalidInputError) as caught:
        encoder.encode_text(["fine", None, 3, "bad \ud800 surrogate"])
    assert [i for i, _ in caught.value.problems] == [1, 2, 3]
    out = encoder.encode_text(["fine", None, "also fine"], on_error="nan")
    assert torch.isnan(out[1]).all() and not torch.isnan(out[[0, 2]]).any()
    assert torch.allclose(out[0], encoder.encode_text(["fine"])[0], atol=1e-5)


def test_long_text_is_truncated_not_rejected(text_encoder):
    long = " ".join(["word"] * 5000)
    assert text_encoder.encode_text([long]).isfinite().all()


def test_bad_image_items_are_named_and_the_rest_come_back(image_encoder, sample_images):
    items = [sample_images[0], b"not an image", "/no/such/file.png", sample_images[1]]
    with pytest.raises(mmenc.InvalidInputError) as caught:
        image_encoder.encode_image(items)
    assert [i for i, _ in caught.value.problems] == [1, 2]
    out = image_encoder.encode_image(items, on_error="nan")
    assert torch.isnan(out[1:3]).all()
    expected = image_encoder.encode_image([sample_images[0], sample_images[1]])
    assert (out[[0, 3]] - expected).abs().max() <= 1e-5
