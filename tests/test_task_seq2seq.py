"""summarization, translation and text2text-generation on tiny seeded BART, T5, NLLB-style and
M2M100 checkpoints: outputs equal ``model.generate`` called directly with the same arguments,
long inputs are split and joined (not cut), every option and bad input is covered."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import install_in_hf_cache
from mmenc_text._tiny_seq2seq import (
    MAX_TOKENS,
    SUMMARIZATION_PARAMS,
    T5_TASK_PARAMS,
    tiny_bart,
    tiny_m2m100,
    tiny_multilingual,
    tiny_t5,
)
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

import mmenc
from mmenc.errors import IncompatibleModelError, InvalidInputError, WeightsUnavailableError
from mmenc.tasks.hf import checkpoint_for

TEXT = "The old cat sleeps under the big tree. A small dog runs across the green field."
TEXTS = [
    "The cat sleeps.",
    TEXT,
    "Zebra in the city of blue houses at night, with a red car by an old river.",
]
# 24 sentences of about 16 tokens, six times the 64-token limit of the tiny models: 3 sentences
# fit a part, a fourth would not, so 8 parts (for the BART and the T5 tokenizer alike).
LONG = " ".join(f"Sentence {n} tells of the old cat under the tree." for n in range(24))
CHUNKS = 8
FRENCH = T5_TASK_PARAMS["translation_en_to_fr"]
SUMMARIZE = T5_TASK_PARAMS["summarization"]


def without_prefix(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "prefix"}


def without_lengths(params: dict[str, Any]) -> dict[str, Any]:
    """The task params that a call setting a length of its own keeps."""
    return {k: v for k, v in params.items() if k not in ("max_length", "min_length")}


@pytest.fixture(scope="module")
def folders() -> dict[str, Path]:
    return {
        "bart": tiny_bart(),
        "t5": tiny_t5(),
        "multi": tiny_multilingual(),
        "m2m100": tiny_m2m100(),
    }


@pytest.fixture(scope="module")
def references(folders: dict[str, Path]) -> dict[str, tuple[Any, Any]]:
    """Each tiny model and tokenizer loaded on their own, for direct ``generate`` calls."""
    return {
        name: (
            AutoModelForSeq2SeqLM.from_pretrained(folder).eval(),
            AutoTokenizer.from_pretrained(folder),
        )
        for name, folder in folders.items()
    }


@pytest.fixture(scope="module")
def summarizer(folders: dict[str, Path]) -> Any:
    return mmenc.pipeline("summarization", str(folders["bart"]), device="cpu")


@pytest.fixture(scope="module")
def text2text(folders: dict[str, Path]) -> Any:
    return mmenc.pipeline("text2text-generation", str(folders["t5"]), device="cpu")


@pytest.fixture(scope="module")
def translator(folders: dict[str, Path]) -> Any:
    return mmenc.pipeline("translation", str(folders["multi"]), device="cpu")


def generate(
    reference: tuple[Any, Any],
    texts: list[str],
    *,
    src_lang: str | None = None,
    seed: int | None = None,
    clean_up: bool = False,
    **kwargs: Any,
) -> list[str]:
    """``model.generate`` on ``texts`` as one batch, decoded without special tokens."""
    model, tokenizer = reference
    if src_lang is not None:
        tokenizer.src_lang = src_lang
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        output = model.generate(**encoded, **kwargs)
    return tokenizer.batch_decode(  # type: ignore[no-any-return]
        output, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up
    )


# -- outputs equal generate ----------------------------------------------------------------
def test_summarization_applies_the_models_task_params(summarizer, references):
    expected = generate(references["bart"], [TEXT], **SUMMARIZATION_PARAMS)
    assert summarizer(TEXT) == [{"summary_text": expected[0]}]
    plain = generate(references["bart"], [TEXT], max_new_tokens=12)
    assert plain != expected  # the task params change the output: this test can fail


def test_t5_summarization_adds_the_prefix(folders, references):
    summarize = mmenc.pipeline("summarization", str(folders["t5"]), device="cpu")
    expected = generate(references["t5"], ["summarize: " + TEXT], **without_prefix(SUMMARIZE))
    assert summarize(TEXT) == [{"summary_text": expected[0]}]


def test_caller_lengths_replace_the_task_params_lengths(summarizer, references):
    params = without_lengths(SUMMARIZATION_PARAMS)
    expected = generate(references["bart"], [TEXT], **params, max_new_tokens=3, min_new_tokens=2)
    result = summarizer(TEXT, max_new_tokens=3, min_new_tokens=2)
    assert result == [{"summary_text": expected[0]}]
    expected = generate(references["bart"], [TEXT], **params, max_new_tokens=3)
    assert summarizer(TEXT, max_new_tokens=3) == [{"summary_text": expected[0]}]


def test_t5_translation_uses_the_task_prefix(folders, references):
    translate = mmenc.pipeline("translation_en_to_fr", str(folders["t5"]), device="cpu")
    expected = generate(references["t5"], [FRENCH["prefix"] + TEXT], **without_prefix(FRENCH))
    assert translate(TEXT) == [{"translation_text": expected[0]}]
    assert translate.chunks(TEXT) == [TEXT]


def test_t5_translation_builds_a_prefix_from_language_names(folders, references):
    translate = mmenc.pipeline("translation", str(folders["t5"]), src_lang="en", tgt_lang="es")
    expected = generate(
        references["t5"], ["translate English to Spanish: " + TEXT], max_new_tokens=6
    )
    assert translate(TEXT, max_new_tokens=6) == [{"translation_text": expected[0]}]


@pytest.mark.parametrize(
    ("languages", "match"),
    [({"src_lang": "en", "tgt_lang": "xx"}, "'xx'"), ({"tgt_lang": "fr"}, "src_lang=None")],
)
def test_t5_translation_without_language_names_is_refused(folders, languages, match):
    translate = mmenc.pipeline("translation", str(folders["t5"]), device="cpu")
    with pytest.raises(ValueError, match=match):
        translate(TEXT, **languages)


def test_multilingual_translation_forces_the_target_language(translator, references):
    model, tokenizer = references["multi"]
    french = tokenizer.convert_tokens_to_ids("fra_Latn")
    kwargs = {"forced_bos_token_id": french, "max_new_tokens": 6}
    expected = generate(references["multi"], [TEXT], src_lang="deu_Latn", **kwargs)
    result = translator(TEXT, src_lang="deu_Latn", tgt_lang="fra_Latn", max_new_tokens=6)
    assert result == [{"translation_text": expected[0]}]
    output = model.generate(**tokenizer([TEXT], return_tensors="pt"), **kwargs)
    assert output[0, 1] == french  # the first generated token is the language code
    assert translator.tokenizer.src_lang == "eng_Latn"  # the call's source language is undone


def test_multilingual_source_defaults_to_the_tokenizers(translator, references):
    french = references["multi"][1].convert_tokens_to_ids("fra_Latn")
    expected = generate(
        references["multi"],
        [TEXT],
        src_lang="eng_Latn",
        forced_bos_token_id=french,
        max_new_tokens=6,
    )
    assert (
        translator(TEXT, tgt_lang="fra_Latn", max_new_tokens=6)[0]["translation_text"]
        == expected[0]
    )
    assert translator.language_codes() == {
        code: references["multi"][1].convert_tokens_to_ids(code)
        for code in ("eng_Latn", "fra_Latn", "deu_Latn")
    }


def test_m2m100_takes_two_letter_codes_from_the_task_name(folders, references):
    translate = mmenc.pipeline("translation_en_to_fr", str(folders["m2m100"]), device="cpu")
    tokenizer = references["m2m100"][1]
    french = tokenizer.get_lang_id("fr")
    expected = generate(
        references["m2m100"], [TEXT], src_lang="en", forced_bos_token_id=french, max_new_tokens=5
    )
    assert translate(TEXT, max_new_tokens=5) == [{"translation_text": expected[0]}]
    assert translate.language_codes()["fr"] == french and len(translate.language_codes()) == 100


def test_multilingual_language_errors(translator, folders):
    with pytest.raises(ValueError, match=r"needs tgt_lang=.*deu_Latn, eng_Latn, fra_Latn"):
        translator(TEXT)
    with pytest.raises(ValueError, match="tgt_lang='fr' is not a language code"):
        translator(TEXT, tgt_lang="fr")
    with pytest.raises(ValueError, match="src_lang='xx_Latn' is not a language code"):
        translator(TEXT, src_lang="xx_Latn", tgt_lang="fra_Latn")
    with pytest.raises(ValueError, match="src_lang='en' is not a language code"):  # at build time
        mmenc.pipeline("translation_en_to_fr", str(folders["multi"]), device="cpu")


def test_text2text_is_plain_generate(text2text, references):
    expected = generate(references["t5"], [TEXT], max_new_tokens=7)
    assert text2text(TEXT, max_new_tokens=7) == [{"generated_text": expected[0]}]


# -- batches -------------------------------------------------------------------------------
def test_a_list_gives_a_flat_list_in_input_order(folders, references):
    summarize = mmenc.pipeline(
        "summarization", str(folders["bart"]), batch_size=2, max_new_tokens=5, device="cpu"
    )
    batched = summarize(TEXTS)
    assert batched == [summarize(text)[0] for text in TEXTS]
    params = without_lengths(SUMMARIZATION_PARAMS)
    expected = [generate(references["bart"], [t], **params, max_new_tokens=5)[0] for t in TEXTS]
    assert [r["summary_text"] for r in batched] == expected
    assert len(set(expected)) == len(TEXTS)  # distinct outputs: a mix-up would show


def test_several_sequences_per_input_give_lists(text2text, references):
    options = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 5}
    single = text2text(TEXT, **options)
    assert single == [
        {"generated_text": text} for text in generate(references["t5"], [TEXT], **options)
    ]
    batched = text2text([TEXT, TEXTS[2]], **options)
    assert batched[0] == single and len(batched[1]) == 2


# -- every option --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"max_new_tokens": 4},
        {"max_length": 9, "min_length": 8},
        {"min_new_tokens": 6, "max_new_tokens": 6},
        {"num_beams": 3, "length_penalty": 0.5, "early_stopping": True, "max_new_tokens": 8},
        {"no_repeat_ngram_size": 1, "repetition_penalty": 1.5, "max_new_tokens": 8},
        {
            "do_sample": True,
            "seed": 3,
            "temperature": 0.7,
            "top_k": 20,
            "top_p": 0.9,
            "max_new_tokens": 6,
        },
        {"clean_up_tokenization_spaces": True, "max_new_tokens": 8},
    ],
)
def test_options_reach_generate(text2text, references, options, monkeypatch):
    direct = dict(options)
    clean_up = direct.pop("clean_up_tokenization_spaces", False)
    expected = generate(references["t5"], [TEXT], clean_up=clean_up, **direct)
    seen: dict[str, Any] = {}
    original = text2text.model.generate

    def spy(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(text2text.model, "generate", spy)
    assert text2text(TEXT, **options) == [{"generated_text": expected[0]}]
    direct.pop("seed", None)
    assert {k: seen[k] for k in direct} == direct  # passed on as given, not only equal by luck


def test_options_change_the_output(text2text):
    base = text2text(TEXT, max_new_tokens=8)[0]["generated_text"]
    assert text2text(TEXT, max_new_tokens=4)[0]["generated_text"] != base
    assert text2text(TEXT, max_new_tokens=8, no_repeat_ngram_size=1)[0]["generated_text"] != base
    sampled = {
        text2text(TEXT, do_sample=True, seed=s, max_new_tokens=5)[0]["generated_text"]
        for s in range(3)
    }
    assert len(sampled) > 1


def test_a_seed_repeats_sampling_and_leaves_the_global_rng_alone(text2text):
    state = torch.random.get_rng_state()
    first = text2text(TEXTS, do_sample=True, seed=7, max_new_tokens=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert text2text(TEXTS, do_sample=True, seed=7, max_new_tokens=5) == first


def test_clean_up_tokenization_spaces_reaches_the_decoding(text2text, monkeypatch):
    spaced = "the cat , the dog ."
    ids = text2text.tokenizer(spaced)["input_ids"]
    monkeypatch.setattr(text2text.model, "generate", lambda **_: torch.tensor([ids]))
    assert text2text(TEXT) == [{"generated_text": spaced}]  # v4's default: as decoded
    cleaned = text2text(TEXT, clean_up_tokenization_spaces=True)
    assert cleaned == [{"generated_text": "the cat, the dog."}]


# -- long inputs ---------------------------------------------------------------------------
def test_a_long_input_is_split_at_sentences_and_joined(text2text, references):
    tokenizer = text2text.tokenizer
    assert len(tokenizer(LONG)["input_ids"]) > 4 * MAX_TOKENS
    chunks = text2text.chunks(LONG)
    assert len(chunks) == CHUNKS
    assert " ".join(chunks) == LONG  # nothing cut
    assert all(chunk.endswith("tree.") for chunk in chunks)
    assert all(len(tokenizer(chunk)["input_ids"]) <= MAX_TOKENS for chunk in chunks)
    parts = [generate(references["t5"], [chunk], max_new_tokens=3)[0] for chunk in chunks]
    expected = " ".join(part.strip() for part in parts)
    assert text2text(LONG, max_new_tokens=3) == [{"generated_text": expected}]


def test_the_chunks_of_all_inputs_share_batches(summarizer, monkeypatch):
    rows: list[int] = []
    original = summarizer.model.generate

    def counting(**kwargs: Any) -> Any:
        rows.append(len(kwargs["input_ids"]))
        return original(**kwargs)

    monkeypatch.setattr(summarizer.model, "generate", counting)
    assert len(summarizer.chunks(LONG)) == CHUNKS
    results = summarizer([LONG, TEXT, LONG], max_new_tokens=2)
    assert rows == [8, 8, 1]  # 2 * 8 + 1 parts in batches of the default 8, longest first
    assert results[0] == results[2]


def test_the_prefix_and_language_code_count_against_the_limit(folders, translator):
    summarize = mmenc.pipeline("summarization", str(folders["t5"]), device="cpu")
    for pipe, prefix in ((summarize, SUMMARIZE["prefix"]), (translator, "")):
        chunks = pipe.chunks(LONG, **({} if prefix else {"tgt_lang": "fra_Latn"}))
        sizes = [len(pipe.tokenizer(prefix + chunk)["input_ids"]) for chunk in chunks]
        assert " ".join(chunks) == LONG and max(sizes) <= MAX_TOKENS
        assert max(sizes) > MAX_TOKENS - 14  # parts are filled, not one sentence each


def test_an_overlong_sentence_is_split_between_words(summarizer):
    sentence = " ".join(["the old cat sleeps under a tree"] * 20)  # no sentence end
    chunks = summarizer.chunks(sentence)
    assert len(chunks) > 1 and " ".join(chunks) == sentence
    assert all(len(summarizer.tokenizer(c)["input_ids"]) <= MAX_TOKENS for c in chunks)


def test_an_overlong_word_is_split_between_tokens(summarizer):
    word = "zebra" * 100
    chunks = summarizer.chunks(word)
    assert len(chunks) > 1 and "".join(chunks) == word
    assert all(len(summarizer.tokenizer(c)["input_ids"]) <= MAX_TOKENS for c in chunks)
    assert len(summarizer(word, max_new_tokens=2)) == 1


def test_a_tokenizer_without_offsets_splits_between_characters(folders):
    translate = mmenc.pipeline("translation_en_to_fr", str(folders["m2m100"]), device="cpu")
    assert not translate.tokenizer.is_fast  # sentencepiece, as Marian's
    word = "zebra" * 60
    for text, joiner in ((word, ""), (LONG, " ")):
        chunks = translate.chunks(text)
        assert len(chunks) > 1 and joiner.join(chunks) == text
        sizes = [len(translate.tokenizer(chunk)["input_ids"]) for chunk in chunks]
        assert max(sizes) <= MAX_TOKENS < max(sizes) + 14  # filled, within a sentence


# -- bad input, wrong models ---------------------------------------------------------------
def test_bad_items_are_named_before_any_generation(summarizer):
    with pytest.raises(InvalidInputError) as info:
        summarizer(["fine", "", "   ", 3])
    assert [i for i, _ in info.value.problems] == [1, 2, 3]
    assert "item 1: the text is empty" in str(info.value)
    with pytest.raises(ValueError, match="list of inputs is empty"):
        summarizer([])
    with pytest.raises(TypeError, match=r"unknown option.*'tgt_lang'"):
        summarizer(TEXT, tgt_lang="fra_Latn")


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-bert"])
def test_a_model_without_a_seq2seq_head_is_refused(name):
    with pytest.raises(IncompatibleModelError, match=r"summarization cannot use .*ForConditional"):
        mmenc.pipeline("summarization", name, device="cpu")


def test_a_decoder_only_model_object_is_refused():
    folder = checkpoint_for("tiny-gpt2")
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.config.architectures = None  # as for a model built in code
    with pytest.raises(IncompatibleModelError, match="not an encoder-decoder"):
        mmenc.pipeline("summarization", model, tokenizer=AutoTokenizer.from_pretrained(folder))


def test_a_model_object_with_its_tokenizer(references, summarizer):
    model, tokenizer = references["bart"]
    summarize = mmenc.pipeline("summarization", model, tokenizer=tokenizer, max_new_tokens=3)
    assert summarize(TEXT) == summarizer(TEXT, max_new_tokens=3)


# -- defaults and saving -------------------------------------------------------------------
def test_default_models_come_from_the_hf_cache(folders, summarizer, text2text, references, caplog):
    install_in_hf_cache(folders["bart"], "sshleifer/distilbart-cnn-12-6", "a4f8f3e" + "0" * 33)
    install_in_hf_cache(folders["t5"], "google-t5/t5-base", "686f1db" + "0" * 33)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        summarize = mmenc.pipeline("summarization", device="cpu")
        translate = mmenc.pipeline("translation_en_to_fr", device="cpu")
        generic = mmenc.pipeline("text2text-generation", device="cpu")
    logged = [r.getMessage() for r in caplog.records if r.name == "mmenc"]
    assert len(logged) == 3 and "'summarization'" in logged[0]
    assert "sshleifer/distilbart-cnn-12-6" in logged[0] and "a4f8f3e" in logged[0]
    assert all("google-t5/t5-base" in m and "686f1db" in m for m in logged[1:])
    assert summarize(TEXT, max_new_tokens=3) == summarizer(TEXT, max_new_tokens=3)
    expected = generate(references["t5"], [FRENCH["prefix"] + TEXT], **without_prefix(FRENCH))
    assert translate(TEXT) == [{"translation_text": expected[0]}]
    assert generic(TEXT, max_new_tokens=3) == text2text(TEXT, max_new_tokens=3)


def test_an_uncached_model_names_the_repo():
    with pytest.raises(WeightsUnavailableError, match="nobody/no-such-summarizer"):
        mmenc.pipeline("summarization", "nobody/no-such-summarizer", device="cpu")


def test_save_pretrained_round_trip(translator, tmp_path):
    translate = mmenc.pipeline(
        "translation",
        translator.model,
        tokenizer=translator.tokenizer,
        tgt_lang="deu_Latn",
        max_new_tokens=5,
    )
    translate.save_pretrained(tmp_path)
    loaded = mmenc.pipeline(model=str(tmp_path), device="cpu")
    assert type(loaded) is type(translate) and loaded.task == "translation"
    assert loaded.options == translate.options
    assert loaded(TEXTS) == translate(TEXTS)
    assert loaded.tokenizer.src_lang == "eng_Latn"
