"""Typed records that plugins yield from their hooks.

A record is a frozen dataclass, checked when it is made, so a plugin with a mistake fails at
registration with a message that names the field, not later inside a model call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmenc.encoder import Encoder

MODALITIES = frozenset({"text", "image"})
REGISTRY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
"""Names yielded by ``mmenc_encoders``; resolved names (``hf:Org/Name``, paths) are free-form."""


@dataclass(frozen=True)
class EncoderSpec:
    """A loadable encoder: its registry name, what it can encode, and a lazy factory.

    ``factory(name=..., device=..., dtype=..., **options)`` builds the encoder; it is called only by
    ``mmenc.load``, so the plugin module that yields the spec never imports torch or weights.
    ``checkpoint`` is the model folder or hub id behind the encoder (or a callable that builds
    and returns it), so task pipelines can open the same weights by registry name.

    Example::

        EncoderSpec(
            name="minilm-l6",
            family="bert",
            modalities={"text"},
            factory=load_minilm,
            aliases=("all-minilm-l6-v2",),
            source="sentence-transformers/all-MiniLM-L6-v2",
        )
    """

    name: str
    family: str
    modalities: AbstractSet[str]  # stored as a frozenset
    factory: Callable[..., Encoder]
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    checkpoint: str | Callable[[], str] | None = None
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", frozenset(_as_iterable(self.modalities)))
        object.__setattr__(self, "aliases", tuple(_as_iterable(self.aliases)))
        problems = []
        if not isinstance(self.name, str) or not self.name.strip():
            problems.append(f"name {self.name!r} must be a non-empty string")
        if not isinstance(self.family, str) or not self.family:
            problems.append(f"family {self.family!r} must be a non-empty string")
        if not self.modalities or not self.modalities <= MODALITIES:
            problems.append(
                f"modalities {set(self.modalities)} must be a non-empty subset of "
                f"{sorted(MODALITIES)}"
            )
        if not callable(self.factory):
            problems.append(f"factory {self.factory!r} is not callable")
        bad_aliases = [a for a in self.aliases if not isinstance(a, str) or not a]
        if bad_aliases:
            problems.append(f"aliases {bad_aliases!r} must be non-empty strings")
        if problems:
            raise ValueError(f"invalid EncoderSpec {self.name!r}: " + "; ".join(problems))


def _as_iterable(value: Any) -> Iterable[Any]:
    return (value,) if isinstance(value, str) else value


TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
INPUT_KINDS = frozenset({"text", "image"})


@dataclass(frozen=True)
class TaskSpec:
    """A pipeline task: its name, the default model, and a lazy factory.

    ``factory(model, *, tokenizer, device, dtype, batch_size, revision, **options)`` builds a
    ``mmenc.tasks.Pipeline``; it is called only by ``mmenc.pipeline``. ``default_model`` is used
    when the caller names no model, at ``default_revision`` (a pinned commit). ``inputs`` says
    whether positional inputs are texts or images (the CLI turns image arguments into paths).
    ``name_pattern`` is an optional regular expression for a family of names, whose named groups
    become options (``translation_(?P<src_lang>\\w+)_to_(?P<tgt_lang>\\w+)``).

    Example::

        TaskSpec(
            name="sentiment-analysis",
            factory=make_text_classifier,
            default_model="distilbert/distilbert-base-uncased-finetuned-sst-2-english",
            default_revision="714eb0fa89d2f80546fda750413ed43d93601a13",
            aliases=("text-classification",),
            description="label and score per text",
        )
    """

    name: str
    factory: Callable[..., Any]
    default_model: str | None = None
    default_revision: str | None = None
    aliases: tuple[str, ...] = ()
    name_pattern: str | None = None
    inputs: str = "text"
    description: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", tuple(_as_iterable(self.aliases)))
        problems = []
        for key in (self.name, *self.aliases):
            if not isinstance(key, str) or not TASK_NAME.match(key):
                problems.append(f"task name {key!r} must be lower-case letters, digits, '_', '-'")
        if not callable(self.factory):
            problems.append(f"factory {self.factory!r} is not callable")
        if self.inputs not in INPUT_KINDS:
            problems.append(f"inputs {self.inputs!r} must be one of {sorted(INPUT_KINDS)}")
        if self.name_pattern is not None:
            try:
                re.compile(self.name_pattern)
            except re.error as exc:
                problems.append(f"name_pattern {self.name_pattern!r} is not a regex: {exc}")
        if problems:
            raise ValueError(f"invalid TaskSpec {self.name!r}: " + "; ".join(problems))
