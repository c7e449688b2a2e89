"""image-classification: ``[{'label', 'score'}]`` per image, sorted by score, as transformers'
pipeline gives them, from a transformers classification head or a timm classifier.

Labels come from the checkpoint: transformers' ``id2label``; for timm the config's
``label_names`` (shown through ``label_descriptions`` when it has them), else an ``id2label`` in
its config.json, else ImageNet's class names when timm infers an ImageNet class set from the
number of classes (as timm's own inference script does), else ``LABEL_i``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import torch

from mmenc.errors import IncompatibleModelError
from mmenc.hub import hf_reference, hub_errors, model_config
from mmenc.inputs import decode_image
from mmenc.plugins import get_host
from mmenc.tasks.base import checked_choice, is_positive_int
from mmenc.tasks.hf import (
    FUNCTIONS,
    TransformersPipeline,
    apply_function,
    checkpoint_for,
    default_function,
    head_options,
)
from mmenc_image._common import ImagePipeline

logger = logging.getLogger("mmenc")

HEADS = ("ForImageClassification", "ForImageClassificationWithTeacher")


class ImageClassificationPipeline(ImagePipeline, TransformersPipeline):
    """A transformers ``AutoModelForImageClassification`` with its image processor; ``build``
    returns a ``TimmClassificationPipeline`` for timm models.

    ``function_to_apply`` None (or "default") picks what transformers picks: sigmoid for
    multi-label or single-output models, nothing for regression, softmax otherwise.
    ``num_labels`` / ``id2label`` put a new, untrained head on the model's body.
    """

    model_class = "AutoModelForImageClassification"
    heads = HEADS
    preprocessor_class = "AutoImageProcessor"
    new_head_allowed = True

    defaults: ClassVar[dict[str, Any]] = {"top_k": 5, "function_to_apply": None}

    @classmethod
    def build(cls, model: Any, **kwargs: Any) -> ImageClassificationPipeline:
        """A timm model gets a ``TimmClassificationPipeline``, any other the generic build."""
        timm = _timm_checkpoint(model, kwargs["task"])
        if timm is None:
            return super().build(model, **kwargs)
        return TimmClassificationPipeline.open(*timm, **kwargs)

    @cached_property
    def labels(self) -> list[str]:
        return label_list(self.model.config.id2label, self.model.config.num_labels)

    @cached_property
    def default_function(self) -> str:
        return default_function(self.model.config)

    # -- calling --------------------------------------------------------------------------
    def _checked_options(self, options: dict[str, Any]) -> dict[str, Any]:
        options = super()._checked_options(options)
        top_k = options.get("top_k")
        if top_k is not None and not is_positive_int(top_k):
            raise ValueError(
                f"top_k must be a positive integer or None (all labels), not {top_k!r}"
            )
        function = options.get("function_to_apply")
        if function is not None:
            options["function_to_apply"] = checked_choice("function_to_apply", function, FUNCTIONS)
        return options

    def _run(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        function = options["function_to_apply"] or "default"
        function = self.default_function if function == "default" else function
        top_k = options["top_k"]
        results = []
        with torch.inference_mode():
            for batch in self.batches(items):
                logits = self._logits([decode_image(item) for item in batch]).float().cpu()
                results += [self._ranked(apply_function(function, row), top_k) for row in logits]
        return results

    def _logits(self, images: list[Any]) -> torch.Tensor:
        pixels = self.preprocessor(images=images, return_tensors="pt")["pixel_values"]
        return self.model(pixel_values=pixels.to(self.model.device, self.model.dtype)).logits

    def _ranked(self, scores: torch.Tensor, top_k: int | None) -> list[dict[str, Any]]:
        """Labels by descending score; equal scores keep the model's label order."""
        ranked = sorted(zip(scores.tolist(), self.labels, strict=True), key=lambda p: -p[0])
        return [{"label": label, "score": score} for score, label in ranked[:top_k]]


class TimmClassificationPipeline(ImageClassificationPipeline):
    """A timm model with its classifier head and timm's own evaluation transform."""

    @classmethod
    def open(
        cls,
        source: Any,
        config: dict[str, Any],
        *,
        task: str,
        tokenizer: Any = None,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int | None = None,
        revision: str | None = None,
        num_labels: int | None = None,
        id2label: Any = None,
        **options: Any,
    ) -> TimmClassificationPipeline:
        """``source`` is what ``timm.create_model`` takes, or a timm model object; ``config``
        the checkpoint's config.json, when it has one. The other arguments are ``build``'s;
        timm brings its own transform, so ``tokenizer`` is not used, nor is ``revision``."""
        head = head_options(source, task, num_labels, id2label)
        labels = list(head["id2label"].values()) if head else None
        net = source if isinstance(source, torch.nn.Module) else _create_timm(source, labels, task)
        if not net.num_classes:
            raise IncompatibleModelError(
                f"{task} cannot use timm model {_timm_name(net)!r}: it has no classifier head "
                "(num_classes=0). Pick a timm model trained for classification, or pass "
                "num_labels=... for a new head."
            )
        labels = labels or _timm_labels(net, config)
        return cls(
            TimmClassifier(net.to(device=device, dtype=dtype).eval(), labels),
            None,
            task=task,
            batch_size=batch_size,
            options=options,
        )

    @cached_property
    def labels(self) -> list[str]:
        return self.model.labels

    @cached_property
    def default_function(self) -> str:
        return "sigmoid" if self.model.net.num_classes == 1 else "softmax"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task={self.task!r} model={_timm_name(self.model.net)!r}>"

    def _logits(self, images: list[Any]) -> torch.Tensor:
        return self.model.logits(images)


class TimmClassifier:
    """A timm model and its evaluation transform, with what the pipeline base asks of a model:
    ``device`` and ``save_pretrained``, which writes timm's hub layout (config.json, with the
    pipeline's labels as ``label_names``, and model.safetensors) that loads back as a timm
    folder."""

    def __init__(self, net: Any, labels: list[str]) -> None:
        from timm.data import create_transform, resolve_model_data_config

        self.net = net
        self.labels = labels
        self.transform = create_transform(**resolve_model_data_config(net))

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def logits(self, images: list[Any]) -> torch.Tensor:
        pixels = torch.stack([self.transform(image) for image in images])
        weight = next(self.net.parameters())
        return self.net(pixels.to(weight.device, weight.dtype))

    def save_pretrained(self, folder: str | Path) -> None:
        from timm.models import save_for_hf

        save_for_hf(
            self.net,
            str(folder),
            model_config={"label_names": self.labels},
            safe_serialization=True,
        )


# -- opening models ---------------------------------------------------------------------------
def _timm_checkpoint(model: Any, task: str) -> tuple[Any, dict[str, Any]] | None:
    """(what timm.create_model takes, the config.json) when ``model`` is a timm model:
    ``timm:NAME``, a folder or hub repo in timm's layout, or a timm model object; else None."""
    from mmenc_vit import timm_source

    if isinstance(model, torch.nn.Module):
        from transformers import PreTrainedModel

        is_timm = hasattr(model, "pretrained_cfg") and not isinstance(model, PreTrainedModel)
        return (model, {}) if is_timm else None
    if not isinstance(model, (str, Path)):
        return None
    name = str(model)
    if name.lower().startswith("timm:"):
        source = timm_source(name[len("timm:") :])
        folder = source.removeprefix("local-dir:")
        local = source.startswith("local-dir:") and Path(folder).is_dir()
        return source, ((model_config(folder) or {}) if local else {})
    spec = get_host().lookup(name)
    if spec is not None and spec.checkpoint is None and hf_reference(name) is None:
        raise IncompatibleModelError(
            f"{task} cannot open the registry encoder {name!r} by name: it names no checkpoint "
            f"for task pipelines (its source: {spec.source or 'unknown'}). Pass 'timm:NAME', a "
            "model folder or a hub id."
        )
    ref = checkpoint_for(name)
    config = model_config(ref) if hf_reference(ref) else None
    if config and "architecture" in config and "model_type" not in config:
        return timm_source(ref), config
    return None


def _create_timm(source: str, labels: list[str] | None, task: str) -> Any:
    import timm
    from mmenc_vit._timm import _weights_ref

    ref = _weights_ref(source, f"timm:{source}")
    if labels is not None:
        logger.warning(
            "%s: %s gets a new, untrained classification head; fine-tune it before use.",
            task,
            source,
        )
    extra: dict[str, Any] = {"num_classes": len(labels)} if labels is not None else {}
    with hub_errors(ref):
        return timm.create_model(source, pretrained=True, **extra)


def _timm_labels(net: Any, config: dict[str, Any]) -> list[str]:
    n = int(net.num_classes)
    pretrained = net.pretrained_cfg or {}
    if pretrained.get("label_names"):
        descriptions = pretrained.get("label_descriptions") or {}
        return [descriptions.get(name, name) for name in label_list(pretrained["label_names"], n)]
    if config.get("id2label"):
        return label_list(config["id2label"], n)
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(net)
    if subset:
        return list(ImageNetInfo(subset).label_descriptions())
    return label_list({}, n)


def _timm_name(net: Any) -> str:
    cfg = getattr(net, "pretrained_cfg", None) or {}
    return str(cfg.get("hf_hub_id") or cfg.get("file") or cfg.get("architecture") or "timm model")


# -- labels ------------------------------------------------------------------------------------
def label_list(id2label: Mapping[Any, str] | list[str] | tuple[str, ...], n: int) -> list[str]:
    """Labels 0..n-1 from a list or an id → label mapping (keys may be JSON strings);
    missing ids are named ``LABEL_i`` as transformers names them."""
    by_id: dict[int, str] = (
        dict(enumerate(id2label))
        if isinstance(id2label, (list, tuple))
        else {int(k): v for k, v in id2label.items()}
    )
    return [str(by_id.get(i, f"LABEL_{i}")) for i in range(n)]
