"""fill-mask: the likeliest tokens for each mask token of a text, from a masked language model.

A text must hold between one and ``max_masks`` mask tokens and fit the model's limit: a text
without a mask, with too many masks or too long is refused (naming it) before any model work,
rather than cut. Several masks are predicted independently, each with the others still masked.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.inputs import check_text
from mmenc.tasks.base import is_positive_int
from mmenc.tasks.hf import TransformersPipeline

logger = logging.getLogger("mmenc")

# BertForPreTraining checkpoints carry the masked-LM head too (and load as BertForMaskedLM).
HEADS = ("ForMaskedLM", "BertForPreTraining")


class FillMaskPipeline(TransformersPipeline):
    """Predicts masked tokens; see the module docstring."""

    model_class = "AutoModelForMaskedLM"
    heads = HEADS

    defaults: ClassVar[dict[str, Any]] = {"top_k": 5, "targets": None, "max_masks": 5}

    @classmethod
    def _check_loaded(cls, model: Any, preprocessor: Any, task: str) -> None:
        super()._check_loaded(model, preprocessor, task)
        if preprocessor.mask_token_id is None:
            raise IncompatibleModelError(
                f"{task} cannot use {model.config.name_or_path!r}: its tokenizer has no mask "
                "token. Pick a masked language model (BERT, RoBERTa, ...)."
            )

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        for key in ("top_k", "max_masks"):
            value = options.get(key, 1)
            if not is_positive_int(value):
                raise ValueError(f"{key} must be a positive integer, not {value!r}")
        targets = options.get("targets")
        if targets is not None and (
            not targets
            or not isinstance(targets, (str, list, tuple))
            or not all(
                isinstance(t, str) and t
                for t in ([targets] if isinstance(targets, str) else targets)
            )
        ):
            raise ValueError(
                f"targets must be a token or a non-empty list of tokens, not {targets!r}"
            )
        return options

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        if why := check_text(item):
            return why
        mask = self.tokenizer.mask_token
        ids = self.tokenizer(item, verbose=False)["input_ids"]
        masks = ids.count(self.tokenizer.mask_token_id)
        if not masks:
            return f"no mask token {mask} in the text; put {mask} where a token is to be predicted"
        if masks > options["max_masks"]:
            return (
                f"{masks} mask tokens {mask}, over max_masks={options['max_masks']}; each mask is "
                "predicted with the others still masked, so many masks give poor guesses (pass "
                "max_masks=... to allow more)"
            )
        if len(ids) > self.max_tokens:
            return (
                f"{len(ids)} tokens, over the model's limit of {self.max_tokens}; shorten the "
                "text around its mask"
            )
        return None

    # -- running --------------------------------------------------------------------------
    def _run(self, items: list[str], options: dict[str, Any]) -> list[Any]:
        targets = self._target_ids(options["targets"])
        rows = [self.tokenizer(text)["input_ids"] for text in items]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        results: list[Any] = [None] * len(rows)
        with torch.inference_mode():
            for chunk in self.batches(order):
                batch = self.tokenizer.pad(
                    {"input_ids": [rows[i] for i in chunk]}, return_tensors="pt"
                ).to(self.device)
                logits = self.model(**batch).logits
                for b, i in enumerate(chunk):
                    results[i] = self._fill(rows[i], logits[b], targets, options["top_k"])
        return results

    def _fill(
        self, ids: list[int], logits: torch.Tensor, targets: list[int] | None, top_k: int
    ) -> list[Any]:
        """The ``top_k`` candidates for the text's one mask, or a list of them per mask."""
        masks = [k for k, token in enumerate(ids) if token == self.tokenizer.mask_token_id]
        probs = logits[masks].float().softmax(-1)
        if targets is not None:
            probs = probs[:, targets]
        scores, picks = probs.topk(min(top_k, probs.shape[-1]))
        per_mask = [
            [
                self._candidate(ids, masks, at, targets[p] if targets else p, score)
                for score, p in zip(mask_scores, mask_picks, strict=True)
            ]
            for at, mask_scores, mask_picks in zip(
                masks, scores.tolist(), picks.tolist(), strict=True
            )
        ]
        return per_mask[0] if len(masks) == 1 else per_mask

    def _candidate(
        self, ids: list[int], masks: list[int], at: int, token: int, score: float
    ) -> dict[str, Any]:
        """The text with ``token`` in the mask at position ``at``; other masks stay visible, the
        model's other special tokens (``[CLS]``, ``<s>`` ...) are left out."""
        specials = set(self.tokenizer.all_special_ids)
        filled = [
            token if k == at else t for k, t in enumerate(ids) if k in masks or t not in specials
        ]
        return {
            "score": score,
            "token": token,
            "token_str": self.tokenizer.decode([token]),
            "sequence": self.tokenizer.decode(filled),
        }

    def _target_ids(self, targets: str | list[str] | None) -> list[int] | None:
        """Vocabulary ids to score instead of the whole vocabulary. A target that is not one
        token is scored by its first token, with a warning."""
        if targets is None:
            return None
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in [targets] if isinstance(targets, str) else targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
            if not pieces:
                raise ValueError(f"{self.task}: target {target!r} gives no token at all")
            logger.warning(
                "%s: target %r is not a token of the vocabulary; scoring its first token %r",
                self.task,
                target,
                self.tokenizer.convert_ids_to_tokens(pieces[0]),
            )
            ids.append(pieces[0])
        return list(dict.fromkeys(ids))
