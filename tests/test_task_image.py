"""The image tasks: classification (transformers and timm heads), zero-shot classification,
captioning, image-text matching and feature extraction, on tiny seeded models, offline.

Parity: image-classification and zero-shot-image-classification against transformers' own
pipelines on the same weights; captions against ``generate`` called directly; matching and
features against the encoders' own methods; timm against timm's forward pass.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmenc_image._tiny import (
    TIMM_DESCRIPTIONS,
    VIT_LABELS,
    tiny_timm_classifier,
    tiny_vit_classifier,
)
from PIL import Image

import mmenc

TOL = 1e-5


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def images(sample_images: list[Image.Image]) -> list[Image.Image]:
    return sample_images


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory, images: list[Image.Image]) -> dict:
    """Good files (PNG, JPEG), a missing path, a non-image file and a truncated PNG."""
    folder = tmp_path_factory.mktemp("images")
    images[0].save(folder / "good.png")
    images[1].save(folder / "good.jpg", quality=95)
    (folder / "notes.png").write_bytes(b"this is not an image")
    data = (folder / "good.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    return {
        "png": folder / "good.png",
        "jpg": str(folder / "good.jpg"),
        "missing": folder / "missing.png",
        "not_image": folder / "notes.png",
        "truncated": folder / "truncated.png",
    }


@pytest.fixture(scope="module")
def vit_classifier() -> Any:
    return mmenc.pipeline("image-classification", str(tiny_vit_classifier()), device="cpu")


@pytest.fixture(scope="module")
def timm_classifier() -> Any:
    return mmenc.pipeline("image-classification", tiny_timm_classifier(), device="cpu")


@pytest.fixture(scope="module")
def clip_zero_shot() -> Any:
    return mmenc.pipeline("zero-shot-image-classification", "tiny-clip", device="cpu")


@pytest.fixture(scope="module")
def blip_matching() -> Any:
    return mmenc.pipeline("image-text-matching", "tiny-blip", device="cpu")


@pytest.fixture(scope="module")
def captioner() -> Any:
    return mmenc.pipeline("image-to-text", "tiny-blip-captioning", device="cpu")


@pytest.fixture
def hf_cache_install():
    """Install a folder into the session's HF cache as a repo; removed after the test, so that
    other tests still find the real repo names uncached."""
    from helpers import install_in_hf_cache

    roots: set[Path] = set()

    def install(folder: Path, repo: str, short_revision: str) -> None:
        full = short_revision + "0" * (40 - len(short_revision))
        roots.add(install_in_hf_cache(folder, repo, full).parent.parent)

    yield install
    for root in roots:
        shutil.rmtree(root)


def _assert_same_ranking(ours: list[dict], theirs: list[dict]) -> float:
    """Same labels in the same order; returns the largest score difference."""
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    return max(abs(a["score"] - b["score"]) for a, b in zip(ours, theirs, strict=True))


# -- every image task: inputs and bad images --------------------------------------------------
TASKS = {
    "image-classification": ("vit_classifier", {}),
    "zero-shot-image-classification": ("clip_zero_shot", {"candidate_labels": ["a", "b"]}),
    "image-to-text": ("captioner", {"max_new_tokens": 3}),
    "image-text-matching": ("blip_matching", {"text": "a cat"}),
}


@pytest.mark.parametrize("task", TASKS)
def test_bad_images_are_all_named_before_any_model_work(
    task, request, image_files, images, monkeypatch
):
    fixture, options = TASKS[task]
    pipe = request.getfixturevalue(fixture)
    batch = [
        image_files["png"],
        image_files["missing"],
        image_files["not_image"],
        images[2],
        image_files["truncated"],
        42,
    ]
    with monkeypatch.context() as patch, pytest.raises(mmenc.InvalidInputError) as caught:
        patch.setattr(pipe, "_run", lambda *args: pytest.fail("the model ran"))
        pipe(batch, **options)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [1, 2, 4, 5]
    assert "missing.png" in problems[1] and "not a recognised image format" in problems[2]
    assert "truncated" in problems[4] and "int" in problems[5]
    assert task in str(caught.value)
    good = [image_files["png"], images[2]]  # the other items, once the bad ones are dropped
    assert len(pipe(good, **options)) == 2


@pytest.mark.parametrize("task", TASKS)
def test_paths_pil_images_and_bytes_give_the_same_result(task, request, image_files):
    fixture, options = TASKS[task]
    pipe = request.getfixturevalue(fixture)
    path = image_files["png"]
    one = pipe(path, **options)  # a single input gives a single result
    assert pipe([path], **options) == [one]
    assert pipe(str(path), **options) == one
    assert pipe(Image.open(path), **options) == one
    assert pipe(path.read_bytes(), **options) == one
    with pytest.raises(ValueError, match="empty"):
        pipe([], **options)


# -- image-classification ---------------------------------------------------------------------
def _transformers_classifier(pipe: Any) -> Any:
    import transformers

    return transformers.pipeline(
        "image-classification", model=pipe.model, image_processor=pipe.preprocessor, device="cpu"
    )


@pytest.mark.parametrize("function", [None, "softmax", "sigmoid", "none"])
def test_classification_matches_transformers_pipeline(vit_classifier, images, function):
    reference = _transformers_classifier(vit_classifier)
    kwargs = {"function_to_apply": function} if function else {}
    ours = vit_classifier(images, top_k=len(VIT_LABELS), **kwargs)
    theirs = [reference(image, top_k=len(VIT_LABELS), **kwargs) for image in images]
    diff = max(_assert_same_ranking(o, t) for o, t in zip(ours, theirs, strict=True))
    assert diff <= TOL
    assert {r["label"] for r in ours[0]} == set(VIT_LABELS)


def test_classification_top_k_and_label_order(vit_classifier, images):
    default = vit_classifier(images[0])
    assert len(default) == 5 and list(default[0]) == ["label", "score"]  # transformers' top_k
    scores = [r["score"] for r in default]
    assert scores == sorted(scores, reverse=True) and sum(scores) < 1
    assert vit_classifier(images[0], top_k=2) == default[:2]
    everything = vit_classifier(images[0], top_k=None)
    assert len(everything) == 6 and sum(r["score"] for r in everything) == pytest.approx(1)
    assert vit_classifier(images[0], top_k=100) == everything  # capped at the number of labels
    assert vit_classifier(images[0], function_to_apply="default") == default


@pytest.mark.parametrize(
    ("option", "match"),
    [({"top_k": 0}, "top_k"), ({"top_k": 1.5}, "top_k"), ({"function_to_apply": "relu"}, "relu")],
)
def test_classification_refuses_bad_options(vit_classifier, images, option, match):
    with pytest.raises(ValueError, match=match):
        vit_classifier(images[0], **option)


@pytest.mark.parametrize(
    ("problem_type", "function"),
    [("multi_label_classification", "sigmoid"), ("regression", "none")],
)
def test_default_function_follows_the_model_config(images, problem_type, function):
    """A model object with its processor, like pipeline(task, model=m, tokenizer=p)."""
    import transformers

    folder = tiny_vit_classifier()
    model = transformers.ViTForImageClassification.from_pretrained(folder)
    model.config.problem_type = problem_type
    processor = transformers.AutoImageProcessor.from_pretrained(folder)
    pipe = mmenc.pipeline("image-classification", model, tokenizer=processor, device="cpu")
    reference = _transformers_classifier(pipe)
    assert _assert_same_ranking(pipe(images[1]), reference(images[1])) <= TOL
    explicit = pipe(images[1], function_to_apply=function)
    assert _assert_same_ranking(pipe(images[1]), explicit) == 0


def test_timm_classifier_matches_timm_and_reads_label_names(timm_classifier, images):
    import timm
    from timm.data import create_transform, resolve_model_data_config

    model = timm.create_model(f"local-dir:{tiny_timm_classifier()}", pretrained=True).eval()
    transform = create_transform(**resolve_model_data_config(model))
    with torch.inference_mode():
        probs = model(torch.stack([transform(image) for image in images])).softmax(-1)
    ours = timm_classifier(images, top_k=None)
    labels = list(TIMM_DESCRIPTIONS.values())  # label_names shown through label_descriptions
    for row, result in zip(probs, ours, strict=True):
        expected = {labels[i]: float(p) for i, p in enumerate(row)}
        assert max(abs(r["score"] - expected[r["label"]]) for r in result) <= TOL
        assert [r["score"] for r in result] == sorted(expected.values(), reverse=True)
    by_name = mmenc.pipeline("image-classification", f"timm:{tiny_timm_classifier()}")
    assert by_name(images, top_k=None) == ours
    assert "timm" in repr(timm_classifier).lower()


def test_timm_labels_fall_back_to_id2label_imagenet_then_label_i(tmp_path, images):
    from mmenc_vit._tiny import tiny_timm
    from timm.data import ImageNetInfo

    folder = tmp_path / "plain"
    shutil.copytree(tiny_timm_classifier(), folder)
    config = json.loads((folder / "config.json").read_text())
    for key in ("label_names", "label_descriptions"):
        config.pop(key)
        config["pretrained_cfg"].pop(key, None)
    (folder / "config.json").write_text(json.dumps(config))
    plain = mmenc.pipeline("image-classification", folder, device="cpu")
    assert plain.labels == [f"LABEL_{i}" for i in range(5)]
    config["id2label"] = {str(i): f"kind {i}" for i in range(5)}
    (folder / "config.json").write_text(json.dumps(config))
    named = mmenc.pipeline("image-classification", folder, device="cpu")
    assert named.labels == [f"kind {i}" for i in range(5)]
    imagenet = mmenc.pipeline("image-classification", f"timm:{tiny_timm()}", device="cpu")
    assert imagenet.labels == ImageNetInfo("imagenet-1k").label_descriptions()
    assert imagenet.labels[281] == "tabby, tabby cat"


def test_new_heads_from_num_labels_or_id2label(caplog, images):
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        body = mmenc.pipeline("image-classification", "tiny-vit", num_labels=3, device="cpu")
    assert "new, untrained classification head" in caplog.text
    assert body.labels == ["LABEL_0", "LABEL_1", "LABEL_2"] and len(body(images[0])) == 3
    relabelled = mmenc.pipeline(
        "image-classification", tiny_vit_classifier(), id2label={0: "yes", 1: "no"}, device="cpu"
    )
    assert relabelled.labels == ["yes", "no"] and relabelled.model.config.num_labels == 2
    timm_head = mmenc.pipeline(
        "image-classification", tiny_timm_classifier(), id2label=["left", "right"], device="cpu"
    )
    assert timm_head.labels == ["left", "right"] and len(timm_head(images[0])) == 2
    for bad, match in [
        ({"num_labels": 0}, "positive"),
        ({"num_labels": 3, "id2label": ["a", "b"]}, "id2label has 2"),
        ({"id2label": {1: "a", 2: "b"}}, "0..1"),
    ]:
        with pytest.raises(ValueError, match=match):
            mmenc.pipeline("image-classification", "tiny-vit", **bad)
    with pytest.raises(ValueError, match="model object keeps its own head"):
        mmenc.pipeline(
            "image-classification", body.model, tokenizer=body.preprocessor, num_labels=2
        )


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("tiny-clip", r"image-classification.*CLIPModel.*ForImageClassification"),
        ("tiny-vit", r"ViTModel.*num_labels"),
        ("tiny-timm-registry", r"'tiny-timm' by name.*timm:NAME"),
    ],
)
def test_classification_refuses_models_without_a_classifier(model, match):
    model = "tiny-timm" if model == "tiny-timm-registry" else model
    with pytest.raises(mmenc.IncompatibleModelError, match=match):
        mmenc.pipeline("image-classification", model, device="cpu")


def test_timm_model_without_head_is_refused():
    import timm

    net = timm.create_model(f"local-dir:{tiny_timm_classifier()}", pretrained=True, num_classes=0)
    with pytest.raises(mmenc.IncompatibleModelError, match="no classifier head"):
        mmenc.pipeline("image-classification", net, device="cpu")


@pytest.mark.parametrize("folder", [tiny_vit_classifier, tiny_timm_classifier])
def test_classification_save_and_load_round_trip(folder, tmp_path, images):
    pipe = mmenc.pipeline("image-classification", folder(), top_k=3, device="cpu")
    pipe.save_pretrained(tmp_path / "saved")
    loaded = mmenc.pipeline(model=tmp_path / "saved", device="cpu")
    assert type(loaded) is type(pipe) and loaded.labels == pipe.labels
    assert loaded.options["top_k"] == 3
    assert loaded(images) == pipe(images)


def test_classification_default_model_loads_from_the_hf_cache(
    hf_cache_install, caplog, images, tmp_path
):
    with pytest.raises(mmenc.WeightsUnavailableError, match="google/vit-base-patch16-224"):
        mmenc.pipeline("image-classification", device="cpu")
    hf_cache_install(tiny_vit_classifier(), "google/vit-base-patch16-224", "3f49326")
    newer = tmp_path / "newer"  # the repo's main moved on: the pinned revision must still win
    shutil.copytree(tiny_vit_classifier(), newer)
    config = json.loads((newer / "config.json").read_text())
    config["id2label"] = {str(i): f"other {i}" for i in range(len(VIT_LABELS))}
    (newer / "config.json").write_text(json.dumps(config))
    hf_cache_install(newer, "google/vit-base-patch16-224", "f" * 40)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        pipe = mmenc.pipeline("image-classification", device="cpu")
    assert "google/vit-base-patch16-224" in caplog.text and "3f49326" in caplog.text
    assert pipe.labels == list(VIT_LABELS)
    local = mmenc.pipeline("image-classification", tiny_vit_classifier(), device="cpu")
    assert pipe(images[0]) == local(images[0])


# -- zero-shot-image-classification -----------------------------------------------------------
def _transformers_zero_shot(folder: Path) -> Any:
    import transformers

    return transformers.pipeline(
        "zero-shot-image-classification",
        model=transformers.AutoModel.from_pretrained(folder),
        tokenizer=transformers.AutoTokenizer.from_pretrained(folder),
        image_processor=transformers.AutoImageProcessor.from_pretrained(folder),
        device="cpu",
    )


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-siglip"])
@pytest.mark.parametrize("template", [None, "a blurry photo of a {}"])
def test_zero_shot_matches_transformers_pipeline(name, template, images):
    from mmenc.tasks.hf import checkpoint_for

    labels = ["cat", "dog", "a red car", "zebra"]
    options = {"hypothesis_template": template} if template else {}
    pipe = mmenc.pipeline("zero-shot-image-classification", name, device="cpu")
    reference = _transformers_zero_shot(Path(checkpoint_for(name)))
    ours = pipe(images, candidate_labels=labels, **options)
    theirs = [reference(image, candidate_labels=labels, **options) for image in images]
    assert max(_assert_same_ranking(o, t) for o, t in zip(ours, theirs, strict=True)) <= TOL
    assert list(ours[0][0]) == ["score", "label"]
    if name == "tiny-clip":
        assert sum(r["score"] for r in ours[0]) == pytest.approx(1)


def test_zero_shot_template_list_ensembles_label_embeddings(clip_zero_shot, images):
    encoder = clip_zero_shot.encoder
    labels, templates = ["cat", "dog"], ["a photo of a {}.", "a drawing of a {}.", "{}"]
    texts = [t.format(label) for label in labels for t in templates]
    per_text = encoder.encode_text(texts).view(2, 3, -1)
    classifier = F.normalize(per_text.mean(dim=1), dim=-1)
    logits = encoder.encode_image(images) @ classifier.T * encoder.logit_scale
    expected = logits.softmax(dim=-1)
    results = clip_zero_shot(images, candidate_labels=labels, hypothesis_template=templates)
    for row, result in zip(expected, results, strict=True):
        assert {r["label"]: r["score"] for r in result} == pytest.approx(
            dict(zip(labels, row.tolist(), strict=True)), abs=TOL
        )
    single = clip_zero_shot(images, candidate_labels=labels, hypothesis_template=templates[:1])
    assert single != results


def test_zero_shot_caches_label_embeddings_across_calls(images, monkeypatch):
    pipe = mmenc.pipeline("zero-shot-image-classification", "tiny-clip", device="cpu")
    calls: list[list[str]] = []
    original = pipe.encoder.encode_text

    def counting(texts: list[str], **kwargs: Any) -> torch.Tensor:
        calls.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(pipe.encoder, "encode_text", counting)
    first = pipe(images, candidate_labels=["cat", "dog"])
    assert calls == [["This is a photo of cat.", "This is a photo of dog."]]
    assert pipe(images, candidate_labels=["cat", "dog"]) == first
    assert pipe(images[0], candidate_labels=["dog", "cat"]) is not None
    assert len(calls) == 1  # same labels, same template: nothing encoded again
    pipe(images[0], candidate_labels=["cat", "dog", "bird"])
    assert calls[-1] == ["This is a photo of bird."]  # only the new label
    pipe(images[0], candidate_labels=["cat"], hypothesis_template=["a {}", "the {}"])
    assert calls[-1] == ["a cat", "the cat"]
    assert len(calls) == 3


@pytest.mark.parametrize("name", ["tiny-openclip", "tiny-blip"])
def test_zero_shot_runs_on_other_encoders_and_encoder_objects(name, images):
    encoder = mmenc.load(name, device="cpu")
    pipe = mmenc.pipeline("zero-shot-image-classification", encoder)
    assert pipe.encoder is encoder
    labels = ["cat", "dog", "car"]
    results = pipe(images, candidate_labels="cat, dog, car")  # comma-separated, as transformers
    scale = getattr(encoder, "logit_scale", 100.0)  # BLIP states none: CLIP's value
    texts = encoder.encode_text([f"This is a photo of {label}." for label in labels])
    expected = (encoder.encode_image(images) @ texts.T * scale).softmax(dim=-1)
    for row, result in zip(expected, results, strict=True):
        assert {r["label"]: r["score"] for r in result} == pytest.approx(
            dict(zip(labels, row.tolist(), strict=True)), abs=TOL
        )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "needs candidate_labels"),
        ({"candidate_labels": []}, "non-empty list"),
        ({"candidate_labels": ["cat", " "]}, r"1: the text is empty"),
        ({"candidate_labels": ["cat"], "hypothesis_template": "a photo"}, "'{}'"),
        ({"candidate_labels": ["cat"], "hypothesis_template": "a {label}"}, "'{}'"),
        ({"candidate_labels": ["cat"], "hypothesis_template": []}, "non-empty list"),
    ],
)
def test_zero_shot_refuses_bad_labels_and_templates(clip_zero_shot, images, options, match):
    with pytest.raises(ValueError, match=match):
        clip_zero_shot(images[0], **options)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("tiny-bert", r"zero-shot-image-classification cannot use 'tiny-bert'.*bert.*of text"),
        ("tiny-vit", r"cannot use 'tiny-vit'.*of image.*shared space"),
        ("tiny-blip-captioning", r"cannot use 'tiny-blip-captioning'"),
    ],
)
def test_zero_shot_refuses_encoders_without_a_shared_space(model, match):
    with pytest.raises(mmenc.IncompatibleModelError, match=match):
        mmenc.pipeline("zero-shot-image-classification", model, device="cpu")


def test_encoder_pipelines_refuse_tokenizers_objects_and_pinned_open_clip():
    with pytest.raises(ValueError, match="own tokenizer"):
        mmenc.pipeline("zero-shot-image-classification", "tiny-clip", tokenizer=object())
    with pytest.raises(TypeError, match=r"mmenc\.load"):
        mmenc.pipeline("image-feature-extraction", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="takes no revision"):
        mmenc.pipeline("image-feature-extraction", "tiny-openclip", revision="abc1234")


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-openclip"])
def test_zero_shot_save_and_load_round_trip(name, tmp_path, images):
    pipe = mmenc.pipeline(
        "zero-shot-image-classification", name, candidate_labels=["cat", "dog"], device="cpu"
    )
    pipe.save_pretrained(tmp_path / "saved")
    record = json.loads((tmp_path / "saved" / "mmenc_pipeline.json").read_text())
    assert record["model"] == name and record["options"] == {"candidate_labels": ["cat", "dog"]}
    loaded = mmenc.pipeline(model=tmp_path / "saved", device="cpu")
    assert loaded(images) == pipe(images)


def test_zero_shot_default_model_loads_from_the_hf_cache(
    hf_cache_install, caplog, images, tmp_path
):
    import transformers
    from mmenc_clip._tiny import tiny_clip

    with pytest.raises(mmenc.WeightsUnavailableError, match="openai/clip-vit-base-patch32"):
        mmenc.pipeline("zero-shot-image-classification", device="cpu")
    hf_cache_install(tiny_clip(), "openai/clip-vit-base-patch32", "3d74acf")
    newer = tmp_path / "newer"  # the repo's main moved on: the pinned revision must still win
    shutil.copytree(tiny_clip(), newer)
    model = transformers.CLIPModel.from_pretrained(newer)
    model.logit_scale.data.fill_(np.log(50.0))
    model.save_pretrained(newer)
    hf_cache_install(newer, "openai/clip-vit-base-patch32", "f" * 40)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        pipe = mmenc.pipeline("zero-shot-image-classification", device="cpu")
    assert "openai/clip-vit-base-patch32" in caplog.text and "3d74acf" in caplog.text
    assert pipe.encoder.name == "clip-vit-b-32"
    local = mmenc.pipeline("zero-shot-image-classification", "tiny-clip", device="cpu")
    assert pipe.encoder.logit_scale == pytest.approx(local.encoder.logit_scale) != 50.0
    labels = ["cat", "dog"]
    assert pipe(images, candidate_labels=labels) == local(images, candidate_labels=labels)


# -- image-to-text ----------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", [None, "a picture of"])
def test_captions_equal_generate_called_directly(captioner, images, prompt):
    model, processor = captioner.model, captioner.preprocessor
    text = None if prompt is None else [prompt] * 2
    expected = []
    for start in (0, 2):  # batches of two, as the pipeline runs them with batch_size=2
        inputs = processor(images=images[start : start + 2], text=text, return_tensors="pt")
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=6)
        expected += processor.batch_decode(ids, skip_special_tokens=True)
    captioner.batch_size = 2
    try:
        ours = captioner(images, prompt=prompt, max_new_tokens=6)
    finally:
        captioner.batch_size = captioner.default_batch_size
    assert ours == [[{"generated_text": caption.strip()}] for caption in expected]
    if prompt:
        assert all(r[0]["generated_text"].startswith(prompt) for r in ours)
    assert len(set(expected)) > 1  # different images, different captions


def test_caption_length_and_generate_kwargs(captioner, images):
    short = captioner(images[0], max_new_tokens=2)[0]["generated_text"]
    longer = captioner(images[0], max_new_tokens=8)[0]["generated_text"]
    assert longer.startswith(short) and len(longer.split()) > len(short.split())
    several = captioner(
        images[:2],
        max_new_tokens=3,
        generate_kwargs={"num_beams": 3, "num_return_sequences": 3},
    )
    assert [len(per_image) for per_image in several] == [3, 3]
    with pytest.raises(ValueError, match="twice"):
        captioner(images[0], max_new_tokens=3, generate_kwargs={"max_new_tokens": 3})
    for bad, error in [
        ({"prompt": ""}, ValueError),
        ({"max_new_tokens": 0}, ValueError),
        ({"max_new_tokens": "5"}, TypeError),
        ({"generate_kwargs": ["num_beams"]}, TypeError),
    ]:
        with pytest.raises(error):
            captioner(images[0], **bad)


def test_captioning_refuses_a_retrieval_checkpoint():
    with pytest.raises(
        mmenc.IncompatibleModelError,
        match=r"image-to-text.*BlipForImageTextRetrieval.*BlipForConditionalGeneration",
    ):
        mmenc.pipeline("image-to-text", "tiny-blip", device="cpu")


def test_captioner_from_a_model_object_and_saved(captioner, tmp_path, images):
    expected = captioner(images, max_new_tokens=4)
    from_object = mmenc.pipeline(
        "image-to-text", captioner.model, tokenizer=captioner.preprocessor, device="cpu"
    )
    assert from_object(images, max_new_tokens=4) == expected
    captioner.save_pretrained(tmp_path / "saved")
    loaded = mmenc.pipeline(model=tmp_path / "saved", device="cpu")
    assert loaded(images, max_new_tokens=4) == expected


# -- image-text-matching ----------------------------------------------------------------------
def test_matching_uses_blips_head_and_every_input_form(blip_matching, images):
    texts = ["a cat", "two dogs", "a red car", "a cat"]
    expected = blip_matching.encoder.match(images, texts).tolist()
    pairs = list(zip(images, texts, strict=True))
    results = blip_matching(pairs)
    assert [r["method"] for r in results] == ["itm"] * 4
    assert [r["score"] for r in results] == pytest.approx(expected, abs=TOL)
    assert len(set(expected)) == 4
    assert blip_matching([{"image": i, "text": t} for i, t in pairs]) == results
    assert blip_matching(images, text=texts) == results
    alone = blip_matching(pairs[0])  # a single pair gives a single result
    assert alone["score"] == pytest.approx(results[0]["score"], abs=TOL)  # no padding: not exact
    assert blip_matching({"image": images[0], "text": texts[0]}) == alone
    assert blip_matching(images[0], text=texts[0]) == alone
    same = blip_matching(images, text="a cat")
    assert [r["score"] for r in same] == pytest.approx(
        blip_matching.encoder.match(images, ["a cat"] * 4).tolist(), abs=TOL
    )


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-blip"])
def test_matching_cosine_equals_the_encoders_similarity(name, images):
    pipe = mmenc.pipeline("image-text-matching", name, method="cosine", device="cpu")
    texts = ["a cat", "a dog", "a cat", "a car"]
    expected = pipe.encoder.similarity(images, texts).diagonal().tolist()
    results = pipe(images, text=texts)
    assert [r["score"] for r in results] == pytest.approx(expected, abs=TOL)
    assert {r["method"] for r in results} == {"cosine"}
    if name == "tiny-clip":  # no matching head: cosine is what "auto" picks
        assert mmenc.pipeline("image-text-matching", pipe.encoder)(images, text=texts) == results
        with pytest.raises(ValueError, match="no image-text matching head"):
            pipe(images, text=texts, method="itm")


def test_matching_reports_bad_pairs(blip_matching, images, image_files):
    batch = [
        (images[0], "a cat"),
        {"image": images[0]},
        (images[1], ""),
        (image_files["missing"], "a cat"),
        [images[0], "a cat"],
        (images[2], 7),
    ]
    with pytest.raises(mmenc.InvalidInputError) as caught:
        blip_matching(batch)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [1, 2, 3, 4, 5]
    assert "'image' and 'text'" in problems[1] and "empty" in problems[2]
    assert "missing.png" in problems[3] and "text=" in problems[4] and "int" in problems[5]
    with pytest.raises(ValueError, match="2 texts for 4 images"):
        blip_matching(images, text=["a", "b"])
    with pytest.raises(ValueError, match="method"):
        blip_matching(images, text="a", method="dot")


def test_matching_refuses_image_only_encoders():
    with pytest.raises(mmenc.IncompatibleModelError, match=r"image-text-matching.*captioning"):
        mmenc.pipeline("image-text-matching", "tiny-blip-captioning", device="cpu")


def test_matching_save_and_load_round_trip(blip_matching, tmp_path, images):
    blip_matching.save_pretrained(tmp_path / "saved")
    loaded = mmenc.pipeline(model=tmp_path / "saved", device="cpu")
    assert loaded(images, text="a cat") == blip_matching(images, text="a cat")


# -- image-feature-extraction -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny-vit", "tiny-timm", "tiny-clip", "tiny-blip-captioning"])
def test_features_equal_encode_image(name, images):
    pipe = mmenc.pipeline("image-feature-extraction", name, device="cpu")
    expected = pipe.encoder.encode_image(images)
    assert torch.tensor(pipe(images)).sub(expected).abs().max() <= TOL
    raw = pipe.encoder.encode_image(images, normalize=False)
    tensors = pipe(images, normalize=False, return_tensors=True)
    assert torch.stack(tensors).sub(raw).abs().max() <= TOL
    single = pipe(images[0])
    assert isinstance(single, list) and len(single) == pipe.encoder.embed_dim
    with pytest.raises(TypeError, match="normalize"):
        pipe(images[0], normalize="yes")


@pytest.mark.parametrize("name", ["tiny-vit", "tiny-timm", "relative folder"])
def test_features_save_and_load_round_trip(name, tmp_path, images, monkeypatch):
    """Encoders are saved as the name they load by; a folder is recorded as an absolute path."""
    from mmenc_vit._tiny import tiny_vit

    if name == "relative folder":
        monkeypatch.chdir(tiny_vit().parent)
        name = tiny_vit().name
    encoder = mmenc.load(name, device="cpu")
    pipe = mmenc.pipeline("image-feature-extraction", encoder, normalize=False)
    pipe.save_pretrained(tmp_path / "saved")
    monkeypatch.chdir(tmp_path)
    loaded = mmenc.pipeline(model=tmp_path / "saved", device="cpu")
    assert loaded.options["normalize"] is False
    assert loaded(images) == pipe(images)


def test_features_refuse_text_encoders():
    with pytest.raises(mmenc.IncompatibleModelError, match=r"image-feature-extraction.*tiny-bert"):
        mmenc.pipeline("image-feature-extraction", "tiny-bert", device="cpu")


def test_images_from_arrays_and_cli(image_files, capsys):
    from mmenc.cli import main

    array = np.asarray(Image.open(image_files["png"]).convert("RGB"))
    pipe = mmenc.pipeline("image-feature-extraction", "tiny-vit", device="cpu")
    assert pipe(array) == pipe(image_files["png"])
    buffer = io.BytesIO()
    Image.open(image_files["png"]).save(buffer, format="PNG")
    assert pipe(buffer.getvalue()) == pipe(image_files["png"])
    folder = str(tiny_vit_classifier())
    code = main(["run", "image-classification", str(image_files["png"]), "-m", folder, "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0][0]["label"] in VIT_LABELS and len(printed[0]) == 5
    path = str(image_files["png"])
    assert main(["run", "zero-shot-image-classification", path, "-m", "tiny-clip",
                 "--labels", "cat, dog", "--json"]) == 0  # fmt: skip
    assert {r["label"] for r in json.loads(capsys.readouterr().out)[0]} == {"cat", "dog"}
    assert main(["run", "image-text-matching", path, "-m", "tiny-blip", "-o", "text=a cat"]) == 0
    assert "'method': 'itm'" in capsys.readouterr().out.replace('"', "'")
