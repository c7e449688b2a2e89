"""question-answering on a tiny seeded DistilBERT: spans and scores equal a brute-force
computation from AutoModelForQuestionAnswering's start/end logits, long contexts are split into
windows, every option and bad input is covered."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import install_in_hf_cache
from mmenc_text._tiny_qa import tiny_qa
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    BertTokenizer,
    DistilBertForQuestionAnswering,
)

import mmenc
from mmenc.errors import IncompatibleModelError, InvalidInputError, WeightsUnavailableError
from mmenc.tiny import materialize, seeded

TASK = "question-answering"
QUESTION = "Where does the zebra live?"
CONTEXT = "The zebra lives in the unaffable savanna of Kenya, far from the city of Nairobi."
FILLER = "Filler words about nothing in particular go here, again and again. "
LONG = FILLER * 12 + "The zebra lives in the savanna of Kenya. " + FILLER * 2
TOL = 1e-6


@pytest.fixture(scope="module")
def folder() -> Path:
    return tiny_qa()


@pytest.fixture(scope="module")
def qa(folder: Path) -> Any:
    return mmenc.pipeline(TASK, str(folder), device="cpu")


@pytest.fixture(scope="module")
def reference_model(folder: Path) -> tuple[Any, Any]:
    model = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def brute_force(
    reference_model: tuple[Any, Any],
    question: str,
    context: str,
    *,
    max_seq_len: int = 128,
    doc_stride: int = 64,
    max_answer_len: int = 15,
    top_k: int = 1,
    impossible: bool = False,
) -> list[dict[str, Any]]:
    """Every span of every window, one window per forward pass, scored in float64 loops."""
    model, tokenizer = reference_model
    windows = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    best: dict[tuple[int, int], float] = {}
    null = 1.0
    names = [name for name in tokenizer.model_input_names if name in windows]
    for w, ids in enumerate(windows["input_ids"]):
        with torch.no_grad():
            out = model(**{name: torch.tensor([windows[name][w]]) for name in names})
        in_context = [s == 1 for s in windows.sequence_ids(w)]
        allowed = [c or t == tokenizer.cls_token_id for c, t in zip(in_context, ids, strict=True)]
        p_start = _softmax(out.start_logits[0].tolist(), allowed)
        p_end = _softmax(out.end_logits[0].tolist(), allowed)
        null = min(null, p_start[0] * p_end[0])
        offsets = windows["offset_mapping"][w]
        for s in range(len(ids)):
            for e in range(s, min(len(ids), s + max_answer_len)):
                if in_context[s] and in_context[e]:
                    span = (offsets[s][0], offsets[e][1])
                    best[span] = max(best.get(span, 0.0), p_start[s] * p_end[e])
    answers = [
        {"score": score, "start": a, "end": b, "answer": context[a:b]}
        for (a, b), score in best.items()
    ]
    if impossible:
        answers.append({"score": null, "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda a: -a["score"])[:top_k]


def _softmax(logits: list[float], allowed: list[bool]) -> list[float]:
    top = max(x for x, ok in zip(logits, allowed, strict=True) if ok)
    exps = [math.exp(x - top) if ok else 0.0 for x, ok in zip(logits, allowed, strict=True)]
    return [x / sum(exps) for x in exps]


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> float:
    """Same spans in the same order, scores within TOL; returns the largest score difference."""
    assert [(a["start"], a["end"], a["answer"]) for a in got] == [
        (a["start"], a["end"], a["answer"]) for a in want
    ]
    diff = max(abs(a["score"] - b["score"]) for a, b in zip(got, want, strict=True))
    assert diff < TOL
    return diff


class Planted(DistilBertForQuestionAnswering):
    """The tiny model, but with a large bonus on the start and end logits of one token id, and a
    record of the shape of every batch it sees."""

    target: int
    shapes: list[tuple[int, ...]]

    def forward(self, input_ids: Any = None, **kwargs: Any) -> Any:
        output = super().forward(input_ids=input_ids, **kwargs)
        bonus = (input_ids == self.target).float() * 30.0
        output.start_logits = output.start_logits + bonus
        output.end_logits = output.end_logits + bonus
        self.shapes.append(tuple(input_ids.shape))
        return output


def planted(folder: Path, token: str, **kwargs: Any) -> tuple[Any, Planted]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = Planted.from_pretrained(folder)
    model.target, model.shapes = tokenizer.convert_tokens_to_ids(token), []
    return mmenc.pipeline(TASK, model, tokenizer=tokenizer, device="cpu", **kwargs), model


# -- parity with the brute-force computation ------------------------------------------------


def test_spans_and_scores_equal_brute_force(qa: Any, reference_model: Any) -> None:
    got = qa(question=QUESTION, context=CONTEXT, top_k=10, align_to_words=False)
    assert len(got) == 10
    assert_same(got, brute_force(reference_model, QUESTION, CONTEXT, top_k=10))
    for answer in got:
        assert CONTEXT[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.parametrize(("max_seq_len", "doc_stride"), [(48, 16), (40, 0)])
def test_long_context_windows_equal_brute_force(
    qa: Any, reference_model: Any, max_seq_len: int, doc_stride: int
) -> None:
    options = {"max_seq_len": max_seq_len, "doc_stride": doc_stride}
    got = qa(
        question=QUESTION,
        context=LONG,
        top_k=8,
        align_to_words=False,
        handle_impossible_answer=True,
        **options,
    )
    want = brute_force(reference_model, QUESTION, LONG, top_k=8, impossible=True, **options)
    assert_same(got, want)


def test_max_answer_len_equals_brute_force(qa: Any, reference_model: Any) -> None:
    got = qa(question=QUESTION, context=CONTEXT, top_k=6, max_answer_len=2, align_to_words=False)
    assert_same(got, brute_force(reference_model, QUESTION, CONTEXT, top_k=6, max_answer_len=2))
    tokenizer = reference_model[1]
    assert all(len(tokenizer.tokenize(a["answer"])) <= 2 for a in got)


def test_a_bert_model_gets_its_token_type_ids() -> None:
    folder = materialize("test-qa-bert-v1", _tiny_bert_qa)
    qa = mmenc.pipeline(TASK, str(folder), device="cpu", batch_size=3, max_seq_len=40)
    assert "token_type_ids" in qa.tokenizer.model_input_names
    model = (AutoModelForQuestionAnswering.from_pretrained(folder).eval(), qa.tokenizer)
    got = qa(question=QUESTION, context=LONG, top_k=5, align_to_words=False)
    assert_same(got, brute_force(model, QUESTION, LONG, top_k=5, max_seq_len=40, doc_stride=20))


def _tiny_bert_qa(folder: Path) -> None:
    from transformers import BertConfig, BertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(tiny_qa())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
    )
    with seeded(1):
        model = BertForQuestionAnswering(config)
        torch.nn.init.normal_(model.qa_outputs.weight, std=0.5)
        torch.nn.init.normal_(model.bert.embeddings.token_type_embeddings.weight, std=1.0)
    model.save_pretrained(folder)
    # A BERT tokenizer (it makes token_type_ids) on the same WordPiece vocabulary.
    BertTokenizer(vocab=tokenizer.get_vocab(), model_max_length=64).save_pretrained(folder)


def test_batching_does_not_change_results(qa: Any, folder: Path) -> None:
    items = [{"question": QUESTION, "context": c} for c in (CONTEXT, LONG, "Kenya.", CONTEXT[:30])]
    one = mmenc.pipeline(TASK, str(folder), device="cpu", batch_size=1)
    assert qa.batch_size == 8
    options = {"top_k": 3, "max_seq_len": 48}
    for a, b in zip(one(items, **options), qa(items, **options), strict=True):
        assert_same(a, b)


# -- long contexts ----------------------------------------------------------------------------


def test_answer_in_a_later_window_has_offsets_into_the_whole_context(folder: Path) -> None:
    qa, model = planted(folder, "zebra", batch_size=3, max_seq_len=32, doc_stride=8)
    other = "Nothing to see. " * 30 + "Here is a zebra at last."
    got = qa([{"question": QUESTION, "context": LONG}, {"question": "What?", "context": other}])
    assert got[0] == {**got[0], "answer": "zebra", "start": LONG.index("zebra")}
    assert got[1] == {**got[1], "answer": "zebra", "start": other.index("zebra")}
    assert LONG[got[0]["start"] : got[0]["end"]] == "zebra"
    # The windows of both inputs share batches of batch_size: all full but the last.
    rows = [shape[0] for shape in model.shapes]
    tokenize = functools.partial(
        qa.tokenizer,
        truncation="only_second",
        max_length=32,
        stride=8,
        return_overflowing_tokens=True,
    )
    windows = len(tokenize(QUESTION, LONG)["input_ids"]) + len(
        tokenize("What?", other)["input_ids"]
    )
    assert windows > 10
    assert sum(rows) == windows
    assert rows[:-1] == [3] * (len(rows) - 1)
    assert max(shape[1] for shape in model.shapes) <= 32


def test_handle_impossible_answer(folder: Path, reference_model: Any) -> None:
    qa, _ = planted(folder, "[CLS]")
    assert qa(question=QUESTION, context=CONTEXT)["answer"] != ""
    null = qa(question=QUESTION, context=CONTEXT, handle_impossible_answer=True)
    assert null["answer"] == "" and (null["start"], null["end"]) == (0, 0)
    assert null["score"] > 0.99
    # On the unplanted model, the null answer ranks among all spans at its own score.
    plain = mmenc.pipeline(TASK, str(folder), device="cpu", handle_impossible_answer=True)
    got = plain(question=QUESTION, context=CONTEXT, top_k=1000, align_to_words=False)
    assert_same(got, brute_force(reference_model, QUESTION, CONTEXT, top_k=1000, impossible=True))
    assert 0 < [a["answer"] for a in got].index("") < len(got) - 1


# -- options ----------------------------------------------------------------------------------


def test_top_k(qa: Any) -> None:
    single = qa(question=QUESTION, context=CONTEXT)
    assert set(single) == {"score", "start", "end", "answer"}
    got = qa(question=QUESTION, context=CONTEXT, top_k=4)
    assert len(got) == 4 and got[0] == single
    assert [a["score"] for a in got] == sorted((a["score"] for a in got), reverse=True)
    assert len({(a["start"], a["end"]) for a in got}) == 4
    assert len(qa(question="Who?", context="Kenya", top_k=5)) == 1  # one possible span


def test_align_to_words_widens_sub_words_to_words(qa: Any) -> None:
    raw = qa(question=QUESTION, context=CONTEXT, top_k=20, align_to_words=False)
    aligned = qa(question=QUESTION, context=CONTEXT, top_k=20)
    assert any(CONTEXT[a["end"]].isalnum() for a in raw)  # some raw spans end inside a word
    for answer in aligned:
        start, end = answer["start"], answer["end"]
        assert start == 0 or not CONTEXT[start - 1].isalnum()
        assert end == len(CONTEXT) or not CONTEXT[end].isalnum()
    start, end = raw[0]["start"], raw[0]["end"]
    while start > 0 and CONTEXT[start - 1].isalnum():
        start -= 1
    while end < len(CONTEXT) and CONTEXT[end].isalnum():
        end += 1
    assert (aligned[0]["start"], aligned[0]["end"], aligned[0]["score"]) == (
        start,
        end,
        raw[0]["score"],
    )


def test_max_question_len_cuts_the_question_at_a_word(
    qa: Any, caplog: pytest.LogCaptureFixture
) -> None:
    long_question = "where does the zebra live " + "and why " * 20
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        got = qa(question=long_question, context=CONTEXT, max_question_len=5)
    assert "max_question_len=5" in caplog.text and "'where does the zebra live'" in caplog.text
    assert got == qa(question="where does the zebra live", context=CONTEXT)


def test_a_question_that_leaves_no_room_for_the_context(qa: Any) -> None:
    words = "what " * 30
    with pytest.raises(InvalidInputError, match=r"item 1: the question takes 30 tokens"):
        qa(
            [{"question": "Why?", "context": CONTEXT}, {"question": words, "context": CONTEXT}],
            max_seq_len=40,
            doc_stride=10,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"max_answer_len": 0}, "max_answer_len must be an integer >= 1"),
        ({"max_question_len": 2.5}, "max_question_len must be an integer"),
        ({"doc_stride": -1}, "doc_stride must be an integer >= 0"),
        ({"max_seq_len": 32, "doc_stride": 32}, "doc_stride=32 .* smaller than max_seq_len=32"),
        ({"max_seq_len": 4096}, "max_seq_len=4096 is over the model's limit of 128"),
    ],
)
def test_bad_options(qa: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qa(question=QUESTION, context=CONTEXT, **options)


def test_window_options_are_checked_when_the_pipeline_is_built(folder: Path) -> None:
    with pytest.raises(ValueError, match="max_seq_len=512 is over the model's limit of 128"):
        mmenc.pipeline(TASK, str(folder), device="cpu", max_seq_len=512)


def test_unknown_option(qa: Any) -> None:
    with pytest.raises(TypeError, match=r"'topk'.*doc_stride"):
        qa(question=QUESTION, context=CONTEXT, topk=2)


# -- inputs -----------------------------------------------------------------------------------


def test_input_forms(qa: Any) -> None:
    one = qa(question=QUESTION, context=CONTEXT)
    assert qa({"question": QUESTION, "context": CONTEXT}) == one
    assert qa(QUESTION, CONTEXT) == one
    other = qa(question="Which city?", context=LONG)
    pair = [
        {"question": QUESTION, "context": CONTEXT},
        {"question": "Which city?", "context": LONG},
    ]
    assert qa(pair) == [one, other]
    assert qa(question=[QUESTION, "Which city?"], context=[CONTEXT, LONG]) == [one, other]
    also = qa(question="Which city?", context=CONTEXT)
    assert qa(question=[QUESTION, "Which city?"], context=CONTEXT) == [one, also]
    assert qa(question=QUESTION, context=(CONTEXT, LONG))[0] == one
    assert qa(pair, top_k=2)[1][0] == other  # a list of lists with top_k > 1


def test_input_form_errors(qa: Any) -> None:
    with pytest.raises(ValueError, match="2 questions and 3 contexts"):
        qa(question=["a?", "b?"], context=["x", "y", "z"])
    with pytest.raises(TypeError, match="not both"):
        qa({"question": QUESTION, "context": CONTEXT}, question=QUESTION)
    with pytest.raises(TypeError, match=r"needs question=\.\.\. and context=\.\.\."):
        qa()
    with pytest.raises(ValueError, match="list of inputs is empty"):
        qa([])
    with pytest.raises(ValueError, match="list of inputs is empty"):
        qa(question=[], context=[])


def test_bad_items_are_all_named(qa: Any) -> None:
    items: list[Any] = [
        {"question": QUESTION, "context": CONTEXT},
        {"question": "", "context": CONTEXT},
        {"question": QUESTION, "context": "  \n"},
        {"question": QUESTION},
        "just a string",
        {"question": QUESTION, "context": 42},
    ]
    with pytest.raises(InvalidInputError) as error:
        qa(items)
    assert error.value.problems == [
        (1, "the question is empty"),
        (2, "the context is empty"),
        (3, "missing 'context'"),
        (4, "expected a dict with 'question' and 'context', got str"),
        (5, "context: expected a str, got int (42)"),
    ]
    with pytest.raises(InvalidInputError, match="item 0: missing 'context'"):
        qa(question=QUESTION)


def test_a_context_without_tokens_gives_the_null_answer(qa: Any) -> None:
    got = qa(question=QUESTION, context="\x00\x01")
    assert (got["start"], got["end"], got["answer"]) == (0, 0, "")


# -- models -----------------------------------------------------------------------------------


def test_a_model_without_a_qa_head_is_refused() -> None:
    with pytest.raises(IncompatibleModelError, match=r"question-answering.*ForQuestionAnswering"):
        mmenc.pipeline(TASK, "tiny-bert", device="cpu")


def test_default_model_comes_from_the_hf_cache(
    folder: Path, qa: Any, caplog: pytest.LogCaptureFixture
) -> None:
    repo = "distilbert/distilbert-base-cased-distilled-squad"
    install_in_hf_cache(folder, repo, "626af31" + "0" * 33)
    with caplog.at_level(logging.WARNING, logger="mmenc"):
        default = mmenc.pipeline(TASK, device="cpu")
    assert repo in caplog.text and "626af31" in caplog.text
    assert default(question=QUESTION, context=CONTEXT) == qa(question=QUESTION, context=CONTEXT)


def test_an_uncached_repo_names_itself() -> None:
    with pytest.raises(WeightsUnavailableError, match="nobody/no-such-squad-model"):
        mmenc.pipeline(TASK, "nobody/no-such-squad-model", device="cpu")


def test_save_pretrained_round_trip(folder: Path, tmp_path: Path) -> None:
    qa = mmenc.pipeline(TASK, str(folder), device="cpu", top_k=3, max_answer_len=4)
    saved = qa.save_pretrained(tmp_path / "qa")
    again = mmenc.pipeline(model=saved, device="cpu")
    assert again.options == qa.options
    assert again(question=QUESTION, context=LONG) == qa(question=QUESTION, context=LONG)
