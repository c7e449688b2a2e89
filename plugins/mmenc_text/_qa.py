"""question-answering: the answer span to a question in a context, as transformers v4 gave it.

transformers v5 removed this pipeline but kept ``AutoModelForQuestionAnswering``. The model
scores every token as the start and as the end of the answer; a span's score is
``p_start * p_end``, the two probabilities being softmaxes over the context tokens and the CLS
token (v4's normalisation, so scores match v4's for the same model). A context longer than
``max_seq_len`` is split into windows that overlap by ``doc_stride`` tokens; the windows of all
inputs go through the model together in batches, and each input's answers are the best spans
over its windows, given as character offsets into the original context.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from mmenc.inputs import check_text
from mmenc.tasks.hf import TransformersPipeline

logger = logging.getLogger("mmenc")

KEYS = ("question", "context")
CONTEXT = 1  # the context is the second sequence of each (question, context) pair
# The smallest value of each integer option; None (where it is the default) means "from the model".
LOWEST = {"top_k": 1, "max_answer_len": 1, "max_question_len": 1, "max_seq_len": 1, "doc_stride": 0}


class QuestionAnsweringPipeline(TransformersPipeline):
    """``qa(question=..., context=...)`` → ``{'score', 'start', 'end', 'answer'}``.

    Also takes a ``{'question', 'context'}`` dict, a list of them, or lists for ``question`` /
    ``context`` (a single string on one side is paired with every item of the other).
    """

    model_class = "AutoModelForQuestionAnswering"
    heads = ("ForQuestionAnswering",)
    needs_fast_tokenizer = True  # answers are character spans of the context
    unstated_limit = 384

    defaults: ClassVar[dict[str, Any]] = {
        "top_k": 1,
        "doc_stride": None,  # min(max_seq_len // 2, 128)
        "max_answer_len": 15,
        "max_seq_len": None,  # min(the model's limit, 384)
        "max_question_len": 64,
        "handle_impossible_answer": False,
        "align_to_words": True,
    }

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self._window(self.options)  # refuse impossible window sizes now, not at a call

    def __call__(
        self, *inputs: Any, question: Any = None, context: Any = None, **options: Any
    ) -> Any:
        """Answers for one question (a dict, or a list of dicts with ``top_k`` > 1) or a list.

        As in transformers v4: ``qa(question=..., context=...)``, ``qa(question, context)``,
        ``qa({'question': ..., 'context': ...})`` or ``qa([dict, ...])``.
        """
        if len(inputs) == 2 and question is None and context is None:
            (question, context), inputs = inputs, ()
        if question is not None or context is not None:
            if inputs:
                raise TypeError(f"{self.task}: pass inputs or question= / context=, not both")
            return super().__call__(_pairs(question, context), **options)
        if len(inputs) != 1:
            raise TypeError(
                f"{self.task} needs question=... and context=..., or a dict (or a list of dicts) "
                "with 'question' and 'context'"
            )
        return super().__call__(inputs[0], **options)

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        for name, value in options.items():
            if name not in LOWEST or (value is None and self.defaults[name] is None):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < LOWEST[name]:
                raise ValueError(
                    f"{self.task}: {name} must be an integer >= {LOWEST[name]}, not {value!r}"
                )
        return options

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        if not isinstance(item, Mapping):
            return f"expected a dict with 'question' and 'context', got {type(item).__name__}"
        missing = [key for key in KEYS if key not in item]
        if missing:
            return f"missing {' and '.join(map(repr, missing))}"
        for key in KEYS:
            why = check_text(item[key])
            if why:
                return f"{key}: {why}"
            if not item[key].strip():
                return f"the {key} is empty"
        max_seq_len, doc_stride = self._window(options)
        _, length = self._clip_question(item["question"], options["max_question_len"])
        room = max_seq_len - length - self.tokenizer.num_special_tokens_to_add(pair=True)
        if room <= doc_stride:
            return (
                f"the question takes {length} tokens and leaves {room} of max_seq_len="
                f"{max_seq_len} for the context, which must be more than doc_stride={doc_stride}; "
                "shorten the question, lower max_question_len or doc_stride, or raise max_seq_len"
            )
        return None

    def _window(self, options: dict[str, Any]) -> tuple[int, int]:
        """``max_seq_len`` and ``doc_stride``, their defaults filled in from the model's limit."""
        limit = self.max_tokens
        max_seq_len = options["max_seq_len"] or min(limit, 384)
        doc_stride = options["doc_stride"]
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if max_seq_len > limit:
            raise ValueError(
                f"{self.task}: max_seq_len={max_seq_len} is over the model's limit of {limit} "
                "tokens; lower it (long contexts are split into windows anyway)"
            )
        if doc_stride >= max_seq_len:
            raise ValueError(
                f"{self.task}: doc_stride={doc_stride} (the overlap of two windows, in tokens) "
                f"must be smaller than max_seq_len={max_seq_len}"
            )
        return max_seq_len, doc_stride

    def _clip_question(self, question: str, limit: int) -> tuple[str, int]:
        """The question cut to at most ``limit`` tokens (at a word start where one fits), and
        its length in tokens: a long question must not crowd the context out of the window."""
        encoded = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        if len(encoded["input_ids"]) <= limit:
            return question, len(encoded["input_ids"])
        words = encoded.word_ids()
        first = words.index(words[limit])  # the first token of the word that does not fit
        cut = encoded["offset_mapping"][first if first > 0 else limit][0]
        clipped = question[:cut].rstrip()
        return clipped, len(self.tokenizer(clipped, add_special_tokens=False)["input_ids"])

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        max_seq_len, doc_stride = self._window(options)
        questions = []
        for index, item in enumerate(items):
            question, _ = self._clip_question(item["question"], options["max_question_len"])
            if question != item["question"]:
                logger.warning(
                    "%s: question %d is longer than max_question_len=%d tokens; using %r",
                    self.task,
                    index,
                    options["max_question_len"],
                    question,
                )
            questions.append(question)
        encoded = self.tokenizer(
            questions,
            [item["context"] for item in items],
            truncation="only_second",
            max_length=max_seq_len,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        spans: list[dict[tuple[int, int], float]] = [{} for _ in items]
        nulls = [1.0 for _ in items]
        for window, (found, null) in enumerate(self._score_windows(encoded, options)):
            owner = encoded["overflow_to_sample_mapping"][window]
            for span, score in found.items():
                spans[owner][span] = max(score, spans[owner].get(span, score))
            nulls[owner] = min(nulls[owner], null)  # v4: the null answer's score in its best window
        return [
            _answers(item["context"], found, null, options)
            for item, found, null in zip(items, spans, nulls, strict=True)
        ]

    @torch.inference_mode()
    def _score_windows(
        self, encoded: Any, options: dict[str, Any]
    ) -> list[tuple[dict[tuple[int, int], float], float]]:
        """Per window: its best character spans with their scores, and its null score.

        Windows run longest first, so that each batch pads little.
        """
        count = len(encoded["input_ids"])
        order = sorted(range(count), key=lambda w: -len(encoded["input_ids"][w]))
        results: list[Any] = [None] * count
        cls_id = self.tokenizer.cls_token_id
        names = [name for name in self.tokenizer.model_input_names if name in encoded]
        for batch in self.batches(order):
            features = self.tokenizer.pad(
                {name: [encoded[name][w] for w in batch] for name in names},
                padding_side="right",
                return_tensors="pt",
            ).to(self.model.device)
            ids = features["input_ids"]
            context = torch.zeros_like(ids, dtype=torch.bool)
            for row, window in enumerate(batch):
                sequence = encoded.sequence_ids(window)
                context[row, : len(sequence)] = torch.tensor([s == CONTEXT for s in sequence])
            cls = ids == cls_id if cls_id is not None else torch.zeros_like(context)
            output = self.model(**features)
            scores, null = span_scores(
                output.start_logits, output.end_logits, context, cls, options["max_answer_len"]
            )
            for row, window in enumerate(batch):
                results[window] = (
                    self._best_spans(encoded, window, scores[row], options),
                    null[row].item(),
                )
        return results

    def _best_spans(
        self, encoded: Any, window: int, scores: torch.Tensor, options: dict[str, Any]
    ) -> dict[tuple[int, int], float]:
        """The ``top_k`` best distinct character spans of one window. Several token spans can
        give one character span (sub-words aligned to whole words), so more are taken when
        duplicates leave fewer than ``top_k``."""
        top_k, width = options["top_k"], scores.shape[-1]
        valid = int((scores >= 0).sum())
        take = top_k
        while True:
            values, flat = scores.flatten().topk(min(take, valid))
            found: dict[tuple[int, int], float] = {}
            for score, index in zip(values.tolist(), flat.tolist(), strict=True):
                start, end = divmod(index, width)
                span = self._characters(encoded, window, start, end, options["align_to_words"])
                found.setdefault(span, score)
            if len(found) >= top_k or take >= valid:
                return found
            take *= 2

    @staticmethod
    def _characters(
        encoded: Any, window: int, start: int, end: int, align: bool
    ) -> tuple[int, int]:
        """Token span → character span of the context (widened to whole words if ``align``)."""
        if align:
            first = encoded.word_to_chars(window, encoded.token_to_word(window, start), CONTEXT)
            last = encoded.word_to_chars(window, encoded.token_to_word(window, end), CONTEXT)
            return first.start, last.end
        offsets = encoded["offset_mapping"][window]
        return offsets[start][0], offsets[end][1]


def span_scores(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context: torch.Tensor,
    cls: torch.Tensor,
    max_answer_len: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of every (start, end) token span, ``[window, start, end]``, and the null answer's
    score, for a batch of windows.

    Start and end probabilities are softmaxes over the context and CLS tokens (``context``,
    ``cls``: boolean masks); a span is scored ``p_start * p_end`` when both ends are in the
    context and it is 1 to ``max_answer_len`` tokens long, else -1. The null answer scores
    ``p_start * p_end`` of the first token (the CLS token, where a model has one).
    """
    keep = context | cls
    p_start = start_logits.float().masked_fill(~keep, float("-inf")).softmax(-1)
    p_end = end_logits.float().masked_fill(~keep, float("-inf")).softmax(-1)
    length = context.shape[1]
    band = torch.ones(length, length, dtype=torch.bool, device=context.device)
    band = band.triu().tril(max_answer_len - 1)
    valid = context[:, :, None] & context[:, None, :] & band
    scores = (p_start[:, :, None] * p_end[:, None, :]).masked_fill(~valid, -1.0)
    return scores, p_start[:, 0] * p_end[:, 0]


def _answers(
    context: str, spans: dict[tuple[int, int], float], null: float, options: dict[str, Any]
) -> Any:
    """The ``top_k`` answers of one input, best first; the null answer competes when impossible
    answers are handled, and stands alone when the context had no token to answer with."""
    answers: list[dict[str, Any]] = [
        {"score": score, "start": start, "end": end, "answer": context[start:end]}
        for (start, end), score in spans.items()
    ]
    if options["handle_impossible_answer"] or not answers:
        answers.append({"score": null, "start": 0, "end": 0, "answer": ""})
    answers.sort(key=lambda answer: -answer["score"])
    return answers[0] if options["top_k"] == 1 else answers[: options["top_k"]]


def _pairs(question: Any, context: Any) -> Any:
    """``question=`` / ``context=`` as one dict or a list of dicts; a string on one side is
    paired with every item of a list on the other. A side left out stays out, to be reported."""
    given = {
        key: value
        for key, value in zip(KEYS, (question, context), strict=True)
        if value is not None
    }
    lists = {key: list(value) for key, value in given.items() if isinstance(value, (list, tuple))}
    if not lists:
        return given
    lengths = {key: len(value) for key, value in lists.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"question-answering got {lengths['question']} questions and {lengths['context']} "
            "contexts; pass lists of the same length, or one string for all"
        )
    count = next(iter(lengths.values()))
    return [
        {key: lists[key][i] if key in lists else value for key, value in given.items()}
        for i in range(count)
    ]
