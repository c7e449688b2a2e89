"""The clip family: parity with open_clip and transformers on identical weights, the CLIP BPE
tokenizer, score parameters, cross-modal similarity, bfloat16, resolvers and offline loading."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import mmenc_clip
import pytest
import torch
import torch.nn.functional as F
from mmenc_clip._tiny import clip_tokenizer, tiny_clip, tiny_openclip, tiny_siglip
from PIL import Image

import mmenc

TINY = ("tiny-clip", "tiny-siglip", "tiny-openclip")
LONG_TEXT = " ".join(["a very long caption about many different things"] * 20)  # > 77 tokens
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def texts(sample_texts: list[str]) -> list[str]:
    return [*sample_texts, LONG_TEXT]


@pytest.fixture(scope="module")
def encoders() -> dict[str, Any]:
    return {name: mmenc.load(name, device="cpu") for name in TINY}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - F.normalize(b.float(), dim=-1)).abs().max())


# -- registry and tokenizer -------------------------------------------------------------------


def test_registered_names_and_contract(encoders: dict[str, Any]) -> None:
    names = set(mmenc.list_encoders(family="clip"))
    assert {"clip-vit-b-32", "siglip-base-patch16-224", "openclip-vit-b-32-laion2b", *TINY} <= names
    assert mmenc.get_spec("openai/clip-vit-base-patch32").name == "clip-vit-b-32"
    for enc in encoders.values():
        assert enc.family == "clip"
        assert enc.modalities == frozenset({"text", "image"})
        assert enc.shared_space is True


def test_tokenizer_gives_openai_ids_and_matches_open_clip(texts: list[str]) -> None:
    import open_clip

    tokenizer = clip_tokenizer()
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tokenizer) == 49408
    reference = open_clip.get_tokenizer("ViT-B-32")(texts)
    ours = tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt").input_ids
    # open_clip pads with 0, transformers' CLIP with <|endoftext|>: compare up to the padding
    mask = reference != 0
    assert torch.equal(ours[mask], reference[mask])
    assert ours[-1, -1].item() == 49407  # the long text is truncated to 77 and ends with EOT


# -- parity with the reference libraries ------------------------------------------------------


def test_open_clip_parity(encoders: dict[str, Any], texts: list[str], sample_images) -> None:
    import open_clip

    folder = "local-dir:" + str(tiny_openclip())
    model, preprocess = open_clip.create_model_from_pretrained(folder)
    tokenizer = open_clip.get_tokenizer(folder)
    model.eval()
    with torch.inference_mode():
        ref_text = model.encode_text(tokenizer(texts), normalize=True)
        ref_image = model.encode_image(
            torch.stack([preprocess(i) for i in sample_images]), normalize=True
        )
    enc = encoders["tiny-openclip"]
    assert _max_diff(enc.encode_text(texts), ref_text) <= TOLERANCE
    assert _max_diff(enc.encode_image(sample_images), ref_image) <= TOLERANCE


def test_transformers_clip_parity(
    encoders: dict[str, Any], texts: list[str], sample_images
) -> None:
    from transformers import CLIPModel, CLIPProcessor

    folder = tiny_clip()
    model = CLIPModel.from_pretrained(folder).eval()
    processor = CLIPProcessor.from_pretrained(folder)
    tokens = processor(text=texts, padding=True, truncation=True, return_tensors="pt")
    pixels = processor(images=sample_images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        ref_text = model.get_text_features(**tokens).pooler_output
        ref_image = model.get_image_features(pixel_values=pixels).pooler_output
    # pooler_output is the projected embedding (projection_dim), not the tower's hidden state
    assert ref_text.shape[-1] == ref_image.shape[-1] == model.config.projection_dim == 16
    enc = encoders["tiny-clip"]
    assert _max_diff(enc.encode_text(texts), ref_text) <= TOLERANCE
    assert _max_diff(enc.encode_image(sample_images), ref_image) <= TOLERANCE


def test_transformers_siglip_parity(
    encoders: dict[str, Any], texts: list[str], sample_images
) -> None:
    from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

    folder = tiny_siglip()
    model = SiglipModel.from_pretrained(folder).eval()
    tokens = AutoTokenizer.from_pretrained(folder)(
        texts, padding="max_length", truncation=True, return_tensors="pt"
    )
    assert list(tokens) == ["input_ids"] and tokens["input_ids"].shape[1] == 64
    pixels = AutoImageProcessor.from_pretrained(folder)(images=sample_images, return_tensors="pt")
    with torch.inference_mode():
        ref_text = model.get_text_features(**tokens).pooler_output
        ref_image = model.get_image_features(**pixels).pooler_output
    enc = encoders["tiny-siglip"]
    assert _max_diff(enc.encode_text(texts), ref_text) <= TOLERANCE
    assert _max_diff(enc.encode_image(sample_images), ref_image) <= TOLERANCE


def test_score_parameters_equal_the_models(encoders: dict[str, Any]) -> None:
    import open_clip
    from transformers import CLIPModel, SiglipModel

    clip = CLIPModel.from_pretrained(tiny_clip())
    siglip = SiglipModel.from_pretrained(tiny_siglip())
    oc, _ = open_clip.create_model_from_pretrained("local-dir:" + str(tiny_openclip()))
    expected = {
        "tiny-clip": (clip.logit_scale.exp().item(), None, "softmax"),
        "tiny-siglip": (siglip.logit_scale.exp().item(), siglip.logit_bias.item(), "sigmoid"),
        "tiny-openclip": (oc.logit_scale.exp().item(), None, "softmax"),
    }
    for name, (scale, bias, activation) in expected.items():
        enc = encoders[name]
        assert enc.logit_scale == pytest.approx(scale, rel=1e-6)
        assert enc.logit_bias == (None if bias is None else pytest.approx(bias, rel=1e-6))
        assert enc.score_activation == activation
    assert encoders["tiny-siglip"].logit_scale == pytest.approx(10.0, rel=1e-5)
    assert encoders["tiny-siglip"].logit_bias == pytest.approx(-10.0)


# -- behaviour --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TINY)
def test_cross_modal_similarity(encoders: dict[str, Any], name: str, sample_images) -> None:
    enc = encoders[name]
    queries = ["a photo of a cat", "a diagram", "zebra"]
    sim = enc.similarity(queries, sample_images)
    assert sim.shape == (3, len(sample_images))
    expected = enc.encode_text(queries) @ enc.encode_image(sample_images).T
    torch.testing.assert_close(sim, expected, atol=1e-6, rtol=0)
    assert sim.abs().max() <= 1 + 1e-6


@pytest.mark.parametrize("name", TINY)
def test_bfloat16_close_to_float32(
    encoders: dict[str, Any], name: str, texts: list[str], sample_images
) -> None:
    enc: Any = mmenc.load(name, device="cpu", dtype="bfloat16")
    assert enc.dtype == torch.bfloat16
    assert next(enc.model.parameters()).dtype == torch.bfloat16
    for half, full in (
        (enc.encode_text(texts), encoders[name].encode_text(texts)),
        (enc.encode_image(sample_images), encoders[name].encode_image(sample_images)),
    ):
        assert half.dtype == torch.float32
        assert F.cosine_similarity(half, full).min() >= 0.99


# -- resolvers --------------------------------------------------------------------------------


def test_resolves_open_clip_folders_and_hf_folders(encoders: dict[str, Any]) -> None:
    openclip, clip = str(tiny_openclip()), str(tiny_clip())
    reference = encoders["tiny-openclip"].encode_text(["a photo of a cat"])
    for name in (openclip, "open_clip:" + openclip, "open_clip:local-dir:" + openclip):
        enc = mmenc.load(name, device="cpu")
        assert type(enc).__name__ == "OpenClipEncoder"
        torch.testing.assert_close(enc.encode_text(["a photo of a cat"]), reference)
    spec = mmenc.get_spec("hf:" + clip)
    assert (spec.family, spec.plugin) == ("clip", "clip")
    assert mmenc.get_spec(str(tiny_siglip())).family == "clip"


def test_resolver_leaves_other_models_alone(tmp_path: Path) -> None:
    assert mmenc_clip.mmenc_resolve(str(tmp_path)) is None  # a folder with no config.json
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert mmenc_clip.mmenc_resolve(str(tmp_path)) is None
    assert mmenc_clip.mmenc_resolve("timm:vit_tiny_patch16_224") is None


def test_open_clip_bad_names_suggest_tags() -> None:
    with pytest.raises(mmenc.UnknownEncoderError, match="open_clip:ViT-B-32/openai"):
        mmenc.load("open_clip:ViT-B-32", device="cpu")  # no tag
    with pytest.raises(mmenc.UnknownEncoderError, match="open_clip:ViT-B-32/laion2b_s34b_b79k"):
        mmenc.load("open_clip:vit-b-32/laion2b", device="cpu")  # close, and lower-case
    with pytest.raises(mmenc.UnknownEncoderError, match="ViT-Q-99"):
        mmenc.load("open_clip:ViT-Q-99/openai", device="cpu")


# -- offline: missing weights and a pre-filled Hugging Face cache -----------------------------


@pytest.mark.parametrize(
    "name",
    [
        "open_clip:ViT-B-32/openai",
        "openclip-vit-b-32-laion2b",
        "open_clip:hf-hub:timm/no-such-model",
    ],
)
def test_open_clip_weights_unavailable_offline(name: str) -> None:
    with pytest.raises(mmenc.WeightsUnavailableError, match=r"open_clip .*To fix"):
        mmenc.load(name, device="cpu")


@pytest.mark.parametrize(
    "name", ["clip-vit-b-32", "siglip-base-patch16-224", "hf:openai/clip-vit-large-patch14"]
)
def test_hf_weights_unavailable_offline(name: str) -> None:
    with pytest.raises(mmenc.WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        mmenc.load(name, device="cpu")


_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    import mmenc

    images, out = json.loads(sys.argv[1]), sys.argv[2]
    result = {}
    for name in ("openai/clip-vit-base-patch32", "clip-vit-b-32"):
        enc = mmenc.load(name, device="cpu")
        result[name] = (enc.encode_text(["a photo of a cat", "zebra"]), enc.encode_image(images))
    try:
        mmenc.load("hf:openai/clip-vit-large-patch14", device="cpu")
    except mmenc.WeightsUnavailableError as exc:
        result["missing"] = str(exc)
    torch.save(result, out)
    """
)


def test_loads_from_prefilled_hf_cache_offline(
    tmp_path: Path, encoders: dict[str, Any], sample_images
) -> None:
    repo = tmp_path / "hf" / "hub" / "models--openai--clip-vit-base-patch32"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_clip(), repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    paths = []
    for i, image in enumerate(sample_images):
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    out = tmp_path / "out.pt"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT, json.dumps(paths), str(out)],
        env=env, check=True, timeout=240,
    )  # fmt: skip
    result = torch.load(out)
    enc = encoders["tiny-clip"]
    expected_text = enc.encode_text(["a photo of a cat", "zebra"])
    expected_image = enc.encode_image([Image.open(p) for p in paths])
    for name in ("openai/clip-vit-base-patch32", "clip-vit-b-32"):
        text, image = result[name]
        torch.testing.assert_close(text, expected_text, atol=1e-6, rtol=0)
        torch.testing.assert_close(image, expected_image, atol=1e-6, rtol=0)
    assert "openai/clip-vit-large-patch14" in result["missing"]
