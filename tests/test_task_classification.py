"""text-classification / sentiment-analysis and zero-shot-classification on tiny seeded models:
parity with transformers' own pipelines on identical weights, every option, bad input, head
options, defaults from the HF cache, saving and batching of (text x label) pairs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import transformers
from helpers import install_in_hf_cache
from mmenc_text._classify import BEST
from mmenc_text._tiny_classify import (
    MNLI_LABELS,
    MULTI_LABELS,
    tiny_multi_label,
    tiny_nli,
    tiny_nli_bert,
    tiny_sentiment,
)
from mmenc_text._zero_shot import nli_label_ids

import mmenc
from mmenc.errors import IncompatibleModelError, InvalidInputError, WeightsUnavailableError

TOLERANCE = 1e-5
TEXTS = [
    "I love this film, it is wonderful.",
    "The market price fell in the morning and the whole city was quiet and grey.",
    "Terrible.",
    "A cat sleeps on the mat while a dog runs across a green field in the sun.",
    "zebra",
]
LABELS = ["animals", "finance", "weather", "sports"]
PAIR = {"text": "The film was long.", "text_pair": "It was never boring."}
LONG = " ".join(["a much longer sentence about a dog in a field"] * 30)  # over 128 tokens


def same(ours: Any, theirs: Any) -> float:
    """Assert ``ours`` has the structure, labels and texts of ``theirs`` and scores within
    TOLERANCE; return the largest score difference."""
    if isinstance(theirs, float):
        assert isinstance(ours, float)
        assert ours == pytest.approx(theirs, abs=TOLERANCE)
        return abs(ours - theirs)
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        return max((same(ours[k], theirs[k]) for k in theirs), default=0.0)
    if isinstance(theirs, list):
        assert len(ours) == len(theirs), (ours, theirs)
        return max((same(a, b) for a, b in zip(ours, theirs, strict=True)), default=0.0)
    assert ours == theirs
    return 0.0


def reference(path: Path, task: str) -> Any:
    """transformers' own pipeline on the same folder's weights and tokenizer."""
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return transformers.pipeline(task, model=model, tokenizer=tokenizer)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from two threads, and on a busy machine the threads' wait for
    each other costs more than the work (0.4-1.5 s against 25 ms per zero-shot call)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sentiment() -> Path:
    return tiny_sentiment()


@pytest.fixture(scope="module")
def classify(sentiment: Path) -> Any:
    return mmenc.pipeline("sentiment-analysis", sentiment, batch_size=2)


@pytest.fixture(scope="module")
def classify_ref(sentiment: Path) -> Any:
    return reference(sentiment, "text-classification")


@pytest.fixture(scope="module")
def nli() -> Path:
    return tiny_nli()


@pytest.fixture(scope="module")
def zero_shot(nli: Path) -> Any:
    return mmenc.pipeline("zero-shot-classification", nli, batch_size=4)


@pytest.fixture(scope="module")
def zero_shot_ref(nli: Path) -> Any:
    return reference(nli, "zero-shot-classification")


# -- text-classification: parity -------------------------------------------------------------
CLASSIFY_CALLS = [
    pytest.param(TEXTS[0], {}, id="one text"),
    pytest.param(TEXTS, {}, id="list"),
    pytest.param(TEXTS[:1], {}, id="list of one"),
    pytest.param(TEXTS[0], {"top_k": 1}, id="one text top_k=1"),
    pytest.param(TEXTS, {"top_k": 1}, id="list top_k=1"),
    pytest.param(TEXTS[1], {"top_k": 2}, id="top_k=2"),
    pytest.param(TEXTS, {"top_k": None}, id="list top_k=None"),
    pytest.param(TEXTS[2], {"top_k": 5}, id="top_k over the label count"),
    pytest.param(TEXTS, {"function_to_apply": "sigmoid"}, id="sigmoid"),
    pytest.param(TEXTS, {"function_to_apply": "SOFTMAX", "top_k": None}, id="softmax"),
    pytest.param(TEXTS[3], {"function_to_apply": "none", "top_k": None}, id="none"),
    pytest.param(PAIR, {}, id="text pair"),
    pytest.param([PAIR, {"text": TEXTS[1]}], {}, id="list of pairs"),
    pytest.param(PAIR, {"top_k": None}, id="text pair top_k=None"),
]


@pytest.mark.parametrize(("inputs", "options"), CLASSIFY_CALLS)
def test_classification_equals_transformers(classify, classify_ref, inputs, options) -> None:
    assert same(classify(inputs, **options), classify_ref(inputs, **options)) < TOLERANCE


def test_mixed_texts_and_pairs_keep_input_order(classify, classify_ref) -> None:
    inputs = [TEXTS[0], PAIR, TEXTS[1], {"text": TEXTS[2], "text_pair": TEXTS[3]}]
    expected = [classify_ref(item, top_k=None) for item in inputs]
    assert same(classify(inputs, top_k=None), expected) < TOLERANCE


def test_both_labels_occur(classify) -> None:
    """The tiny model is not constant: the test texts get both labels."""
    labels = {r["label"] for r in classify(TEXTS)}
    assert labels == {"NEGATIVE", "POSITIVE"}


def test_multi_label_model_uses_sigmoid() -> None:
    path = tiny_multi_label()
    ours = mmenc.pipeline("text-classification", path)
    theirs = reference(path, "text-classification")
    assert same(ours(TEXTS, top_k=None), theirs(TEXTS, top_k=None)) < TOLERANCE
    scores = [r["score"] for r in ours(TEXTS[0], top_k=None)]
    assert {r["label"] for r in ours(TEXTS[0], top_k=None)} == set(MULTI_LABELS.values())
    assert sum(scores) != pytest.approx(1.0)  # independent probabilities, not a softmax


@pytest.mark.parametrize("problem_type", [None, "regression"])
def test_single_logit_head_gives_sigmoid_or_raw_value(problem_type: str | None) -> None:
    """transformers' "default" function: sigmoid for one logit, none for regression."""
    pipe = mmenc.pipeline("text-classification", "tiny-bert", num_labels=1)
    pipe.model.config.problem_type = problem_type
    theirs = transformers.pipeline(
        "text-classification", model=pipe.model, tokenizer=pipe.tokenizer
    )
    assert same(pipe(TEXTS, top_k=None), theirs(TEXTS, top_k=None)) < TOLERANCE


def test_return_logits_gives_the_model_logits(classify, sentiment: Path) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(sentiment)
    tokenizer = transformers.AutoTokenizer.from_pretrained(sentiment)
    with torch.inference_mode():
        logits = model(**tokenizer(TEXTS[1], return_tensors="pt")).logits[0]
    result = classify(TEXTS[1], return_logits=True, top_k=None)
    by_label = {r["label"]: r["score"] for r in result}
    for i, label in model.config.id2label.items():
        assert by_label[label] == pytest.approx(float(logits[i]), abs=TOLERANCE)
    assert result == classify(TEXTS[1], function_to_apply="none", top_k=None)
    with pytest.raises(ValueError, match=r"return_logits=True .* contradicts"):
        classify(TEXTS[1], return_logits=True, function_to_apply="softmax")


def test_model_object_with_its_tokenizer(sentiment: Path, classify_ref) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(sentiment)
    tokenizer = transformers.AutoTokenizer.from_pretrained(sentiment)
    ours = mmenc.pipeline("sentiment-analysis", model=model, tokenizer=tokenizer)
    assert same(ours(TEXTS), classify_ref(TEXTS)) < TOLERANCE


def test_options_given_at_build_are_call_defaults(sentiment: Path, classify) -> None:
    """Unlike transformers (which then nests a single text's list once more), a top_k given to
    pipeline() acts exactly as the same top_k given to each call."""
    everything = mmenc.pipeline("sentiment-analysis", sentiment, top_k=None)
    assert everything(TEXTS[0]) == classify(TEXTS[0], top_k=None)
    assert everything(TEXTS[0], top_k=1) == classify(TEXTS[0], top_k=1)
    assert len(everything(TEXTS[0])) == 2


def test_long_text_is_cut_with_a_warning(classify, classify_ref, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        ours = classify([TEXTS[0], LONG])
    assert "were cut to fit: item(s) 1" in caplog.text
    assert same(ours, classify_ref([TEXTS[0], LONG], truncation=True)) < TOLERANCE


def test_batches_are_length_sorted_and_results_in_input_order(sentiment: Path) -> None:
    pipe = mmenc.pipeline("text-classification", sentiment, batch_size=2)
    widths = _record_batches(pipe.model)
    together = pipe(TEXTS, top_k=None)
    assert same(together, [pipe(text, top_k=None) for text in TEXTS]) < TOLERANCE
    assert [n for n, _ in widths[:3]] == [2, 2, 1]
    assert [w for _, w in widths[:3]] == sorted((w for _, w in widths[:3]), reverse=True)


# -- text-classification: new heads, wrong heads ---------------------------------------------
def test_num_labels_puts_a_new_head_on_a_body(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        pipe = mmenc.pipeline("text-classification", "tiny-bert", num_labels=10)
    assert "new, untrained classification head" in caplog.text
    labels = [r["label"] for r in pipe(TEXTS[0], top_k=None)]
    assert sorted(labels) == sorted(f"LABEL_{i}" for i in range(10))
    assert sum(r["score"] for r in pipe(TEXTS[0], top_k=None)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "head",
    [
        {"id2label": ["low", "mid", "high"]},
        {"id2label": {"0": "low", "1": "mid", "2": "high"}, "num_labels": 3},
    ],
)
def test_id2label_names_the_new_head_labels(head: dict[str, Any]) -> None:
    pipe = mmenc.pipeline("text-classification", "tiny-bert", **head)
    assert {r["label"] for r in pipe(TEXTS[0], top_k=None)} == {"low", "mid", "high"}


def test_id2label_replaces_a_trained_head(sentiment: Path) -> None:
    pipe = mmenc.pipeline("text-classification", sentiment, id2label=["a", "b", "c"])
    assert len(pipe(TEXTS[0], top_k=None)) == 3


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"num_labels": 0}, "num_labels must be a positive integer"),
        ({"num_labels": 2, "id2label": ["a", "b", "c"]}, "num_labels=2 but id2label has 3"),
        ({"id2label": {1: "a", 2: "b"}}, "must number its labels 0, 1, 2"),
        ({"id2label": "abc"}, "must be a dict or a list of labels"),
    ],
)
def test_bad_head_options(head: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mmenc.pipeline("text-classification", "tiny-bert", **head)


def test_head_options_need_a_model_by_name(sentiment: Path) -> None:
    model = transformers.AutoModelForSequenceClassification.from_pretrained(sentiment)
    tokenizer = transformers.AutoTokenizer.from_pretrained(sentiment)
    with pytest.raises(ValueError, match="pass the model by name or folder"):
        mmenc.pipeline("text-classification", model, tokenizer=tokenizer, num_labels=3)


@pytest.mark.parametrize("task", ["text-classification", "zero-shot-classification"])
@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2"])
def test_model_without_a_classification_head_is_refused(task: str, name: str) -> None:
    with pytest.raises(IncompatibleModelError, match=f"{task} cannot use .*ForSequenceClass"):
        mmenc.pipeline(task, name)


def test_zero_shot_refuses_a_model_without_entailment(sentiment: Path) -> None:
    with pytest.raises(IncompatibleModelError, match=r"'entailment' label.*NEGATIVE"):
        mmenc.pipeline("zero-shot-classification", sentiment)


# -- text-classification: bad input and options -----------------------------------------------
def test_bad_items_are_all_named(classify) -> None:
    items = ["fine", "", 3, "  ", {"text": "x", "pair": "y"}, ["a", "b"], {"text": ""}]
    with pytest.raises(InvalidInputError) as info:
        classify(items)
    causes = dict(info.value.problems)
    assert sorted(causes) == [1, 2, 3, 4, 5, 6]
    assert "empty" in causes[1] and "empty" in causes[3] and "empty" in causes[6]
    assert "expected a str, got int" in causes[2]
    assert "keys 'text' and 'text_pair'" in causes[4]
    assert "not as a list" in causes[5]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"top_k": 0}, ValueError, "top_k must be a positive integer or None"),
        ({"top_k": "3"}, ValueError, "top_k must be a positive integer or None"),
        ({"function_to_apply": "tanh"}, ValueError, "function_to_apply must be one of"),
        ({"topk": 2}, TypeError, "unknown option.*'topk'.*top_k"),
    ],
)
def test_bad_classification_options(classify, options, error, message) -> None:
    with pytest.raises(error, match=message):
        classify(TEXTS[0], **options)


def test_empty_list_is_refused(classify, zero_shot) -> None:
    with pytest.raises(ValueError, match="list of inputs is empty"):
        classify([])
    with pytest.raises(ValueError, match="list of inputs is empty"):
        zero_shot([], LABELS)


# -- zero-shot-classification: parity --------------------------------------------------------
ZERO_SHOT_CALLS = [
    pytest.param(TEXTS[0], {"candidate_labels": LABELS}, id="one text"),
    pytest.param(TEXTS, {"candidate_labels": LABELS}, id="list"),
    pytest.param(TEXTS, {"candidate_labels": LABELS, "multi_label": True}, id="multi_label"),
    pytest.param(TEXTS[1], {"candidate_labels": ["finance"]}, id="one label"),
    pytest.param(TEXTS, {"candidate_labels": "animals, finance,weather"}, id="comma string"),
    pytest.param(
        TEXTS[2:],
        {"candidate_labels": LABELS, "hypothesis_template": "The topic is {}!"},
        id="template",
    ),
    pytest.param([TEXTS[0], LONG], {"candidate_labels": LABELS}, id="long text is cut"),
]


@pytest.mark.parametrize(("inputs", "options"), ZERO_SHOT_CALLS)
def test_zero_shot_equals_transformers(zero_shot, zero_shot_ref, inputs, options) -> None:
    assert same(zero_shot(inputs, **options), zero_shot_ref(inputs, **options)) < TOLERANCE


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_entailment_first_with_token_types(multi_label: bool) -> None:
    """A BERT NLI model: entailment is id 0, contradiction the last, segments by token types."""
    path = tiny_nli_bert()
    ours = mmenc.pipeline("zero-shot-classification", path)(TEXTS, LABELS, multi_label=multi_label)
    theirs = reference(path, "zero-shot-classification")(
        TEXTS, candidate_labels=LABELS, multi_label=multi_label
    )
    assert same(ours, theirs) < TOLERANCE


def test_zero_shot_output_shape(zero_shot) -> None:
    result = zero_shot(TEXTS[0], candidate_labels=LABELS)
    assert result["sequence"] == TEXTS[0]
    assert sorted(result["labels"]) == sorted(LABELS)
    assert result["scores"] == sorted(result["scores"], reverse=True)
    assert sum(result["scores"]) == pytest.approx(1.0)
    independent = zero_shot(TEXTS[0], candidate_labels=LABELS, multi_label=True)
    assert sum(independent["scores"]) != pytest.approx(1.0)


def test_all_pairs_run_together_length_sorted(nli: Path) -> None:
    """5 texts x 4 labels = 20 pairs in batches of 8: 3 forward passes, not 5 or 20, with
    the longest pairs first so that each batch pads little."""
    pipe = mmenc.pipeline("zero-shot-classification", nli, batch_size=8)
    calls = _record_batches(pipe.model)
    results = pipe(TEXTS, LABELS)
    assert [n for n, _ in calls] == [8, 8, 4]
    assert [w for _, w in calls] == sorted((w for _, w in calls), reverse=True)
    assert same(results, [pipe(text, LABELS) for text in TEXTS]) < TOLERANCE


@pytest.mark.parametrize(
    ("labels", "template", "message"),
    [
        ([], "This is {}.", "candidate_labels is empty"),
        (" , ,", "This is {}.", "candidate_labels is empty"),
        (["a", " "], "This is {}.", r"empty label\(s\) at position\(s\) \[1\]"),
        ([1, 2], "This is {}.", "candidate_labels must be a list of str"),
        (LABELS, "This is a label.", r"must contain \{\}"),
        (LABELS, "This is {label}.", r"must contain \{\}"),
        (LABELS, "This {} is {}.", r"exactly one \{\}"),
    ],
)
def test_bad_zero_shot_options(zero_shot, labels, template, message) -> None:
    with pytest.raises(ValueError, match=message):
        zero_shot(TEXTS[0], candidate_labels=labels, hypothesis_template=template)


def test_zero_shot_needs_labels_and_texts(zero_shot) -> None:
    with pytest.raises(ValueError, match="needs candidate_labels"):
        zero_shot(TEXTS[0])
    with pytest.raises(InvalidInputError) as info:
        zero_shot(["fine", "", None], LABELS)
    assert [i for i, _ in info.value.problems] == [1, 2]


def test_hypothesis_too_long_to_fit(zero_shot) -> None:
    template = "{} " + "word " * 200
    with pytest.raises(ValueError, match="cannot cut the input to the model's 128 tokens"):
        zero_shot(TEXTS[0], LABELS, hypothesis_template=template)


@pytest.mark.parametrize(
    ("id2label", "ids"),
    [
        (MNLI_LABELS, (2, 0)),
        ({0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}, (0, 2)),
        ({0: "contradiction", 1: "entailment", 2: "neutral"}, (1, 0)),
        ({0: "neutral", 1: "entailment", 2: "contradiction"}, (1, 2)),
        ({0: "entailment", 1: "not_entailment"}, (0, 1)),
        ({"0": "not_entailment", "1": "entailment"}, (1, 0)),
    ],
)
def test_nli_label_ids_from_id2label(id2label: dict[Any, str], ids: tuple[int, int]) -> None:
    config = transformers.PretrainedConfig(id2label=id2label)
    assert nli_label_ids(config) == ids


# -- defaults, saving ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "folder", "inputs", "options"),
    [
        ("sentiment-analysis", tiny_sentiment, TEXTS[0], {}),
        ("zero-shot-classification", tiny_nli, TEXTS[0], {"candidate_labels": LABELS}),
    ],
)
def test_default_model_from_the_hf_cache(task, folder, inputs, options, caplog) -> None:
    spec, _ = mmenc.get_task(task)
    revision = spec.default_revision + "0" * (40 - len(spec.default_revision))
    install_in_hf_cache(folder(), spec.default_model, revision)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        pipe = mmenc.pipeline(task)
    assert spec.default_model in caplog.text and spec.default_revision in caplog.text
    assert pipe(inputs, **options) == mmenc.pipeline(task, folder())(inputs, **options)


def test_uncached_model_names_the_repo() -> None:
    with pytest.raises(WeightsUnavailableError, match="nobody/no-such-sentiment-model"):
        mmenc.pipeline("text-classification", "nobody/no-such-sentiment-model")


def test_classification_save_and_reload(classify, tmp_path: Path) -> None:
    pipe = mmenc.pipeline("sentiment-analysis", tiny_sentiment(), top_k=None)
    saved = pipe.save_pretrained(tmp_path / "saved")
    again = mmenc.pipeline(model=saved)
    assert again.task == "text-classification"
    assert again.options["top_k"] is None and pipe.options["top_k"] is None
    assert again(TEXTS) == pipe(TEXTS)
    assert again(TEXTS[0], top_k=1) == classify(TEXTS[0], top_k=1)
    assert classify.options["top_k"] is BEST


def test_zero_shot_save_and_reload(nli: Path, tmp_path: Path) -> None:
    options = {"candidate_labels": "sports, politics", "hypothesis_template": "It is {}."}
    pipe = mmenc.pipeline("zero-shot-classification", nli, multi_label=True, **options)
    again = mmenc.pipeline(model=pipe.save_pretrained(tmp_path / "zs"))
    assert again.options["candidate_labels"] == ["sports", "politics"]
    assert again(TEXTS) == pipe(TEXTS)
    assert again(TEXTS[0], LABELS) == pipe(TEXTS[0], LABELS)


def _record_batches(model: torch.nn.Module) -> list[tuple[int, int]]:
    """(batch size, padded width) of every forward pass of ``model`` from now on."""
    calls: list[tuple[int, int]] = []

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        calls.append(tuple(kwargs["input_ids"].shape))  # type: ignore[arg-type]

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return calls
