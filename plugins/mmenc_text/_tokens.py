"""token-classification / ner: a label per token, or entities grouped by ``aggregation_strategy``,
each with character offsets into the original text.

Words are the tokenizer's own words (a fast tokenizer's ``word_ids``), not guessed from the
characters around a token. A text longer than the model's limit is read in overlapping windows,
each token labelled from the window where it has the most context on both sides, so nothing is
cut off.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import torch

from mmenc.tasks.base import checked_choice
from mmenc.tasks.hf import TransformersPipeline

STRATEGIES = ("none", "simple", "first", "average", "max")


@dataclass(frozen=True)
class Token:
    """One non-special token of a text and its label probabilities."""

    index: int  # position among the text's tokens, special tokens counted (transformers' index)
    token: str  # the tokenizer's token ("##kel"); the text itself for an unknown token
    word: int | None  # which of the tokenizer's words it belongs to
    start: int
    end: int
    probs: torch.Tensor  # (num_labels,), float32


class TokenClassificationPipeline(TransformersPipeline):
    """Labels tokens with a ``...ForTokenClassification`` model; see the module docstring.

    ``num_labels`` / ``id2label`` put a new, untrained head on the model's body.
    """

    model_class = "AutoModelForTokenClassification"
    heads = ("ForTokenClassification",)
    new_head_allowed = True
    needs_fast_tokenizer = True

    defaults: ClassVar[dict[str, Any]] = {"aggregation_strategy": "none", "ignore_labels": ["O"]}

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        if "aggregation_strategy" in options:
            strategy = options["aggregation_strategy"]
            options["aggregation_strategy"] = checked_choice(
                "aggregation_strategy", strategy, STRATEGIES
            )
        labels = options.get("ignore_labels", [])
        if isinstance(labels, str) or not all(isinstance(label, str) for label in labels):
            raise ValueError(f"ignore_labels must be a list of label names, not {labels!r}")
        return options

    # -- running --------------------------------------------------------------------------
    def _run(self, items: list[str], options: dict[str, Any]) -> list[list[dict[str, Any]]]:
        encodings = [
            self.tokenizer(
                text, return_offsets_mapping=True, return_special_tokens_mask=True, verbose=False
            )
            for text in items
        ]
        probs = self._label_probs([encoding["input_ids"] for encoding in encodings])
        strategy, ignored = options["aggregation_strategy"], set(options["ignore_labels"])
        results = []
        for text, encoding, text_probs in zip(items, encodings, probs, strict=True):
            entities = self._entities(self._tokens(text, encoding, text_probs), strategy)
            results.append(
                [e for e in entities if e.get("entity_group", e.get("entity")) not in ignored]
            )
        return results

    def _label_probs(self, texts: list[list[int]]) -> list[torch.Tensor]:
        """Label probabilities (tokens, labels) per tokenized text, special tokens included,
        reading texts over the model's limit window by window."""
        rows = [(i, window) for i, ids in enumerate(texts) for window in self._windows(ids)]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][1].ids))
        row_probs: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        with torch.inference_mode():
            for chunk in self.batches(order):
                batch = self.tokenizer.pad(
                    {"input_ids": [rows[r][1].ids for r in chunk]}, return_tensors="pt"
                ).to(self.device)
                logits = self.model(**batch).logits.float()
                for b, r in enumerate(chunk):
                    row_probs[r] = logits[b, batch["attention_mask"][b].bool()].softmax(-1).cpu()
        merged = []
        for i, ids in enumerate(texts):
            windows = [(w, p) for (t, w), p in zip(rows, row_probs, strict=True) if t == i]
            merged.append(_merge_windows(windows, len(ids)))
        return merged

    @cached_property
    def _template(self) -> tuple[int, int]:
        """How many special tokens the tokenizer puts before and after a text."""
        full = self.tokenizer("x", verbose=False)["input_ids"]
        bare = self.tokenizer("x", add_special_tokens=False)["input_ids"]
        head = next(h for h in range(len(full)) if full[h : h + len(bare)] == bare)
        return head, len(full) - head - len(bare)

    def _windows(self, ids: list[int]) -> list[Window]:
        """The rows to run for one text: the text itself, or overlapping windows of it, each with
        the text's leading and trailing special tokens."""
        if len(ids) <= self.max_tokens:
            return [Window(ids, 0, 0, len(ids))]
        head, tail = self._template
        end = len(ids) - tail
        span = self.max_tokens - head - tail
        starts = [*range(head, end - span, max(span // 2, 1)), end - span]
        return [
            Window([*ids[:head], *ids[s : s + span], *ids[end:]], head, s, s + span) for s in starts
        ]

    def _tokens(self, text: str, encoding: Any, probs: torch.Tensor) -> list[Token]:
        words = encoding.word_ids()
        tokens = []
        for k, token_id in enumerate(encoding["input_ids"]):
            if encoding["special_tokens_mask"][k]:
                continue
            start, end = encoding["offset_mapping"][k]
            unknown = token_id == self.tokenizer.unk_token_id
            token = text[start:end] if unknown else self.tokenizer.convert_ids_to_tokens(token_id)
            tokens.append(Token(k, token, words[k], start, end, probs[k]))
        return tokens

    # -- aggregation ----------------------------------------------------------------------
    def _entities(self, tokens: list[Token], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            entities = [
                {
                    **self._label(t.probs),
                    "index": t.index,
                    "word": t.token,
                    "start": t.start,
                    "end": t.end,
                }
                for t in tokens
            ]
            return entities if strategy == "none" else self._group(entities)
        return self._group([self._word_entity(word, strategy) for word in _words(tokens)])

    def _word_entity(self, tokens: list[Token], strategy: str) -> dict[str, Any]:
        """One label per word, so that a word is never split between two entities."""
        if strategy == "first":
            probs = tokens[0].probs
        elif strategy == "max":
            probs = max(tokens, key=lambda t: float(t.probs.max())).probs
        else:
            probs = torch.stack([t.probs for t in tokens]).mean(0)
        word = self.tokenizer.convert_tokens_to_string([t.token for t in tokens])
        return {**self._label(probs), "word": word, "start": tokens[0].start, "end": tokens[-1].end}

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adjacent entities of one type join, unless the later one begins a new entity (B-)."""
        groups: list[list[dict[str, Any]]] = []
        for entity in entities:
            begins, tag = _tag(entity["entity"])
            if groups and not begins and tag == _tag(groups[-1][-1]["entity"])[1]:
                groups[-1].append(entity)
            else:
                groups.append([entity])
        return [
            {
                "entity_group": _tag(group[0]["entity"])[1],
                "score": sum(e["score"] for e in group) / len(group),
                "word": self.tokenizer.convert_tokens_to_string([e["word"] for e in group]),
                "start": group[0]["start"],
                "end": group[-1]["end"],
            }
            for group in groups
        ]

    def _label(self, probs: torch.Tensor) -> dict[str, Any]:
        score, label = probs.max(-1)
        return {"entity": self.model.config.id2label[int(label)], "score": float(score)}


@dataclass(frozen=True)
class Window:
    """Token ids to run, and which positions of the whole text its tokens ``[lo, hi)`` are; they
    sit in the row from ``offset`` on (after the leading special tokens)."""

    ids: list[int]
    offset: int
    lo: int
    hi: int


def _merge_windows(windows: Sequence[tuple[Window, torch.Tensor]], length: int) -> torch.Tensor:
    """Probabilities for every position of a text: from its only window, or each position from
    the window whose centre is nearest (where it has most context on both sides). The special
    tokens around the text are never labelled; their rows stay zero."""
    if len(windows) == 1:
        return windows[0][1]
    merged = windows[0][1].new_zeros(length, windows[0][1].shape[-1])
    for k, (window, probs) in enumerate(windows):
        start = _cut(windows[k - 1][0], window) if k else window.lo
        stop = _cut(window, windows[k + 1][0]) if k + 1 < len(windows) else window.hi
        merged[start:stop] = probs[
            window.offset + start - window.lo : window.offset + stop - window.lo
        ]
    return merged


def _cut(left: Window, right: Window) -> int:
    """The first position nearer the centre of ``right`` than of ``left`` (equal-sized windows)."""
    return (left.lo + left.hi + right.lo + right.hi - 2) // 4 + 1


def _words(tokens: list[Token]) -> list[list[Token]]:
    """Consecutive tokens of one word; a token outside any word is a word of its own."""
    keyed = itertools.groupby(
        tokens, key=lambda t: (t.word, None if t.word is not None else t.index)
    )
    return [list(group) for _, group in keyed]


def _tag(label: str) -> tuple[bool, str]:
    """Whether a label begins an entity, and its type: "B-PER" → (True, "PER"); "I-PER" and
    a label without a B-/I- prefix continue one."""
    prefix, _, tag = label.partition("-")
    if prefix in ("B", "I") and tag:
        return prefix == "B", tag
    return False, label
