"""``ZeroShotClassifier``: one object that classifies images or texts into labels it never saw.

Label weights are built once per template set (prompt ensembling: each template filled with the
label, embedded, normalised, averaged over the templates, renormalised, as open_clip builds its
zero-shot classifiers), lazily, on the first call that needs them, and can be saved and loaded.
The scoring rule follows the model (``similarity_scores``). Other methods (NLI, GPT likelihood,
BLIP matching) sit behind the same interface, in ``mmenc.zeroshot.methods``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mmenc.errors import InvalidInputError, UnsupportedModalityError
from mmenc.inputs import as_batch, check_nonblank_text, modality_of
from mmenc.zeroshot.templates import resolve_templates

DEFAULT_TEMPERATURE = 0.01
"""Softmax temperature for encoders that state no logit scale (sentence encoders, BLIP): cosine
similarities of unrelated texts differ by hundredths, so a softmax over raw cosines is nearly
uniform; dividing by 0.01 multiplies them by 100, CLIP's trained logit scale, which open_clip's
zero-shot evaluation also applies to every model. Ranking does not depend on it."""
WEIGHTS_KEY = "mmenc_zeroshot"
"""The safetensors metadata entry holding a weights file's key (JSON)."""


def embed_labels(
    encoder: Any,
    labels: Sequence[str],
    templates: Sequence[str],
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> torch.Tensor:
    """(labels, dim) unit rows: each label's templates filled, embedded, normalised, averaged and
    renormalised (prompt ensembling)."""
    texts = [template.format(label) for label in labels for template in templates]
    embedded = encoder.encode_text(texts, batch_size=batch_size, progress=progress)
    return F.normalize(embedded.view(len(labels), len(templates), -1).mean(dim=1), dim=-1)


def similarity_scores(
    encoder: Any,
    features: torch.Tensor,
    weights: torch.Tensor,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """(n, K) probabilities from unit-length input features and label weights, as the model
    was trained to score pairs: a softmax over ``logit_scale * cos`` (CLIP), a sigmoid of
    ``logit_scale * cos + logit_bias`` per label (SigLIP, ``score_activation == "sigmoid"``),
    else a softmax over ``cos / temperature``."""
    cosine = features @ weights.T
    scale: float | None = getattr(encoder, "logit_scale", None)
    if scale is None:
        return (cosine / temperature).softmax(dim=-1)
    if getattr(encoder, "score_activation", None) == "sigmoid":
        return (cosine * scale + encoder.logit_bias).sigmoid()
    return (cosine * scale).softmax(dim=-1)


class ZeroShotClassifier:
    """Classify images or texts into ``labels`` with any encoder, by one of several methods.

    ``encoder`` is an encoder object or a name for ``mmenc.load`` (with ``device`` and
    ``dtype``); for ``method="nli"`` a name is the NLI model, given to ``mmenc.pipeline``.
    ``templates``: None (``"photo"`` for images, ``"text"`` for texts), a set name from
    ``TEMPLATE_SETS``, or format strings with one ``{}``. ``method``: ``"similarity"``
    (default), ``"nli"``, ``"likelihood"`` or ``"itm"``; ``method_options`` are the method's
    own (``temperature``, ``model``, ``candidates``).
    """

    def __init__(
        self,
        encoder: Any,
        labels: Sequence[str],
        *,
        templates: str | Sequence[str] | None = None,
        method: str = "similarity",
        device: Any = None,
        dtype: Any = None,
        batch_size: int = 32,
        **method_options: Any,
    ) -> None:
        from mmenc.zeroshot.methods import method_class

        self.labels = check_labels(labels)
        self._templates = {m: resolve_templates(templates, m) for m in ("image", "text")}
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
        self.batch_size = batch_size
        self.method = method
        kind = method_class(method)
        self.encoder = kind.load(encoder, device=device, dtype=dtype, options=method_options)
        self._method = kind(self, method_options)
        self._weights: dict[tuple[str, ...], torch.Tensor] = {}

    def __repr__(self) -> str:
        name = getattr(self.encoder, "name", type(self.encoder).__name__)
        return (
            f"<ZeroShotClassifier encoder={name!r} method={self.method!r} "
            f"labels={len(self.labels)}>"
        )

    @property
    def modalities(self) -> frozenset[str]:
        """The input modalities this encoder and method can classify."""
        return self._method.modalities()

    def templates_for(self, modality: str) -> tuple[str, ...]:
        """The templates filled with each label when classifying inputs of ``modality``."""
        if modality not in self._templates:
            raise ValueError(f"modality must be 'text' or 'image', not {modality!r}")
        return self._templates[modality]

    def label_weights(self, modality: str) -> torch.Tensor:
        """(K, dim) label embeddings for inputs of ``modality``, built on first use."""
        self._method.require_weights()
        templates = self.templates_for(modality)
        if templates not in self._weights:
            self._weights[templates] = embed_labels(
                self.encoder, self.labels, templates, batch_size=self.batch_size
            )
        return self._weights[templates]

    def scores(
        self, inputs: Sequence[Any], *, batch_size: int | None = None, progress: bool = False
    ) -> torch.Tensor:
        """float32 CPU (n, K) probabilities, rows in input order, columns in label order.

        ``inputs`` are all texts or all images (paths, PIL images, bytes, arrays). Blank texts
        and unreadable images raise ``InvalidInputError`` naming each; a modality this
        encoder or method cannot classify raises ``UnsupportedModalityError``.
        """
        items = as_batch(inputs, "input")
        modality = modality_of(items)
        if modality is None:
            return torch.empty((0, len(self.labels)), dtype=torch.float32)
        if modality not in self.modalities:
            raise UnsupportedModalityError(self._method.cannot(modality))
        if modality == "text":
            problems = [
                (i, why) for i, text in enumerate(items) if (why := check_nonblank_text(text))
            ]
            if problems:
                raise InvalidInputError(problems, "text")
        size = batch_size or self.batch_size
        return self._method.scores(items, modality, size, progress).float().cpu()

    def predict(self, inputs: Sequence[Any], top_k: int = 1) -> list[list[dict[str, Any]]]:
        """Per input, the ``top_k`` best ``{'label', 'score'}`` (capped at the number of labels),
        best first; equal scores keep label order."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int of at least 1, got {top_k!r}")
        k = min(top_k, len(self.labels))
        results = []
        for row in self.scores(inputs):
            order = row.argsort(descending=True, stable=True)[:k].tolist()
            results.append([{"label": self.labels[i], "score": float(row[i])} for i in order])
        return results

    # -- saved label weights --------------------------------------------------------------------
    def save_weights(self, path: str | Path) -> Path:
        """Write the label weights of every modality this classifier handles (building any not
        built yet) to a safetensors file keyed by encoder name, labels, templates and method."""
        from safetensors.torch import save_file

        tensors = {m: self.label_weights(m).contiguous() for m in sorted(self.modalities)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata={WEIGHTS_KEY: json.dumps(self._key())})
        return path

    def load_weights(self, path: str | Path) -> None:
        """Use label weights saved by ``save_weights``; a file made for another encoder, label
        list, template set or method is refused with a ValueError naming what differs."""
        from safetensors import safe_open

        self._method.require_weights()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no label weights file at {str(path)!r}")
        with safe_open(str(path), framework="pt") as file:
            key = json.loads((file.metadata() or {}).get(WEIGHTS_KEY, "null") or "null")
            _check_key(path, key, self._key())
            tensors = {m: file.get_tensor(m) for m in file.keys()}  # noqa: SIM118
        for modality, weights in tensors.items():
            self._weights[self.templates_for(modality)] = weights.float()

    def _key(self) -> dict[str, Any]:
        return {
            "encoder": getattr(self.encoder, "name", None),
            "labels": self.labels,
            "templates": {m: list(self.templates_for(m)) for m in sorted(self.modalities)},
            "method": self.method,
        }


def check_labels(labels: Any) -> list[str]:
    """At least two distinct, non-blank str labels; ValueError naming every bad one."""
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ValueError(
            f"labels must be a list of str such as ['cat', 'dog'], not {type(labels).__name__} "
            f"({labels!r}); split a comma-separated string with .split(',')"
        )
    if len(labels) < 2:
        raise ValueError(
            f"zero-shot classification needs at least two labels to choose between, got "
            f"{list(labels)!r}"
        )
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if why := check_nonblank_text(label):
            problems.append(f"{i}: {why}")
        elif (first := seen.setdefault(label.strip(), i)) != i:
            problems.append(f"{i}: {label!r} repeats label {first}")
    if problems:
        raise ValueError(f"bad labels (index: cause): {'; '.join(problems)}")
    return list(labels)


def _check_key(path: Path, found: Any, wanted: dict[str, Any]) -> None:
    if not isinstance(found, dict):
        raise ValueError(f"{str(path)!r} is not a label weights file written by save_weights")
    differ = [field for field in wanted if found.get(field) != wanted[field]]
    if differ:
        detail = "; ".join(f"{f}: file {found.get(f)!r}, classifier {wanted[f]!r}" for f in differ)
        raise ValueError(
            f"the label weights in {str(path)!r} were built for another {', '.join(differ)} "
            f"({_short(detail)}); build them for this classifier and save_weights again"
        )


def _short(text: str, width: int = 400) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
