"""Tasks on transformers' Auto classes: opening the model by registry name, hub id, folder or
object, and ``TransformersPipeline``, whose ``build`` does it for every such task.

Shared so that all of them accept the same kinds of ``model`` and the same ``num_labels`` /
``id2label``, fail offline with the same ``WeightsUnavailableError`` and refuse a model whose
head does not fit the task instead of silently bolting a random head onto it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.hub import cached_revision, hf_reference, hub_errors
from mmenc.inputs import text_token_limit
from mmenc.plugins import get_host
from mmenc.tasks.base import Pipeline, is_positive_int

logger = logging.getLogger("mmenc")

P = TypeVar("P", bound="TransformersPipeline")
# function_to_apply of the classification tasks: what turns a head's logits into scores
FUNCTIONS = ("default", "softmax", "sigmoid", "none")


class TransformersPipeline(Pipeline):
    """A pipeline on a transformers model, loaded by ``build`` through ``load_pretrained``.

    A subclass names its Auto ``model_class``, the architecture endings in ``heads`` that can do
    its task and its ``preprocessor_class``. ``new_head_allowed`` lets ``num_labels`` /
    ``id2label`` put a new classification head on the model; ``load_options`` are the options
    that go to ``from_pretrained`` rather than to calls; ``needs_fast_tokenizer`` refuses a
    tokenizer without character offsets; ``_check_loaded`` may refuse more.
    """

    model_class: ClassVar[str]
    heads: ClassVar[tuple[str, ...]]
    preprocessor_class: ClassVar[str] = "AutoTokenizer"
    new_head_allowed: ClassVar[bool] = False
    load_options: ClassVar[tuple[str, ...]] = ()
    needs_fast_tokenizer: ClassVar[bool] = False
    # ``max_tokens`` where neither the model nor its tokenizer states a limit (None: an error)
    unstated_limit: ClassVar[int | None] = None

    @classmethod
    def build(
        cls: type[P],
        model: Any,
        *,
        task: str,
        tokenizer: Any = None,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int | None = None,
        revision: str | None = None,
        **options: Any,
    ) -> P:
        """The pipeline on ``model``; load-time options are taken out of ``options``, the rest
        become the defaults of every call."""
        model_kwargs = {
            name: value
            for name in cls.load_options
            if (value := options.pop(name, None)) is not None
        }
        head: dict[str, Any] = {}
        if cls.new_head_allowed:
            num_labels, id2label = options.pop("num_labels", None), options.pop("id2label", None)
            head = head_options(model, task, num_labels, id2label)
        loaded, preprocessor = load_pretrained(
            model,
            task=task,
            model_class=cls.model_class,
            heads=cls.heads,
            preprocessor=tokenizer,
            preprocessor_class=cls.preprocessor_class,
            revision=revision,
            device=device,
            dtype=dtype,
            new_head=bool(head),
            **head,
            **model_kwargs,
        )
        cls._check_loaded(loaded, preprocessor, task)
        return cls(loaded, preprocessor, task=task, batch_size=batch_size, options=options)

    @classmethod
    def _check_loaded(cls, model: Any, preprocessor: Any, task: str) -> None:
        """Refuse (``IncompatibleModelError``) a loaded model or pre-processor the task cannot
        use; a subclass that checks more calls this too."""
        if cls.needs_fast_tokenizer and not getattr(preprocessor, "is_fast", False):
            raise IncompatibleModelError(
                f"{task} needs a fast (tokenizers-backed) tokenizer for character offsets and "
                f"word boundaries; got {type(preprocessor).__name__}. Pass a fast tokenizer=..."
            )

    @cached_property
    def max_tokens(self) -> int:
        """The longest text the model takes, in tokens."""
        return text_token_limit(self.tokenizer, self.model.config, default=self.unstated_limit)


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
        with hub_errors(ref, revision=revision):
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
    with hub_errors(ref, gguf, revision):
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
        with hub_errors(ref, revision=revision):
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


def head_options(model: Any, task: str, num_labels: Any, id2label: Any) -> dict[str, Any]:
    """``from_pretrained`` keywords for a new, untrained classification head asked for with
    ``num_labels`` and/or ``id2label``, or {} for the model's own head.

    ``id2label`` may be a list of labels or a dict (JSON keys are strings); without it the
    labels are LABEL_0 ... LABEL_{n-1}, as transformers names them. The head is made while
    loading, so the model must come by name or folder.
    """
    if num_labels is None and id2label is None:
        return {}
    if num_labels is not None and not is_positive_int(num_labels):
        raise ValueError(f"num_labels must be a positive integer, not {num_labels!r}")
    if id2label is None:
        labels = {i: f"LABEL_{i}" for i in range(num_labels)}
    else:
        labels = _numbered_labels(id2label)
    if num_labels is not None and num_labels != len(labels):
        raise ValueError(f"num_labels={num_labels} but id2label has {len(labels)} labels")
    if not isinstance(model, (str, Path)):
        raise ValueError(
            f"{task}: num_labels / id2label build a new head while loading; pass the model by "
            "name or folder (a model object keeps its own head)"
        )
    return {
        "id2label": labels,
        "label2id": {label: i for i, label in labels.items()},
        "ignore_mismatched_sizes": True,  # a classification checkpoint's head is replaced
    }


def _numbered_labels(id2label: Any) -> dict[int, str]:
    """``{0: label, 1: ...}`` from a list of labels or a dict keyed by the ids 0..n-1."""
    if isinstance(id2label, Mapping):
        pairs: Any = id2label.items()
    elif isinstance(id2label, (list, tuple)):
        pairs = enumerate(id2label)
    else:
        raise ValueError(f"id2label must be a dict or a list of labels, not {id2label!r}")
    try:
        labels = {int(i): str(label) for i, label in pairs}
    except (TypeError, ValueError):
        raise ValueError(
            f"id2label keys must be label ids 0, 1, 2, ..., not {list(id2label)}"
        ) from None
    if not labels:
        raise ValueError("id2label is empty; name at least one label")
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(
            f"id2label must number its labels 0, 1, 2, ... (here 0..{len(labels) - 1}); "
            f"got ids {sorted(labels)}"
        )
    return labels


def default_function(config: Any) -> str:
    """What transformers' classification pipelines apply to a model's logits when told nothing:
    sigmoid for multi-label models and single-logit heads, nothing for regression, else softmax."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(function: str, logits: torch.Tensor) -> torch.Tensor:
    """Scores from logits by ``"softmax"``, ``"sigmoid"`` or ``"none"`` (the logits as they are)."""
    if function == "softmax":
        return logits.softmax(-1)
    if function == "sigmoid":
        return logits.sigmoid()
    return logits
