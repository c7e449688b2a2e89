"""The zero-shot methods behind ``ZeroShotClassifier(method=...)``.

- ``similarity``: cosine between the input's embedding and each label's ensembled embedding,
  scored as the model was trained (any encoder; images need a shared text-image space).
- ``nli``: entailment of "This text is about {label}." by the text, with an NLI classifier
  (``mmenc.pipeline("zero-shot-classification")``); texts only.
- ``likelihood``: how likely a causal LM finds the text followed by each filled template;
  texts only, GPT-family encoders.
- ``itm``: similarity's top candidates re-ranked by BLIP's image-text matching head; images only.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

import mmenc
from mmenc.errors import IncompatibleModelError
from mmenc.inputs import decode_image
from mmenc.zeroshot.classifier import DEFAULT_TEMPERATURE, similarity_scores

if TYPE_CHECKING:
    from mmenc.zeroshot.classifier import ZeroShotClassifier


class Method:
    """One way of scoring inputs against labels; ``defaults`` lists its options."""

    name: ClassVar[str]
    inputs: ClassVar[frozenset[str]]
    defaults: ClassVar[dict[str, Any]] = {}
    uses_weights: ClassVar[bool] = False

    def __init__(self, classifier: ZeroShotClassifier, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            valid = ", ".join(self.defaults) or "none"
            raise TypeError(
                f"method {self.name!r} takes no option {', '.join(unknown)}; its options: {valid}"
            )
        self.classifier = classifier
        self.encoder = classifier.encoder
        self.options = {**self.defaults, **options}
        self._check_options()

    @classmethod
    def load(cls, encoder: Any, *, device: Any, dtype: Any, options: dict[str, Any]) -> Any:
        """The model object this method scores with: a name is ``mmenc.load``-ed."""
        if isinstance(encoder, (str, Path)):
            return mmenc.load(str(encoder), device=device, dtype=dtype)
        return encoder

    def modalities(self) -> frozenset[str]:
        """The input modalities this method can classify with this encoder."""
        return self.inputs

    def cannot(self, modality: str) -> str:
        """Why inputs of ``modality`` cannot be classified."""
        can = " and ".join(sorted(self.modalities())) or "nothing"
        return (
            f"zero-shot method {self.name!r} with {_name(self.encoder)!r} classifies {can}, "
            f"not {modality}s; pick another method or model (see docs: zero-shot methods)"
        )

    def require_weights(self) -> None:
        if not self.uses_weights:
            raise ValueError(
                f"zero-shot method {self.name!r} scores without label weights, so it has none "
                "to build, save or load; use method 'similarity' or 'itm'"
            )

    def scores(self, items: list[Any], modality: str, batch_size: int, progress: bool) -> Any:
        raise NotImplementedError

    def _check_options(self) -> None:
        """Validate ``self.options``; ValueError naming the option."""


class Similarity(Method):
    """Embedding similarity: any encoder of texts; images need texts and images in one space."""

    name = "similarity"
    inputs = frozenset({"text", "image"})
    defaults: ClassVar[dict[str, Any]] = {"temperature": DEFAULT_TEMPERATURE}
    uses_weights = True

    def _check_options(self) -> None:
        temperature = self.options["temperature"]
        if not _positive_real(temperature):
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        if "text" not in getattr(self.encoder, "modalities", ()):
            raise IncompatibleModelError(
                f"zero-shot classification embeds the labels as texts, and {_name(self.encoder)!r}"
                " encodes no texts; pick an encoder of texts, or of texts and images such as "
                "'clip-vit-b-32' (see `mmenc list --modality text`)"
            )

    def modalities(self) -> frozenset[str]:
        have = frozenset(self.encoder.modalities)
        if "image" in have and not getattr(self.encoder, "shared_space", False):
            have -= {"image"}
        return have

    def cannot(self, modality: str) -> str:
        if modality == "image":
            return (
                f"{_name(self.encoder)!r} ({self.encoder.family}) cannot classify images "
                "zero-shot: that needs texts and images in one shared space; pick an image-text "
                "encoder such as 'clip-vit-b-32', 'siglip-base-patch16-224' or 'blip-itm-base-coco'"
            )
        return super().cannot(modality)

    def scores(
        self, items: list[Any], modality: str, batch_size: int, progress: bool
    ) -> torch.Tensor:
        encode = self.encoder.encode_text if modality == "text" else self.encoder.encode_image
        features = encode(items, batch_size=batch_size, progress=progress)
        weights = self.classifier.label_weights(modality)
        return similarity_scores(
            self.encoder, features, weights, temperature=self.options["temperature"]
        )


class Nli(Method):
    """Entailment probabilities from an NLI classifier, averaged over the templates."""

    name = "nli"
    inputs = frozenset({"text"})
    defaults: ClassVar[dict[str, Any]] = {"model": None}

    @classmethod
    def load(cls, encoder: Any, *, device: Any, dtype: Any, options: dict[str, Any]) -> Any:
        """A zero-shot-classification pipeline for ``model=``, else for ``encoder``: a name
        (not ``mmenc.load``-ed: an NLI checkpoint is a classifier) or a pipeline."""
        model = options.get("model") or encoder
        if getattr(model, "task", None) == "zero-shot-classification":
            return model
        if not isinstance(model, (str, Path)):
            raise IncompatibleModelError(
                f"zero-shot method 'nli' needs an NLI classifier, not {_name(model)!r}: pass "
                "its name or folder as the encoder or as model=, e.g. "
                "ZeroShotClassifier('facebook/bart-large-mnli', labels, method='nli')"
            )
        return mmenc.pipeline("zero-shot-classification", str(model), device=device, dtype=dtype)

    def scores(
        self, items: list[Any], modality: str, batch_size: int, progress: bool
    ) -> torch.Tensor:
        labels = self.classifier.labels
        column = {label: j for j, label in enumerate(labels)}
        templates = self.classifier.templates_for(modality)
        total = torch.zeros(len(items), len(labels))
        for template in templates:
            results = self.encoder(items, candidate_labels=labels, hypothesis_template=template)
            for i, result in enumerate(results):
                for label, score in zip(result["labels"], result["scores"], strict=True):
                    total[i, column[label]] += score
        return total / len(templates)


class Likelihood(Method):
    """A causal LM's log-likelihood of "<text> <filled template>", averaged over templates and
    turned into probabilities by a softmax over the labels."""

    name = "likelihood"
    inputs = frozenset({"text"})

    def _check_options(self) -> None:
        if not callable(getattr(self.encoder, "log_likelihood", None)):
            raise IncompatibleModelError(
                f"zero-shot method 'likelihood' needs a causal language model with "
                f"log_likelihood (the gpt family), not {_name(self.encoder)!r}; pick one such "
                "as 'gpt2' (see `mmenc list --family gpt`)"
            )

    def scores(
        self, items: list[Any], modality: str, batch_size: int, progress: bool
    ) -> torch.Tensor:
        labels = self.classifier.labels
        templates = self.classifier.templates_for(modality)
        texts = [
            f"{text} {t.format(label)}" for text in items for label in labels for t in templates
        ]
        logs = self.encoder.log_likelihood(texts, batch_size=batch_size)
        return logs.view(len(items), len(labels), len(templates)).mean(dim=-1).softmax(dim=-1)


class Matching(Similarity):
    """Similarity, then the top ``candidates`` labels re-ranked by BLIP's matching head: they
    share their similarity probability in proportion to their match probabilities (averaged
    over the templates); the other labels keep their similarity probability."""

    name = "itm"
    defaults: ClassVar[dict[str, Any]] = {"temperature": DEFAULT_TEMPERATURE, "candidates": 5}

    def _check_options(self) -> None:
        super()._check_options()
        candidates = self.options["candidates"]
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ValueError(f"candidates must be an int of at least 1, got {candidates!r}")
        if not callable(getattr(self.encoder, "match", None)):
            raise IncompatibleModelError(
                f"zero-shot method 'itm' needs an encoder with an image-text matching head "
                f"(BLIP retrieval), not {_name(self.encoder)!r}; pick one such as "
                "'blip-itm-base-coco'"
            )

    def modalities(self) -> frozenset[str]:
        return super().modalities() & {"image"}

    def scores(
        self, items: list[Any], modality: str, batch_size: int, progress: bool
    ) -> torch.Tensor:
        probabilities = super().scores(items, modality, batch_size, progress)
        top = probabilities.topk(min(self.options["candidates"], probabilities.shape[1])).indices
        templates = self.classifier.templates_for(modality)
        labels = self.classifier.labels
        images = [decode_image(item) for item in items]  # once, not once per pair
        pairs = [(i, int(j), t) for i, row in enumerate(top) for j in row for t in templates]
        match = self.encoder.match(
            [images[i] for i, _, _ in pairs],
            [t.format(labels[j]) for _, j, t in pairs],
            batch_size=batch_size,
        )
        match = match.view(*top.shape, len(templates)).mean(dim=-1)
        mass = probabilities.gather(1, top).sum(dim=1, keepdim=True)
        return probabilities.scatter(1, top, mass * match / match.sum(dim=1, keepdim=True))


METHODS: dict[str, type[Method]] = {m.name: m for m in (Similarity, Nli, Likelihood, Matching)}


def method_class(name: str) -> type[Method]:
    """The method registered under ``name``; ValueError listing them otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown zero-shot method {name!r}; use one of {', '.join(METHODS)}")
    return METHODS[name]


def _name(model: Any) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _positive_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) > 0
