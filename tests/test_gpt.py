"""The gpt family: embeddings and log-likelihoods against direct transformers computations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mmenc

TEXTS = [
    "a photo of a cat",
    "a much longer sentence about a dog that runs across a green field in the morning sun",
    "zebra",
    "Ünïcödé text with accents and 漢字",
    "The river!",
]
LONG = " ".join(["zebra river photo"] * 80)  # well over the tiny model's 128 positions


@pytest.fixture(scope="module")
def folder() -> Path:
    from mmenc_gpt._tiny import tiny_gpt2

    return tiny_gpt2()


@pytest.fixture(scope="module")
def encoder() -> mmenc.Encoder:
    return mmenc.load("tiny-gpt2", device="cpu")


@pytest.fixture(scope="module")
def reference(folder: Path) -> tuple:
    """The tiny checkpoint loaded straight through transformers, outside mmenc."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.pad_token = tokenizer.eos_token
    base = AutoModel.from_pretrained(folder).eval()
    lm = AutoModelForCausalLM.from_pretrained(folder).eval()
    return tokenizer, base, lm


# -- the tokenizer ------------------------------------------------------------------------
def test_tokenizer_training_is_deterministic_and_saved_as_trained(folder: Path) -> None:
    from mmenc_gpt._tiny import END_OF_TEXT, VOCAB_SIZE, train_tokenizer
    from transformers import AutoTokenizer

    first, second = train_tokenizer(), train_tokenizer()
    assert first.to_str() == second.to_str()
    assert first.get_vocab_size() == VOCAB_SIZE
    saved = AutoTokenizer.from_pretrained(folder)
    assert saved.eos_token == saved.bos_token == END_OF_TEXT
    assert saved.pad_token is None  # the file on disk is left as GPT-2 ships: no pad token
    for text in TEXTS:
        assert saved(text)["input_ids"] == first.encode(text).ids
        assert saved.decode(saved(text)["input_ids"]) == text  # byte-level: lossless


# -- embeddings ---------------------------------------------------------------------------
def test_mean_embeddings_equal_direct_forward(encoder: mmenc.Encoder, reference: tuple) -> None:
    tokenizer, base, _ = reference
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = base(**batch).last_hidden_state
    weights = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * weights).sum(1) / weights.sum(1)
    got = encoder.encode_text(TEXTS, normalize=False)
    assert got.dtype == torch.float32 and got.shape == (len(TEXTS), 32)
    assert (got - expected).abs().max() <= 1e-5
    normalised = encoder.encode_text(TEXTS)
    assert (normalised - F.normalize(expected, dim=-1)).abs().max() <= 1e-5


def test_last_token_embeddings_equal_unpadded_forward(folder: Path, reference: tuple) -> None:
    tokenizer, base, _ = reference
    expected = []
    for text in TEXTS:  # one text at a time: no padding at all
        with torch.no_grad():
            expected.append(base(**tokenizer(text, return_tensors="pt")).last_hidden_state[0, -1])
    got = mmenc.load("tiny-gpt2", device="cpu", pooling="last").encode_text(TEXTS, normalize=False)
    assert (got - torch.stack(expected)).abs().max() <= 1e-5


def test_left_padding_tokenizer_gives_the_same_results(
    folder: Path, encoder: mmenc.Encoder, tmp_path: Path
) -> None:
    copy = tmp_path / "left-padded"
    shutil.copytree(folder, copy)
    config_file = copy / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["padding_side"] = "left"
    config_file.write_text(json.dumps(config))
    left = mmenc.load(str(copy), device="cpu", pooling="last")
    assert left.tokenizer.padding_side == "left"
    right = mmenc.load("tiny-gpt2", device="cpu", pooling="last")
    assert (left.encode_text(TEXTS) - right.encode_text(TEXTS)).abs().max() <= 1e-6
    assert (left.log_likelihood(TEXTS) - encoder.log_likelihood(TEXTS)).abs().max() <= 1e-6


def test_empty_text_is_embedded_as_the_end_of_text_token(encoder: mmenc.Encoder) -> None:
    empty, marker, other = encoder.encode_text(["", "<|endoftext|>", "zebra"])
    assert torch.allclose(empty, marker, atol=1e-6)
    assert empty.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(empty, other, atol=1e-3)


def test_long_texts_are_truncated_to_the_first_positions(encoder: mmenc.Encoder) -> None:
    ids = encoder.tokenizer(LONG)["input_ids"]
    assert len(ids) > 128
    head = encoder.tokenizer.decode(ids[:128])
    assert (encoder.encode_text([LONG]) - encoder.encode_text([head])).abs().max() <= 1e-5


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="use 'mean' or 'last'"):
        mmenc.load("tiny-gpt2", device="cpu", pooling="cls")


# -- log-likelihood -----------------------------------------------------------------------
def _direct_log_likelihood(text: str, tokenizer, lm, limit: int = 128) -> float:
    ids = [tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    ids = torch.tensor([ids[:limit]])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return logprobs.gather(-1, ids[0, 1:, None]).sum().item()


def test_log_likelihood_equals_direct_computation(encoder: mmenc.Encoder, reference: tuple) -> None:
    tokenizer, _, lm = reference
    texts = [*TEXTS, LONG]
    got = encoder.log_likelihood(texts)
    expected = torch.tensor([_direct_log_likelihood(t, tokenizer, lm) for t in texts])
    assert got.dtype == torch.float32 and got.device.type == "cpu" and got.shape == (len(texts),)
    assert (got - expected).abs().max() <= 1e-4
    assert (got < 0).all()


def test_first_token_is_scored_after_end_of_text(encoder: mmenc.Encoder, reference: tuple) -> None:
    tokenizer, _, lm = reference
    (token,) = tokenizer("a", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([[tokenizer.eos_token_id]])).logits[0, -1]
    expected = torch.log_softmax(logits, dim=-1)[token].item()
    assert encoder.log_likelihood(["a"]).item() == pytest.approx(expected, abs=1e-5)


def test_log_likelihood_is_batch_size_invariant_and_keeps_order(encoder: mmenc.Encoder) -> None:
    texts = [*TEXTS, LONG, ""]
    one = encoder.log_likelihood(texts, batch_size=1)
    for size in (2, 3, 32):
        assert (encoder.log_likelihood(texts, batch_size=size) - one).abs().max() <= 1e-4
    reversed_scores = encoder.log_likelihood(texts[::-1], batch_size=3)
    assert (reversed_scores - one.flip(0)).abs().max() <= 1e-4
    assert len(set(one.tolist())) == len(texts)  # rows differ, so order is really checked


def test_empty_text_has_log_likelihood_zero(encoder: mmenc.Encoder) -> None:
    assert encoder.log_likelihood([""]).tolist() == [0.0]
    scores = encoder.log_likelihood(["", "zebra", ""])
    assert scores[0] == 0.0 and scores[2] == 0.0 and scores[1] < 0


def test_log_likelihood_bad_items_name_their_index(encoder: mmenc.Encoder) -> None:
    with pytest.raises(mmenc.InvalidInputError) as caught:
        encoder.log_likelihood(["fine", 3, "also fine", None, "bad \ud800"])
    assert [i for i, _ in caught.value.problems] == [1, 3, 4]
    assert "item 1: expected a str, got int" in str(caught.value)
    assert "lone surrogate" in caught.value.problems[2][1]


def test_single_string_is_a_batch_of_one(encoder: mmenc.Encoder) -> None:
    assert encoder.log_likelihood("zebra").tolist() == encoder.log_likelihood(["zebra"]).tolist()


# -- dtype --------------------------------------------------------------------------------
def test_bfloat16_loads_and_encodes(encoder: mmenc.Encoder) -> None:
    half = mmenc.load("tiny-gpt2", device="cpu", dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    embeddings = half.encode_text(TEXTS)
    assert embeddings.dtype == torch.float32
    cosine = (embeddings * encoder.encode_text(TEXTS)).sum(-1)
    assert cosine.min() > 0.999  # measured 0.99997
    scores = half.log_likelihood(TEXTS)
    assert scores.dtype == torch.float32
    assert torch.allclose(scores, encoder.log_likelihood(TEXTS), rtol=0.01)  # measured 5e-5


# -- registry and resolver ----------------------------------------------------------------
def test_registered_names() -> None:
    assert {"gpt2", "distilgpt2", "tiny-gpt2"} <= set(mmenc.list_encoders(family="gpt"))
    assert mmenc.get_spec("openai-community/gpt2").name == "gpt2"
    assert mmenc.get_spec("distilbert/distilgpt2").name == "distilgpt2"
    assert mmenc.get_spec("tiny-gpt2").modalities == frozenset({"text"})


@pytest.mark.parametrize("name", ["gpt2", "distilgpt2", "openai-community/gpt2"])
def test_curated_names_need_weights_offline(name: str) -> None:
    with pytest.raises(mmenc.WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        mmenc.load(name, device="cpu")


def test_local_folder_resolves_to_the_gpt_family(folder: Path) -> None:
    spec = mmenc.get_spec(str(folder))
    assert spec.family == "gpt" and spec.plugin == "gpt"
    loaded = mmenc.load(str(folder), device="cpu")
    assert loaded.family == "gpt" and loaded.embed_dim == 32
    assert loaded.log_likelihood(["zebra"]).shape == (1,)


def test_resolver_declines_what_is_not_a_causal_lm(tmp_path: Path) -> None:
    import mmenc_gpt

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert mmenc_gpt.mmenc_resolve(str(tmp_path)) is None
    assert mmenc_gpt.mmenc_resolve(str(tmp_path / "missing")) is None
    assert mmenc_gpt.mmenc_resolve("not a name") is None


def test_causal_lm_detection() -> None:
    from mmenc_gpt import is_causal_lm

    assert is_causal_lm({"model_type": "qwen3"})
    assert is_causal_lm({"model_type": "custom", "architectures": ["MyForCausalLM"]})
    assert is_causal_lm({"architectures": ["GPT2LMHeadModel"]})
    assert not is_causal_lm({"model_type": "bert", "architectures": ["BertModel"]})
    assert not is_causal_lm({"model_type": "clip"})


def test_remote_code_is_not_trusted_unless_asked(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    seen: list[object] = []
    original = AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    mmenc.load(str(folder), device="cpu")
    mmenc.load(str(folder), device="cpu", trust_remote_code=True)
    assert seen == [False, True]
