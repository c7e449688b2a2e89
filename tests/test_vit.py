"""vit family: transformers ViT and timm models against the libraries' own forward passes,
modality errors, bfloat16, offline errors for real names, and the timm:/folder resolvers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mmenc

CURATED = {
    "vit-base-patch16-224": "google/vit-base-patch16-224",
    "deit-small-patch16-224": "facebook/deit-small-patch16-224",
    "timm-vit-base-patch16-224": "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
}


@pytest.fixture(scope="module")
def vit_folder() -> Path:
    from mmenc_vit._tiny import tiny_vit

    return tiny_vit()


@pytest.fixture(scope="module")
def timm_folder() -> Path:
    from mmenc_vit._tiny import tiny_timm

    return tiny_timm()


@pytest.fixture(scope="module")
def tiny_vit():
    return mmenc.load("tiny-vit", device="cpu")


@pytest.fixture(scope="module")
def tiny_timm():
    return mmenc.load("tiny-timm", device="cpu")


def _max_diff(ours: torch.Tensor, expected: torch.Tensor) -> float:
    return float((ours - F.normalize(expected.float(), dim=-1)).abs().max())


def _distinct(embeddings: torch.Tensor) -> None:
    """Guard against a degenerate comparison: different images give different embeddings."""
    assert torch.cdist(embeddings, embeddings).fill_diagonal_(1.0).min() > 1e-3


def test_registered_names():
    names = set(mmenc.list_encoders(family="vit"))
    assert {*CURATED, "tiny-vit", "tiny-timm"} <= names
    assert mmenc.get_spec("google/vit-base-patch16-224").name == "vit-base-patch16-224"
    assert all(mmenc.get_spec(n).modalities == {"image"} for n in names)


def test_timm_matches_timm_forward(tiny_timm, timm_folder, sample_images):
    import timm
    from timm.data import create_transform, resolve_model_data_config

    model = timm.create_model(f"local-dir:{timm_folder}", pretrained=True).eval()
    transform = create_transform(**resolve_model_data_config(model))
    pixels = torch.stack([transform(image) for image in sample_images])
    with torch.inference_mode():
        expected = model.forward_head(model.forward_features(pixels), pre_logits=True)
    ours = tiny_timm.encode_image(sample_images, batch_size=3)
    assert ours.shape == (len(sample_images), 32) and ours.dtype == torch.float32
    assert _max_diff(ours, expected) <= 1e-5
    _distinct(ours)


def test_vit_matches_transformers(tiny_vit, vit_folder, sample_images):
    from transformers import ViTImageProcessor, ViTModel

    processor = ViTImageProcessor.from_pretrained(vit_folder)
    model = ViTModel.from_pretrained(vit_folder, add_pooling_layer=False).eval()
    pixels = processor(images=sample_images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        hidden = model(pixel_values=pixels).last_hidden_state
    assert tiny_vit.pooling == "cls"
    ours = tiny_vit.encode_image(sample_images, batch_size=3)
    assert _max_diff(ours, hidden[:, 0]) <= 1e-5
    _distinct(ours)
    mean = mmenc.load("tiny-vit", device="cpu", pooling="mean").encode_image(sample_images)
    assert _max_diff(mean, hidden[:, 1:].mean(1)) <= 1e-5
    assert (mean - ours).abs().max() > 1e-2


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        mmenc.load("tiny-vit", device="cpu", pooling="max")


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-timm"])
def test_text_is_unsupported(name, sample_images):
    encoder = mmenc.load(name, device="cpu")
    assert encoder.family == "vit" and encoder.modalities == {"image"}
    assert not encoder.shared_space
    with pytest.raises(mmenc.UnsupportedModalityError, match="cannot encode text"):
        encoder.encode_text(["a cat"])
    sims = encoder.similarity(sample_images, sample_images[:2])
    assert sims.shape == (len(sample_images), 2)
    assert torch.allclose(sims[:2].diagonal(), torch.ones(2), atol=1e-5)
    with pytest.raises(mmenc.UnsupportedModalityError, match="no shared text-image space"):
        encoder.similarity(sample_images, ["a cat"])


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-timm"])
def test_bfloat16_is_close_to_float32(name, sample_images):
    bf16 = mmenc.load(name, device="cpu", dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    out = bf16.encode_image(sample_images)
    assert out.dtype == torch.float32
    cosine = (out * mmenc.load(name, device="cpu").encode_image(sample_images)).sum(1)
    assert cosine.min() >= 0.99, cosine


@pytest.mark.parametrize("name", sorted(CURATED))
def test_curated_names_need_weights_offline(name):
    with pytest.raises(mmenc.WeightsUnavailableError, match=CURATED[name]):
        mmenc.load(name, device="cpu")


def test_uncached_timm_name_is_unavailable():
    with pytest.raises(mmenc.WeightsUnavailableError) as info:
        mmenc.load("timm:resnet18.a1_in1k", device="cpu")
    assert "timm/resnet18.a1_in1k" in str(info.value)
    assert "hf download" in str(info.value)


def test_unknown_timm_architecture_suggests_names():
    with pytest.raises(mmenc.UnknownEncoderError, match="timm:vit_base_patch16_224"):
        mmenc.load("timm:vit_bse_patch16_224", device="cpu")


def test_local_timm_folder_loads_by_path(tiny_timm, timm_folder, sample_images):
    from mmenc_vit._timm import TimmImageEncoder

    expected = tiny_timm.encode_image(sample_images)
    for name in (str(timm_folder), f"timm:{timm_folder}"):
        encoder = mmenc.load(name, device="cpu")
        assert isinstance(encoder, TimmImageEncoder) and encoder.embed_dim == 32
        assert torch.equal(encoder.encode_image(sample_images), expected)


def test_local_transformers_folder_loads_by_path(tiny_vit, vit_folder, sample_images):
    encoder = mmenc.load(str(vit_folder), device="cpu")
    assert encoder.family == "vit"
    assert torch.equal(encoder.encode_image(sample_images), tiny_vit.encode_image(sample_images))


def test_incomplete_timm_folder_is_unavailable(timm_folder, tmp_path):
    shutil.copy(timm_folder / "config.json", tmp_path / "config.json")
    with pytest.raises(mmenc.WeightsUnavailableError, match="weights file"):
        mmenc.load(str(tmp_path), device="cpu")


def test_resolver_leaves_other_folders_alone(vit_folder, tmp_path):
    from mmenc_vit import mmenc_resolve

    assert mmenc_resolve(str(tmp_path)) is None  # no config.json
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert mmenc_resolve(str(tmp_path)) is None
    assert mmenc_resolve("open_clip:ViT-B-32/openai") is None
    spec = mmenc_resolve(f"hf:{vit_folder}")
    assert spec is not None and spec.family == "vit"


def test_timm_hub_repo_loads_from_hf_cache(tiny_timm, timm_folder, sample_images):
    """A bare hub id whose config.json is timm's, read from a pre-filled HF cache offline."""
    from huggingface_hub.constants import HF_HUB_CACHE
    from mmenc_vit._timm import TimmImageEncoder

    repo = Path(HF_HUB_CACHE) / "models--mmenc-test--tiny-timm-vit"
    revision = "0" * 40
    shutil.copytree(timm_folder, repo / "snapshots" / revision, dirs_exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    encoder = mmenc.load("mmenc-test/tiny-timm-vit", device="cpu")
    assert isinstance(encoder, TimmImageEncoder)
    assert torch.equal(encoder.encode_image(sample_images), tiny_timm.encode_image(sample_images))
