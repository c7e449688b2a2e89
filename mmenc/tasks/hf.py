"""Opening a transformers model for a task: by registry name, hub id, folder or object.

Shared by every task built on transformers' Auto classes, so that all of them accept the same
kinds of ``model``, fail offline with the same ``WeightsUnavailableError`` and refuse a model
whose head does not fit the task instead of silently bolting a random head onto it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.hub import cached_revision, hf_reference, hub_errors
from mmenc.plugins import get_host

logger = logging.getLogger("mmenc")


def checkpoint_for(model: str | Path) -> str:
    """The folder or hub id behind ``model``: a registry name's checkpoint, else the name."""
    name = str(model)
    spec = get_host().lookup(name)
    if spec is not None and spec.checkpoint is not None:
        return spec.checkpoint() if callable(spec.checkpoint) else spec.checkpoint
    return hf_reference(name) or name


def load_pretrained(
    model: Any,
    *,
    task: str,
    model_class: str,
    heads: Sequence[str],
    preprocessor: Any = None,
    preprocessor_class: str = "AutoTokenizer",
    revision: str | None = None,
    device: torch.device,
    dtype: torch.dtype,
    new_head: bool = False,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """The model (on ``device``, in eval mode) and its tokenizer / processor.

    ``heads`` are the endings of architecture names that can do ``task`` (``"ForMaskedLM"``);
    a checkpoint whose ``config.architectures`` has none of them is refused, unless
    ``new_head`` is set (``num_labels`` / ``id2label`` asked for a fresh head). A model object is
    used as it is; its pre-processor must be passed or sit beside its weights.
    """
    import transformers

    if isinstance(model, (str, Path)):
        ref = checkpoint_for(model)
        revision = cached_revision(ref, revision)
        model = _from_pretrained(
            ref, task, model_class, heads, revision, dtype, new_head, model_kwargs
        )
    else:
        check_head(model.config, task, heads, getattr(model.config, "name_or_path", "model"))
        ref = getattr(model.config, "name_or_path", "") or ""
        model = model.to(dtype=dtype)
    if preprocessor is None:
        if not ref:
            raise ValueError(
                f"{task}: the model object has no name_or_path to load its tokenizer / processor "
                "from; pass tokenizer=... as well"
            )
        gguf = model_kwargs.get("gguf_file")
        extra = {"gguf_file": gguf} if gguf else {}
        with hub_errors(ref):
            preprocessor = getattr(transformers, preprocessor_class).from_pretrained(
                ref, revision=revision, **extra
            )
    return model.to(device).eval(), preprocessor


def _from_pretrained(
    ref: str,
    task: str,
    model_class: str,
    heads: Sequence[str],
    revision: str | None,
    dtype: torch.dtype,
    new_head: bool,
    model_kwargs: dict[str, Any],
) -> Any:
    import transformers

    gguf = model_kwargs.get("gguf_file")
    with hub_errors(ref, gguf):
        config = transformers.AutoConfig.from_pretrained(
            ref, revision=revision, **({"gguf_file": gguf} if gguf else {})
        )
    if new_head:
        logger.warning(
            "%s: %s gets a new, untrained classification head; fine-tune it before use.",
            task,
            ref,
        )
    else:
        check_head(config, task, heads, ref)
    auto = getattr(transformers, model_class)
    # Reading a GGUF file's metadata takes seconds to minutes: hand the config over, read once.
    parsed = {"config": config} if gguf else {}
    try:
        with hub_errors(ref):
            return auto.from_pretrained(
                ref, revision=revision, dtype=dtype, **parsed, **model_kwargs
            )
    except ValueError as exc:
        if "Unrecognized configuration class" not in str(exc):
            raise
        raise IncompatibleModelError(
            f"{task} cannot use {ref!r}: its model type {config.model_type!r} has no "
            f"{model_class.removeprefix('Auto')} class in transformers. Pick a model made for "
            f"{task} (see `mmenc tasks`)."
        ) from exc


def check_head(config: Any, task: str, heads: Sequence[str], ref: str) -> None:
    """Refuse a checkpoint whose architecture names none of the heads ``task`` needs.

    A config without ``architectures`` (GGUF, hand-made configs) is let through: the Auto class
    then decides.
    """
    architectures = list(getattr(config, "architectures", None) or [])
    if not architectures or any(a.endswith(tuple(heads)) for a in architectures):
        return
    raise IncompatibleModelError(
        f"{task} cannot use {ref!r}: its head is {', '.join(architectures)}, but {task} needs a "
        f"model with a head ending in {' or '.join(heads)}. Pick a model trained for {task}"
        + (
            ", or pass num_labels=... for a new classification head"
            if "Classification" in "".join(heads)
            else ""
        )
        + "."
    )
