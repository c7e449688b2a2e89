"""zero-shot-image-classification with any encoder of texts and images in one space.

Each candidate label becomes a text through the hypothesis template, or through several
templates (prompt ensembling, as open_clip builds its zero-shot classifiers: embed every filled
template, normalise, average, renormalise). Scores follow the model: a softmax over
``logit_scale * cosine`` for CLIP-like models, a sigmoid of ``logit_scale * cosine + logit_bias``
per label for SigLIP. Label embeddings are cached per (templates, label), so calling again with
the same labels, or adding one label, encodes only what is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from mmenc.inputs import check_nonblank_text
from mmenc_image._common import EncoderPipeline

DEFAULT_TEMPLATE = "This is a photo of {}."
DEFAULT_LOGIT_SCALE = 100.0
"""For encoders that state no logit scale (BLIP retrieval): CLIP's trained value, which
open_clip's zero-shot evaluation uses for every model."""
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
        logits = images @ classifier.T * getattr(self.encoder, "logit_scale", DEFAULT_LOGIT_SCALE)
        if getattr(self.encoder, "score_activation", "softmax") == "sigmoid":
            scores = (logits + self.encoder.logit_bias).sigmoid()
        else:
            scores = logits.softmax(dim=-1)
        return [_ranked(row.tolist(), labels) for row in scores]

    def _classifier(self, labels: list[str], templates: tuple[str, ...]) -> torch.Tensor:
        """(labels, dim): each label's unit-length mean over its templates' text embeddings."""
        missing = list(dict.fromkeys(x for x in labels if (templates, x) not in self._label_cache))
        if missing:
            texts = [template.format(label) for label in missing for template in templates]
            embedded = self.encoder.encode_text(texts, batch_size=self.batch_size)
            means = F.normalize(embedded.view(len(missing), len(templates), -1).mean(dim=1), dim=-1)
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
    """One template or several; each must place the label with ``{}``."""
    templates = (value,) if isinstance(value, str) else value
    if not isinstance(templates, Sequence) or not templates:
        raise ValueError(
            f"hypothesis_template must be a format string or a non-empty list of them, "
            f"not {value!r}"
        )
    for template in templates:
        try:
            placed = isinstance(template, str) and template.format("a") != template.format("b")
        except (IndexError, KeyError, ValueError):
            placed = False
        if not placed:
            raise ValueError(
                f"hypothesis_template {template!r} must be a str that places the label with "
                "'{}', such as 'This is a photo of {}.'"
            )
    return tuple(templates)
