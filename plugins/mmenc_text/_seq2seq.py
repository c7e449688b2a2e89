"""summarization, translation and text2text-generation with encoder-decoder models.

transformers v5 removed these pipelines but kept ``AutoModelForSeq2SeqLM``; the outputs here are
shaped as v4's were. A model's ``task_specific_params`` for the task (t5's ``"summarize: "``
prefix, distilbart-cnn's beam settings) are applied as v4 applied them, under the caller's own
options. Multilingual models (NLLB, M2M100, mBART) get ``src_lang`` on the tokenizer and the
target language forced as the first generated token.

An input longer than the model's input limit is never cut: it is split where a sentence ends
(else between words, else between tokens) into parts that each fit, the parts of all inputs are
generated together in length-sorted batches, and each input's outputs are joined in order.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.inputs import check_nonblank_text
from mmenc.runtime import seeded
from mmenc.tasks.hf import TransformersPipeline

# Architecture endings of transformers' text-to-text models (BartForConditionalGeneration,
# MarianMTModel, EncoderDecoderModel, SeamlessM4TForTextToText, ...).
HEADS = ("ForConditionalGeneration", "MTModel", "EncoderDecoderModel", "ForTextToText")
# Options handed to ``generate``; None leaves the model's own setting.
GENERATION_OPTIONS = (
    "max_new_tokens",
    "max_length",
    "min_new_tokens",
    "min_length",
    "num_beams",
    "num_return_sequences",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "length_penalty",
    "early_stopping",
)
LENGTH_OPTIONS = {"max_new_tokens", "max_length", "min_new_tokens", "min_length"}
# T5 has relative positions and states no limit of its own; it was trained on 512 tokens.
UNSTATED_LIMIT = 512
# Where a sentence ends: after . ! ? … (and closing quotes or brackets) before a space, or
# after the CJK full stops, which take no space.
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+|[。！？]\s*")
WORD_END = re.compile(r"\s+")
# English names for T5-style prefixes ("translate English to German: ").
LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "hi": "Hindi",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


class Seq2SeqPipeline(TransformersPipeline):
    """Text in, generated text out, one ``[{output_key: ...}]`` per input (v4's shape).

    A list of texts gives a list of dicts, or a list of lists of dicts when
    ``num_return_sequences`` > 1.
    """

    model_class = "AutoModelForSeq2SeqLM"
    heads = HEADS
    unstated_limit = UNSTATED_LIMIT

    output_key: ClassVar[str] = "generated_text"
    defaults: ClassVar[dict[str, Any]] = {
        **dict.fromkeys(GENERATION_OPTIONS),
        "seed": None,
        "clean_up_tokenization_spaces": False,
    }

    @classmethod
    def _check_loaded(cls, model: Any, preprocessor: Any, task: str) -> None:
        super()._check_loaded(model, preprocessor, task)
        if not getattr(model.config, "is_encoder_decoder", False):
            raise IncompatibleModelError(
                f"{task} cannot use {type(model).__name__}: it is not an encoder-decoder model. "
                f"Pick a text-to-text model (BART, T5, Marian, M2M100, ...) for {task}."
            )

    def __call__(self, inputs: Any, **options: Any) -> Any:
        results = super().__call__(inputs, **options)
        if not self._is_single(inputs) and all(len(result) == 1 for result in results):
            return [result[0] for result in results]  # v4 flattened one result per text
        return results

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        return check_nonblank_text(item)

    def chunks(self, text: str, **options: Any) -> list[str]:
        """The parts a call with ``options`` splits ``text`` into to fit the model's input
        limit (the task prefix included): ``[text]`` when it fits whole."""
        with self._setup({**self.options, **self._checked_options(options)}) as (prefix, _):
            return self._split(text, prefix)

    def _run(self, items: list[str], options: dict[str, Any]) -> list[Any]:
        with self._setup(options) as (prefix, generate_kwargs):
            parts = [
                (i, part) for i, text in enumerate(items) for part in self._split(text, prefix)
            ]
            outputs = self._generate([prefix + part for _, part in parts], generate_kwargs, options)
        per_item: list[list[list[str]]] = [[] for _ in items]
        for (i, _), sequences in zip(parts, outputs, strict=True):
            per_item[i].append(sequences)
        return [
            [{self.output_key: _join(pieces)} for pieces in zip(*item_parts, strict=True)]
            for item_parts in per_item
        ]

    # -- the task's prefix and generation settings -----------------------------------------
    @contextmanager
    def _setup(self, options: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The text prefix and ``generate`` arguments of a call (a context, so that a
        subclass can set the tokenizer up for the call and put it back afterwards)."""
        yield self._with_task_params(self.task, options, {})

    def _with_task_params(
        self, key: str, options: dict[str, Any], extra: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The prefix and ``generate`` arguments: the model's ``task_specific_params[key]``
        (v4 applied them), overridden by ``extra`` and by the options the caller set."""
        params = dict((getattr(self.model.config, "task_specific_params", None) or {}).get(key, {}))
        prefix = params.pop("prefix", "") or ""
        known = self.model.generation_config.to_dict()
        given = {k: options[k] for k in GENERATION_OPTIONS if options[k] is not None}
        if given.keys() & LENGTH_OPTIONS:  # the caller's lengths replace the model's ones
            params.pop("max_length", None)
            params.pop("min_length", None)
        return prefix, {**{k: v for k, v in params.items() if k in known}, **extra, **given}

    # -- splitting long inputs -------------------------------------------------------------
    def _split(self, text: str, prefix: str) -> list[str]:
        """``text`` in consecutive parts that each fit the model with ``prefix``."""

        def fits(piece: str) -> bool:
            encoded = self.tokenizer(prefix + piece, verbose=False)  # no too-long warning
            return len(encoded["input_ids"]) <= self.max_tokens

        if fits(text):
            return [text]  # as given, as v4 fed it
        levels = [_ends(SENTENCE_END, text), _ends(WORD_END, text)]
        parts, start = [], 0
        while start < len(text):
            end = self._longest_fit(text, start, levels, fits)
            if piece := text[start:end].strip():
                parts.append(piece)
            start = end
        return parts

    def _longest_fit(
        self, text: str, start: int, levels: list[list[int]], fits: Callable[[str], bool]
    ) -> int:
        """The furthest end of a part from ``start``: a sentence end if one fits, else a word
        end, else a token boundary. Each level searches only before the first end of the level
        above, which was already too far."""
        limit = len(text)
        for ends in [*levels, None]:
            if ends is None:
                ends = self._token_ends(text, start, limit)
            cuts = ends[bisect.bisect_right(ends, start) : bisect.bisect_left(ends, limit)]
            cuts.append(limit)
            end = _furthest(cuts, lambda end: fits(text[start:end].strip()))
            if end is not None:
                return end
            limit = cuts[0]
        raise ValueError(
            f"{self.task}: the model's input limit of {self.max_tokens} tokens leaves no room "
            "for text after the task prefix and the special tokens"
        )

    def _token_ends(self, text: str, start: int, limit: int) -> list[int]:
        """Where the tokens of ``text[start:limit]`` end (every character for a tokenizer that
        reports no offsets)."""
        if not getattr(self.tokenizer, "is_fast", False):
            return list(range(start + 1, limit + 1))
        spans = self.tokenizer(
            text[start:limit], add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return sorted({start + end for _, end in spans["offset_mapping"]})

    # -- generating ------------------------------------------------------------------------
    def _generate(
        self, texts: list[str], generate_kwargs: dict[str, Any], options: dict[str, Any]
    ) -> list[list[str]]:
        """Every sequence generated for each text, batched longest first."""
        count = generate_kwargs.get("num_return_sequences") or 1
        results: list[list[str]] = [[] for _ in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode(), seeded(options["seed"], self.model.device):
            for batch in self.batches(order):
                encoded = self.tokenizer(
                    [texts[i] for i in batch], padding=True, return_tensors="pt"
                ).to(self.model.device)
                output = self.model.generate(**encoded, **generate_kwargs)
                decoded = self.tokenizer.batch_decode(
                    output,
                    skip_special_tokens=True,
                    clean_up_tokenization_spaces=options["clean_up_tokenization_spaces"],
                )
                for row, i in enumerate(batch):
                    results[i] = decoded[row * count : (row + 1) * count]
        return results


class SummarizationPipeline(Seq2SeqPipeline):
    """``summarizer(text)`` → ``[{'summary_text': ...}]``."""

    output_key = "summary_text"


class Text2TextGenerationPipeline(Seq2SeqPipeline):
    """``text2text(text)`` → ``[{'generated_text': ...}]``."""


class TranslationPipeline(Seq2SeqPipeline):
    """``translator(text)`` → ``[{'translation_text': ...}]``.

    ``src_lang`` / ``tgt_lang`` (``translation_en_to_fr`` sets them) choose the languages: for a
    multilingual model they are its language codes (``"fra_Latn"``, ``"fr"``, ``"fr_XX"``); for
    T5 they pick the ``task_specific_params`` prefix, or name the languages in one; a model that
    translates one pair of languages ignores them.
    """

    output_key = "translation_text"
    defaults: ClassVar[dict[str, Any]] = {
        **Seq2SeqPipeline.defaults,
        "src_lang": None,
        "tgt_lang": None,
    }

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.multilingual = isinstance(getattr(type(tokenizer), "src_lang", None), property)
        self.default_src_lang = tokenizer.src_lang if self.multilingual else None
        if self.options["tgt_lang"] is not None:  # a wrong language fails now, not at the call
            with self._setup(self.options):
                pass

    @contextmanager
    def _setup(self, options: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        src, tgt = options["src_lang"], options["tgt_lang"]
        key = f"translation_{src}_to_{tgt}" if src and tgt else self.task
        if not self.multilingual:
            prefix, generate_kwargs = self._with_task_params(key, options, {})
            yield prefix or self._named_prefix(src, tgt), generate_kwargs
            return
        codes = self.language_codes()
        src = src or self.default_src_lang
        if tgt is None:
            raise ValueError(
                f"{self.task}: this multilingual model needs tgt_lang=..., the target language "
                f"code (one of: {_listed(codes)})"
            )
        for option, code in (("src_lang", src), ("tgt_lang", tgt)):
            if code not in codes:
                raise ValueError(
                    f"{self.task}: {option}={code!r} is not a language code of this model; "
                    f"its codes are: {_listed(codes)}"
                )
        self.tokenizer.src_lang = src  # the tokenizer marks the source language itself
        try:
            yield self._with_task_params(key, options, {"forced_bos_token_id": codes[tgt]})
        finally:
            self.tokenizer.src_lang = self.default_src_lang

    def language_codes(self) -> dict[str, int]:
        """Each language code of a multilingual model → the token id that marks it."""
        table = getattr(self.tokenizer, "lang_code_to_id", None)  # M2M100, mBART
        if table:
            return dict(table)
        extra = getattr(self.tokenizer, "extra_special_tokens", None) or []  # NLLB
        codes = [str(token) for token in extra] if isinstance(extra, (list, tuple)) else []
        return {code: self.tokenizer.convert_tokens_to_ids(code) for code in codes}

    def _named_prefix(self, src: str | None, tgt: str | None) -> str:
        """T5's prefix from the language names when the model lists none for the pair."""
        if not (src or tgt) or not self.model.config.model_type.endswith("t5"):
            return ""
        if src not in LANGUAGE_NAMES or tgt not in LANGUAGE_NAMES:
            raise ValueError(
                f"{self.task}: T5 needs the prefix 'translate X to Y: ', and this model lists "
                f"none for src_lang={src!r}, tgt_lang={tgt!r}; pass both as codes of "
                f"{_listed(LANGUAGE_NAMES)}, or write the prefix into the text and use "
                "text2text-generation"
            )
        return f"translate {LANGUAGE_NAMES[src]} to {LANGUAGE_NAMES[tgt]}: "


def _furthest(cuts: list[int], fits: Callable[[int], bool]) -> int | None:
    """The last of ``cuts`` (ascending) where ``fits`` holds, assuming that once a part is too
    long every longer one is too; None if even the first does not fit. Galloping, then
    bisecting, tokenizes a few parts about as long as the answer, however long the text."""
    if not cuts or not fits(cuts[0]):
        return None
    good, step = 0, 1
    while good + step < len(cuts) and fits(cuts[good + step]):
        good, step = good + step, step * 2
    bad = min(good + step, len(cuts))
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if fits(cuts[middle]) else (good, middle)
    return cuts[good]


def _ends(pattern: re.Pattern[str], text: str) -> list[int]:
    return [match.end() for match in pattern.finditer(text)]


def _join(pieces: tuple[str, ...]) -> str:
    """One output from the outputs of an input's parts, in order."""
    return pieces[0] if len(pieces) == 1 else " ".join(piece.strip() for piece in pieces)


def _listed(names: Any) -> str:
    return ", ".join(sorted(names)) or "none"
