"""The blip family: parity with transformers' BLIP on identical weights, match, caption, errors.

The references are transformers' own BlipForImageTextRetrieval / BlipForConditionalGeneration
and BlipProcessor, loaded from the same tiny folders mmenc loads, so equal numbers here mean a
real checkpoint gives transformers' answer through mmenc too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import mmenc

TOL = 1e-5


@pytest.fixture(scope="module")
def retrieval_folder() -> Path:
    from mmenc_blip._tiny import tiny_blip

    return tiny_blip("retrieval")


@pytest.fixture(scope="module")
def captioning_folder() -> Path:
    from mmenc_blip._tiny import tiny_blip

    return tiny_blip("captioning")


@pytest.fixture(scope="module")
def blip() -> Any:
    return mmenc.load("tiny-blip", device="cpu")


@pytest.fixture(scope="module")
def captioner() -> Any:
    return mmenc.load("tiny-blip-captioning", device="cpu")


@pytest.fixture(scope="module")
def processor(retrieval_folder: Path) -> Any:
    from transformers import BlipProcessor

    return BlipProcessor.from_pretrained(retrieval_folder)


@pytest.fixture(scope="module")
def reference(retrieval_folder: Path) -> Any:
    from transformers import BlipForImageTextRetrieval

    return BlipForImageTextRetrieval.from_pretrained(retrieval_folder).eval()


@pytest.fixture(scope="module")
def reference_captioner(captioning_folder: Path) -> Any:
    from transformers import BlipForConditionalGeneration

    return BlipForConditionalGeneration.from_pretrained(captioning_folder).eval()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max())


# -- parity with transformers -------------------------------------------------------------------


def test_embeddings_equal_transformers_retrieval_path(
    blip: Any, reference: Any, processor: Any, sample_images: list, sample_texts: list
) -> None:
    """use_itm_head=False: CLS → vision_proj / text_proj, normalised, and their cosine matrix."""
    inputs = processor(images=sample_images, text=sample_texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = reference(**inputs, use_itm_head=False)
        want_images = F.normalize(reference.vision_proj(out.last_hidden_state[:, 0]), dim=-1)
        want_texts = F.normalize(reference.text_proj(out.question_embeds[:, 0]), dim=-1)

    assert _max_diff(blip.encode_image(sample_images, batch_size=3), want_images) <= TOL
    assert _max_diff(blip.encode_text(sample_texts, batch_size=2), want_texts) <= TOL
    assert _max_diff(blip.similarity(sample_images, sample_texts), out.itm_score) <= TOL
    assert float(out.itm_score.std()) > 0.01  # the tiny model tells inputs apart


def test_match_equals_softmax_of_itm_head(
    blip: Any, reference: Any, processor: Any, sample_images: list, sample_texts: list
) -> None:
    texts = sample_texts[: len(sample_images)]
    inputs = processor(images=sample_images, text=texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        want = reference(**inputs, use_itm_head=True).itm_score.softmax(dim=-1)[:, 1]

    got = blip.match(sample_images, texts, batch_size=3)
    assert got.dtype == torch.float32 and got.shape == (len(texts),)
    assert _max_diff(got, want) <= TOL
    assert float(got.max() - got.min()) > 0.01


@pytest.mark.parametrize("prompt", [None, "a picture of"])
def test_caption_equals_generate_and_decode(
    captioner: Any,
    reference_captioner: Any,
    processor: Any,
    sample_images: list,
    prompt: str | None,
) -> None:
    text = None if prompt is None else [prompt] * len(sample_images)
    inputs = processor(images=sample_images, text=text, return_tensors="pt")
    ids = reference_captioner.generate(**inputs, max_new_tokens=8)
    want = [s.strip() for s in processor.batch_decode(ids, skip_special_tokens=True)]

    assert captioner.caption(sample_images, prompt=prompt, max_new_tokens=8) == want
    assert captioner.caption(sample_images, prompt, 8, batch_size=1) == want
    assert len(set(want)) > 1 and all(want)
    if prompt:
        assert all(caption.startswith(prompt) for caption in want)


def test_captioning_image_embeddings_are_the_pooled_vision_output(
    captioner: Any, reference_captioner: Any, processor: Any, sample_images: list
) -> None:
    pixels = processor(images=sample_images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        pooled = reference_captioner.vision_model(pixel_values=pixels).pooler_output
    got = captioner.encode_image(sample_images)
    assert got.shape == (len(sample_images), 32)
    assert _max_diff(got, F.normalize(pooled, dim=-1)) <= TOL


# -- errors ---------------------------------------------------------------------------------


def test_match_needs_aligned_lists(blip: Any, sample_images: list) -> None:
    with pytest.raises(ValueError, match="4 images and 3 texts"):
        blip.match(sample_images, ["a", "b", "c"])


def test_match_names_the_bad_image(blip: Any, sample_images: list) -> None:
    images = [*sample_images[:2], b"not an image", sample_images[3]]
    with pytest.raises(mmenc.InvalidInputError, match="item 2") as info:
        blip.match(images, ["a", "b", "c", "d"])
    assert info.value.index == 2 and info.value.problems == [(2, info.value.cause)]


def test_match_names_the_bad_text(blip: Any, sample_images: list) -> None:
    with pytest.raises(mmenc.InvalidInputError, match="item 1") as info:
        blip.match(sample_images[:2], ["a", 5])
    assert info.value.index == 1


def test_each_checkpoint_kind_says_which_one_to_use(
    blip: Any, captioner: Any, sample_images: list
) -> None:
    with pytest.raises(mmenc.UnsupportedModalityError, match="blip-image-captioning-base"):
        blip.caption(sample_images)
    with pytest.raises(mmenc.UnsupportedModalityError, match="blip-itm-base-coco"):
        captioner.match(sample_images, ["a"] * len(sample_images))
    with pytest.raises(mmenc.UnsupportedModalityError, match="cannot encode text"):
        captioner.encode_text(["a cat"])


def test_modalities_follow_the_checkpoint_kind(blip: Any, captioner: Any) -> None:
    assert (blip.family, blip.modalities, blip.shared_space, blip.embed_dim) == (
        "blip",
        frozenset({"text", "image"}),
        True,
        16,
    )
    assert captioner.modalities == frozenset({"image"}) and not captioner.shared_space
    specs = {name: mmenc.get_spec(name) for name in ("tiny-blip", "tiny-blip-captioning")}
    assert specs["tiny-blip"].modalities == blip.modalities
    assert specs["tiny-blip-captioning"].modalities == captioner.modalities


# -- dtype, names, resolution ---------------------------------------------------------------


def test_bfloat16_loads_and_encodes(blip: Any, sample_images: list, sample_texts: list) -> None:
    enc = mmenc.load("tiny-blip", device="cpu", dtype="bfloat16")
    assert enc.model.dtype == torch.bfloat16 and enc.dtype == torch.bfloat16
    images, texts = enc.encode_image(sample_images), enc.encode_text(sample_texts)
    assert images.dtype == texts.dtype == torch.float32
    cosine_images = (images * blip.encode_image(sample_images)).sum(-1)
    cosine_texts = (texts * blip.encode_text(sample_texts)).sum(-1)
    assert float(cosine_images.min()) > 0.98 and float(cosine_texts.min()) > 0.98
    assert torch.isfinite(enc.match(sample_images, sample_texts[:4])).all()
    captioner = mmenc.load("tiny-blip-captioning", device="cpu", dtype="bfloat16")
    assert len(captioner.caption(sample_images[:2], max_new_tokens=3)) == 2


@pytest.mark.parametrize("name", ["blip-itm-base-coco", "Salesforce/blip-image-captioning-base"])
def test_curated_names_raise_weights_unavailable_offline(name: str) -> None:
    with pytest.raises(mmenc.WeightsUnavailableError, match="Salesforce/blip-"):
        mmenc.load(name, device="cpu")


def test_local_folders_resolve_to_the_right_kind(
    retrieval_folder: Path, captioning_folder: Path, blip: Any, sample_images: list
) -> None:
    enc = mmenc.load(f"hf:{retrieval_folder}", device="cpu")
    assert enc.family == "blip" and enc.task == "retrieval"
    assert _max_diff(enc.encode_image(sample_images), blip.encode_image(sample_images)) == 0.0
    spec = mmenc.get_spec(str(captioning_folder))
    assert spec.family == "blip" and spec.modalities == frozenset({"image"})


def test_resolver_ignores_other_models(tmp_path: Path) -> None:
    import mmenc_blip

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert mmenc_blip.mmenc_resolve(str(tmp_path)) is None
    assert mmenc_blip.mmenc_resolve("not a model name") is None
    assert mmenc_blip.mmenc_resolve(str(tmp_path / "missing")) is None


def test_other_blip_architectures_fail_with_advice(tmp_path: Path) -> None:
    config = {"model_type": "blip", "architectures": ["BlipForQuestionAnswering"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(mmenc.MmencError, match=r"BlipForQuestionAnswering.*BlipForImageTextRetr"):
        mmenc.load(str(tmp_path), device="cpu")


def test_empty_batches(blip: Any, captioner: Any) -> None:
    assert blip.match([], []).shape == (0,)
    assert captioner.caption([]) == []


def test_images_decode_like_encode_image(blip: Any, sample_images: list, tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    sample_images[0].save(path)
    assert _max_diff(blip.match([path], ["a"]), blip.match([sample_images[0]], ["a"])) == 0.0
