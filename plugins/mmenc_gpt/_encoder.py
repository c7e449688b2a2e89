"""The encoder behind the gpt family: a causal LM's hidden states, pooled, and its likelihoods.

Every batch is right-padded, whatever the tokenizer's own padding side: with causal attention a
real token never sees the padding after it, and positions count from 0 for every text, so a
text's hidden states and log-probabilities do not depend on what it was batched with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mmenc.base import BaseEncoder
from mmenc.errors import InvalidInputError
from mmenc.hub import hub_errors
from mmenc.inputs import as_batch, text_problems, text_token_limit
from mmenc.pooling import pool


class CausalLMEncoder(BaseEncoder):
    """Any ``AutoModelForCausalLM``: embeddings pool the last hidden state ("mean" or "last").

    Texts longer than the model's maximum positions (or ``max_length``) keep their first tokens.
    """

    family = "gpt"
    modalities = frozenset({"text"})

    def __init__(
        self,
        ref: str,
        *,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        pooling: str = "mean",
        max_length: int | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if pooling not in ("mean", "last"):
            raise ValueError(f"unknown pooling {pooling!r} for a causal LM; use 'mean' or 'last'")
        options = {"revision": revision, "trust_remote_code": trust_remote_code}
        with hub_errors(ref):
            self.tokenizer = AutoTokenizer.from_pretrained(ref, **options)
            self.model = AutoModelForCausalLM.from_pretrained(ref, dtype=dtype, **options)
        self.model.to(device).eval()  # type: ignore[arg-type]
        if self.tokenizer.pad_token is None:  # GPT-2 has none; in memory only, not on disk
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pooling = pooling
        text_config = self.model.config.get_text_config()
        self.max_length = max_length or text_token_limit(self.tokenizer, text_config, 2048)
        self.prefix_id: int | None = _prefix_id(self.tokenizer)
        self.pad_id = _first_id(self.tokenizer.pad_token_id, self.prefix_id)
        hidden = text_config.hidden_size
        super().__init__(name=name, embed_dim=hidden, device=device, dtype=dtype)

    # -- embeddings -----------------------------------------------------------------------
    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Pooled last hidden state; a text with no tokens ("") is embedded as the BOS/EOS token."""
        ids = self._tokenize(texts, special=True, limit=self.max_length)
        fallback = [_first_id(self.prefix_id, self.pad_id)]
        input_ids, mask = self._pad([row or fallback for row in ids])
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return pool(hidden, mask, self.pooling)

    # -- likelihoods ----------------------------------------------------------------------
    def log_likelihood(self, texts: Sequence[str], *, batch_size: int = 8) -> torch.Tensor:
        """Sum of the log-probabilities of each text's tokens, float32 (len(texts),) on the CPU.

        The text is tokenized without special tokens and prefixed with the BOS token (EOS when
        the tokenizer has no BOS, as GPT-2 and Qwen), so its first token is scored too: for
        tokens t1..tn the result is sum_i log p(t_i | prefix, t1..t_{i-1}). An empty text has
        nothing to score and gets 0.0. A model with neither BOS nor EOS scores from the second
        token. Texts longer than the model's maximum positions keep their first tokens.
        Bad items raise ``InvalidInputError`` naming each index.
        """
        items = as_batch(texts, "text")
        if problems := text_problems(items):
            raise InvalidInputError(problems, "text")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = torch.zeros(len(items), dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                out[chunk] = self._score([items[i] for i in chunk])
        return out

    def _score(self, texts: list[str]) -> torch.Tensor:
        prefix = [] if self.prefix_id is None else [self.prefix_id]
        limit = self.max_length - len(prefix)
        input_ids, mask = self._pad([prefix + row for row in self._tokenize(texts, False, limit)])
        if input_ids.shape[1] < 2:  # nothing to predict in this batch
            return torch.zeros(len(texts))
        logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        targets = input_ids[:, 1:].unsqueeze(-1)
        scores = logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1)
        return torch.where(mask[:, 1:].bool(), scores, 0.0).sum(1).cpu()

    # -- tokens ---------------------------------------------------------------------------
    def _tokenize(self, texts: list[str], special: bool, limit: int) -> list[list[int]]:
        encoded = self.tokenizer(
            texts, add_special_tokens=special, truncation=True, max_length=limit
        )
        return [list(row) for row in encoded["input_ids"]]

    def _pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and attention mask on the model's device."""
        width = max((len(row) for row in rows), default=0)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[n, : len(row)] = 1
        return ids.to(self.device), mask.to(self.device)


def _prefix_id(tokenizer: Any) -> int | None:
    """The token a text is conditioned on: BOS, else EOS (GPT-2's <|endoftext|>), else none."""
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id)
    return next((int(i) for i in ids if i is not None), None)


def _first_id(*ids: int | None) -> int:
    """Padding id: any id works (padding is masked and after every real token); 0 at worst."""
    return next((int(i) for i in ids if i is not None), 0)
