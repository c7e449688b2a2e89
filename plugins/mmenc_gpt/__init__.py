"""mmenc plugin: causal language models (GPT-2, Llama, Qwen, Gemma ...) as text encoders.

Registers GPT-2, DistilGPT2 and the tiny test model, and resolves ``hf:`` names, hub ids and
folders whose config describes a causal LM. Besides embeddings, these encoders score texts with
``log_likelihood``. Imports no torch: the encoder lives in ``_encoder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from mmenc import EncoderSpec, hookimpl
from mmenc.hub import hf_reference, model_config

FAMILY = "gpt"
CAUSAL_LM_TYPES = frozenset({
    "gpt2", "gpt_neo", "gptj", "gpt_neox", "gpt_bigcode", "openai-gpt", "codegen", "ctrl",
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
    "gemma3_text", "phi", "phi3", "opt", "bloom", "falcon", "olmo", "olmo2", "stablelm",
    "starcoder2", "smollm3", "granite", "cohere", "mpt", "xglm", "biogpt",
})  # fmt: skip
CAUSAL_LM_ARCHITECTURES = ("ForCausalLM", "LMHeadModel")


def _tiny_path() -> str:
    from mmenc_gpt._tiny import tiny_gpt2

    return str(tiny_gpt2())


def _load(ref: str | Callable[[], str], **kwargs: Any) -> Any:
    from mmenc_gpt._encoder import CausalLMEncoder

    return CausalLMEncoder(ref() if callable(ref) else ref, **kwargs)


def _spec(name: str, ref: str | Callable[[], str], **fields: Any) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        family=FAMILY,
        modalities=frozenset({"text"}),
        factory=partial(_load, ref),
        checkpoint=ref,
        **fields,
    )


def is_causal_lm(config: dict[str, Any]) -> bool:
    """Whether a ``config.json`` describes a decoder-only language model."""
    if config.get("model_type") in CAUSAL_LM_TYPES:
        return True
    architectures = config.get("architectures") or []
    return any(str(a).endswith(CAUSAL_LM_ARCHITECTURES) for a in architectures)


@hookimpl
def mmenc_encoders() -> Iterator[EncoderSpec]:
    yield _spec(
        "gpt2",
        "openai-community/gpt2",
        aliases=("openai-community/gpt2",),
        description="GPT-2 small (124M), mean-pooled hidden states (768-d) and log-likelihoods",
        source="hf:openai-community/gpt2",
    )
    yield _spec(
        "distilgpt2",
        "distilbert/distilgpt2",
        aliases=("distilbert/distilgpt2",),
        description="DistilGPT2 (82M), mean-pooled hidden states (768-d) and log-likelihoods",
        source="hf:distilbert/distilgpt2",
    )
    yield _spec(
        "tiny-gpt2",
        _tiny_path,
        description="2-layer 32-d GPT-2 with seeded weights and a byte-level BPE trained locally",
        source="built locally (tests)",
    )


@hookimpl
def mmenc_resolve(name: str) -> EncoderSpec | None:
    ref = hf_reference(name)
    if ref is None:
        return None
    config = model_config(ref)
    if config and is_causal_lm(config):
        kind = config.get("model_type") or "causal"
        return _spec(name, ref, source=ref, description=f"{kind} causal language model")
    return None
