"""zero-shot-image-classification with any encoder of texts and images in one space.

Each candidate label becomes a text through the hypothesis template, or through several
templates (prompt ensembling). Label weights and scores are ``mmenc.zeroshot``'s, as
``ZeroShotClassifier`` computes them: a softmax over ``logit_scale * cosine`` for CLIP-like
models, a sigmoid of ``logit_scale * cosine + logit_bias`` per label for SigLIP, a softmax over
``cosine / 0.01`` for encoders that state no scale (BLIP retrieval). Unlike the classifier, the
pipeline takes new labels on every call (one label too, as transformers does), so it caches the
label embeddings per (templates, label): calling again with the same labels, or adding one label,
encodes only what is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from mmenc.inputs import check_nonblank_text
from mmenc.zeroshot.classifier import embed_labels, similarity_scores
from mmenc.zeroshot.templates import resolve_templates
from mmenc_image._common import EncoderPipeline

DEFAULT_TEMPLATE = "This is a photo of {}."
CACHE_SIZE = 4096


class ZeroShotImageClassificationPipeline(EncoderPipeline):
    """``[{'score', 'label'}]`` per image, sorted by score, as transformers' pipeline gives."""

    defaults: ClassVar[dict[str, Any]] = {
        "candidate_labels": None,
        "hypothesis_template": DEFAULT_TEMPLATE,
    }
    needs = frozenset({"text", "image"})
    shared_space = True
    examples = "'clip-vit-b-32', 'siglip-base-patch16-224' or 'blip-itm-base-coco'"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._label_cache: dict[tuple[tuple[str, ...], str], torch.Tensor] = {}

    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        if options.get("candidate_labels") is not None:
            options["candidate_labels"] = _labels(options["candidate_labels"])
        if "hypothesis_template" in options:
            _templates(options["hypothesis_template"])
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        labels = options["candidate_labels"]
        if labels is None:
            raise ValueError(f"{self.task} needs candidate_labels=[...], the labels to score")
        templates = _templates(options["hypothesis_template"])
        classifier = self._classifier(labels, templates)
        images = self.encoder.encode_image(items, batch_size=self.batch_size)
        scores = similarity_scores(self.encoder, images, classifier)
        return [_ranked(row.tolist(), labels) for row in scores]

    def _classifier(self, labels: list[str], templates: tuple[str, ...]) -> torch.Tensor:
        """(labels, dim): each label's unit-length mean over its templates' text embeddings."""
        missing = list(dict.fromkeys(x for x in labels if (templates, x) not in self._label_cache))
        if missing:
            means = embed_labels(self.encoder, missing, templates, batch_size=self.batch_size)
            while len(self._label_cache) + len(missing) > CACHE_SIZE and self._label_cache:
                del self._label_cache[next(iter(self._label_cache))]  # the oldest first
            self._label_cache.update(
                {(templates, label): row for label, row in zip(missing, means, strict=True)}
            )
        return torch.stack([self._label_cache[templates, label] for label in labels])


def _ranked(scores: list[float], labels: list[str]) -> list[dict[str, Any]]:
    """Labels by descending score; equal scores keep the order the labels were given in."""
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])
    return [{"score": score, "label": label} for score, label in ranked]


def _labels(value: Any) -> list[str]:
    """A list of labels; a str is split at commas, as transformers' zero-shot-classification
    reads it."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, Sequence) or not value:
        raise ValueError(f"candidate_labels must be a non-empty list of labels, not {value!r}")
    problems = [
        f"{i}: {why}" for i, label in enumerate(value) if (why := check_nonblank_text(label))
    ]
    if problems:
        raise ValueError(f"candidate_labels has bad labels (index: cause): {'; '.join(problems)}")
    return list(value)


def _templates(value: Any) -> tuple[str, ...]:
    """One template or several, or a template set by name; each must place the label with
    ``{}``. None is refused rather than read as the "photo" set, so that the default stays
    transformers' template."""
    if value is None:
        raise ValueError(f"hypothesis_template must be a template, such as {DEFAULT_TEMPLATE!r}")
    try:
        return resolve_templates(value, "image")
    except ValueError as exc:
        raise ValueError(f"hypothesis_template: {exc}") from None
