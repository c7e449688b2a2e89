"""What the image tasks share: image inputs, and pipelines built on an mmenc encoder.

Every image is decoded once by ``_check`` before any model work, so that all bad images of a
call are reported together (index and cause) and none of the others is lost; decoded images are
not kept, so a long list of large photos never sits in memory at once. The model decodes each
image again when its batch runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, ClassVar

import torch

import mmenc
from mmenc.encoder import Encoder
from mmenc.errors import IncompatibleModelError
from mmenc.hub import cached_revision
from mmenc.inputs import IMAGE_TYPES, decode_image
from mmenc.tasks.base import Pipeline
from mmenc.tasks.hf import checkpoint_for


def image_problem(item: Any) -> str | None:
    """Why ``item`` is not a usable image (missing file, corrupt data, wrong type), or None."""
    try:
        decode_image(item)
    except ValueError as exc:
        return str(exc)
    return None


class ImagePipeline(Pipeline):
    """A pipeline whose inputs are images: one image (path, PIL image, bytes, array) or a list."""

    def _is_single(self, inputs: Any) -> bool:
        return isinstance(inputs, (str, *IMAGE_TYPES)) or not isinstance(inputs, Sequence)

    def _check(self, item: Any, options: dict[str, Any]) -> str | None:
        return image_problem(item)


class EncoderPipeline(ImagePipeline):
    """An image task on any mmenc encoder (``mmenc.load(model)`` or an encoder object).

    ``needs`` are the modalities the task uses; ``shared_space`` says whether texts and images
    must be comparable (CLIP, SigLIP, BLIP retrieval). ``save_pretrained`` records the name the
    encoder was loaded by (an encoder object: its ``name``), which loads it again.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"image"})
    shared_space: ClassVar[bool] = False
    examples: ClassVar[str] = "'clip-vit-b-32', 'vit-base-patch16-224'"

    @property
    def encoder(self) -> Any:
        return self.model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task={self.task!r} model={self.encoder.name!r}>"

    @classmethod
    def build(
        cls,
        model: Any,
        *,
        task: str,
        tokenizer: Any,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int | None,
        revision: str | None,
        **options: Any,
    ) -> EncoderPipeline:
        if tokenizer is not None:
            raise ValueError(
                f"{task} uses the encoder's own tokenizer and image processor; drop tokenizer="
            )
        if isinstance(model, Encoder):
            encoder, name = model, model.name
        elif isinstance(model, (str, Path)):
            name = str(model)
            encoder = _load(name, task, cls.needs, cls.examples, device, dtype, revision)
        else:
            raise TypeError(
                f"{task} takes an encoder name, hub id or folder, or an encoder from "
                f"mmenc.load(...), not {type(model).__name__}; save a transformers model with "
                "save_pretrained and pass its folder"
            )
        _check_encoder(encoder, task, cls.needs, cls.shared_space, cls.examples)
        return cls(
            encoder,
            task=task,
            batch_size=batch_size,
            options=options,
            model_reference=_absolute(name),
        )


def _absolute(name: str) -> str:
    """A folder as an absolute path, so that a saved pipeline loads from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _load(
    name: str,
    task: str,
    needs: frozenset[str],
    examples: str,
    device: torch.device,
    dtype: torch.dtype,
    revision: str | None,
) -> Any:
    """``mmenc.load(name)``, refusing an encoder without the needed modalities before its
    weights are read. A short pinned revision is expanded to the cached snapshot's commit."""
    spec = mmenc.get_spec(name)
    if not needs <= spec.modalities:
        raise _incompatible(task, name, spec.family, spec.modalities, needs, examples)
    if revision is None:
        return mmenc.load(name, device=device, dtype=dtype)
    revision = cached_revision(checkpoint_for(name), revision)
    try:
        return mmenc.load(name, device=device, dtype=dtype, revision=revision)
    except TypeError as exc:
        if "revision" not in str(exc):
            raise
        raise ValueError(
            f"{task}: the {spec.family} encoder {name!r} takes no revision= (open_clip and timm "
            "models pin their weights by name or tag); drop revision"
        ) from exc


def _check_encoder(
    encoder: Any, task: str, needs: frozenset[str], shared_space: bool, examples: str
) -> None:
    modalities = frozenset(encoder.modalities)
    if not needs <= modalities or (shared_space and not getattr(encoder, "shared_space", False)):
        raise _incompatible(task, encoder.name, encoder.family, modalities, needs, examples)


def _incompatible(
    task: str,
    name: str,
    family: str,
    modalities: AbstractSet[str],
    needs: frozenset[str],
    examples: str,
) -> IncompatibleModelError:
    have = " and ".join(sorted(modalities))
    want = "texts and images in one shared space" if needs == {"text", "image"} else "images"
    return IncompatibleModelError(
        f"{task} cannot use {name!r}: it is a {family} encoder of {have}, and {task} needs "
        f"an encoder of {want}. Pick one such as {examples} (see `mmenc list --modality image`)."
    )
