"""``mmenc.train.lit``: locked-image text tuning (LiT; Zhai et al., CVPR 2022).

An image tower (any timm backbone plus a linear projection) learns to put each image where the
frozen text encoder puts its captions, with CLIP's symmetric InfoNCE loss and a learned
temperature. The text side never changes, so every caption is embedded once, before training,
and the trained model classifies zero-shot with any label text the text encoder understands.

Captions are templates filled with an image's label (several per label). A batch may hold
several images of one label and the same caption twice, so the loss's targets are soft: image
``i`` and caption ``j`` match when ``j`` is one of the captions of ``i``'s label (with one
image per label and distinct captions this is CLIP's loss exactly); otherwise same-class pairs
would be pushed apart.

Every epoch ends with a zero-shot validation on a held-out split and a save of the model and the
optimiser state into ``out_dir``; ``resume=True`` continues from the last saved epoch and ends
with the same weights as an uninterrupted run (each epoch draws from ``(seed, epoch)``).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mmenc.comparison.datasets import Dataset, DatasetError, load_dataset
from mmenc.encoder import Encoder
from mmenc.errors import UnsupportedModalityError
from mmenc.inputs import decode_image
from mmenc.train.lit_model import (
    CONFIG_FILE,
    FORMAT,
    MAX_LOGIT_SCALE,
    WEIGHTS_FILE,
    ImageTower,
    backbone_name,
    normalise,
    read_config,
    save_model,
    to_pixels,
)

logger = logging.getLogger("mmenc.train")

DEFAULT_CAPTIONS = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a {}.",
    "{}",
)
STATE_FOLDER = "checkpoint"  # the model, optimiser state and history; removed when complete
OPTIMIZER_FILE = "optimizer.safetensors"
_KEY = ("text_encoder", "image_backbone", "backbone_options", "image_size", "labels", "training")
"""Config entries a resumed run must share with the saved one."""
DEFAULT_IMAGE_SIZE = 224
WARMUP_FRACTION = 0.05

Captions = Sequence[str] | str | Callable[[str], Sequence[str]]


@dataclass
class LitResult:
    """What ``lit`` made: the model folder, one record per epoch (``loss``, ``val_top1``,
    ``logit_scale``, ``seconds``), the images that could not be read, as ``(source, why)``,
    and the trained model, ready to use (the same as ``mmenc.load(path)``)."""

    path: Path
    history: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    encoder: Encoder


def lit(
    image_backbone: str,
    text_encoder: str | Encoder | None,
    dataset: Any,
    *,
    out_dir: str | Path,
    captions: Captions = DEFAULT_CAPTIONS,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    seed: int = 0,
    image_size: int | None = None,
    pretrained: bool = False,
    backbone_options: dict[str, Any] | None = None,
    validation: float | Any | None = 0.1,
    validation_templates: str | Sequence[str] | None = None,
    augment: bool = True,
    resume: bool = False,
    progress: bool = True,
    device: Any = None,
) -> LitResult:
    """Train a LiT image tower on a labelled image ``dataset``; save it in ``out_dir``.

    ``image_backbone``: a timm architecture (``"mobilenetv3_small_050"``, ``"timm:resnet18"``),
    from scratch, or with timm's pretrained weights if ``pretrained``. ``text_encoder``: an mmenc
    text encoder name (None: ``"minilm-l6"``) or a loaded encoder whose ``name`` ``mmenc.load``
    can open again. ``dataset``: anything ``mmenc.comparison.datasets.load_dataset`` takes.
    ``captions``: templates with ``{}`` for the label (or a template set's name), or a function
    from a label to its captions. ``validation``: the fraction of each class held out (seeded),
    a dataset with the same labels, or 0 / None for none; each epoch reports zero-shot top-1
    on it with ``validation_templates`` (default: the caption templates; ``"photo"`` for a
    function).
    ``image_size`` defaults to the backbone's own input size.

    Unreadable images are skipped, logged and listed in the result; a dataset with fewer than
    two classes, or a class left with no training image, raises ``DatasetError``.
    """
    plan = _Plan.make(locals())
    out = plan.out
    state_dir = out / STATE_FOLDER
    existing = state_dir.exists() or (out / CONFIG_FILE).exists()
    if existing and not resume:
        raise FileExistsError(
            f"{out} already holds a LiT model or checkpoint; pass resume=True (--resume) to "
            "continue it, or choose another out_dir"
        )
    encoder = _text_encoder(text_encoder, plan.device)
    data = _image_dataset(dataset)
    train_set, val_set = _split(data, validation, seed)
    torch.manual_seed(seed)
    tower = ImageTower(
        image_backbone, encoder.embed_dim, pretrained=pretrained, options=backbone_options
    ).to(plan.device)
    data_config = tower.data_config()
    size = image_size or int(data_config.get("input_size", (3, DEFAULT_IMAGE_SIZE))[-1])
    train = _decode(train_set, size, progress, "training")
    val = _decode(val_set, size, progress, "validation")
    _check_classes(data.labels, train, val)
    bank = _CaptionBank.build(encoder, data.labels, captions, progress)
    config = {
        "format": FORMAT,
        "family": "lit",
        "text_encoder": encoder.name,
        "embed_dim": encoder.embed_dim,
        "image_backbone": backbone_name(image_backbone),
        "backbone_options": backbone_options or {},
        "image_size": size,
        "mean": list(data_config.get("mean", (0.5, 0.5, 0.5))),
        "std": list(data_config.get("std", (0.5, 0.5, 0.5))),
        "labels": data.labels,
        "training": plan.record(data, bank, len(train.labels), len(val.labels)),
    }
    run = _Run(plan, tower, config, bank, train, val, encoder)
    done = run.restore(out) if existing else 0
    for epoch in range(done, epochs):
        run.epoch(epoch)
        run.save(out, state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    tower.eval()
    return LitResult(out, run.history, train.skipped + val.skipped, run.classifier.encoder)


@dataclass
class _Plan:
    """The checked arguments of one ``lit`` call."""

    out: Path
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    augment: bool
    progress: bool
    device: torch.device
    captions: Captions
    validation_templates: Any
    arguments: dict[str, Any]

    @classmethod
    def make(cls, given: dict[str, Any]) -> _Plan:
        from mmenc.runtime import resolve_device

        for key in ("epochs", "batch_size"):
            value = given[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if given["batch_size"] < 2:
            raise ValueError("batch_size must be at least 2: the loss contrasts images in a batch")
        for key in ("lr", "weight_decay"):
            if (
                not isinstance(given[key], (int, float))
                or given[key] < 0
                or given[key] != given[key]
            ):
                raise ValueError(f"{key} must be a non-negative number, got {given[key]!r}")
        if given["lr"] == 0:
            raise ValueError("lr must be positive")
        size = given["image_size"]
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 8):
            raise ValueError(f"image_size must be an int of at least 8, got {size!r}")
        recorded = ("image_backbone", "epochs", "batch_size", "lr", "weight_decay", "seed")
        return cls(
            out=Path(given["out_dir"]),
            epochs=given["epochs"],
            batch_size=given["batch_size"],
            lr=float(given["lr"]),
            weight_decay=float(given["weight_decay"]),
            seed=int(given["seed"]),
            augment=bool(given["augment"]),
            progress=bool(given["progress"]),
            device=resolve_device(given["device"]),
            captions=given["captions"],
            validation_templates=given["validation_templates"],
            arguments={
                **{key: given[key] for key in recorded},
                "image_size": size,
                "pretrained": bool(given["pretrained"]),
                "augment": bool(given["augment"]),
                "validation": given["validation"]
                if isinstance(given["validation"], (int, float))
                else "a given dataset",
            },
        )

    def record(self, data: Dataset, bank: _CaptionBank, n_train: int, n_val: int) -> dict[str, Any]:
        """What trained the model, saved in its config; a resumed run must match it."""
        return {
            **self.arguments,
            "dataset": data.name,
            "training_images": n_train,
            "validation_images": n_val,
            "captions": bank.texts,
        }


def _text_encoder(text_encoder: str | Encoder | None, device: torch.device) -> Encoder:
    import mmenc

    encoder = (
        mmenc.load(text_encoder or "minilm-l6", device=device)
        if (text_encoder is None or isinstance(text_encoder, str))
        else text_encoder
    )
    if "text" not in encoder.modalities:
        raise UnsupportedModalityError(
            f"{encoder.name!r} ({encoder.family}) encodes {sorted(encoder.modalities)}, not text: "
            "LiT aligns images to a text encoder; pick one from `mmenc list --modality text`"
        )
    return encoder


def _image_dataset(dataset: Any) -> Dataset:
    data = load_dataset(dataset)
    if data.modality != "image":
        raise DatasetError(f"dataset {data.name!r} holds {data.modality}s; LiT trains on images")
    if len(data.labels) < 2:
        raise DatasetError(
            f"dataset {data.name!r} has one class ({data.labels}): a contrastive model learns "
            "to tell classes apart, so it needs at least two"
        )
    return data


def _split(data: Dataset, validation: float | Any, seed: int) -> tuple[Dataset, Dataset]:
    if validation is None or validation == 0:
        return data, Dataset(f"{data.name}-validation", "image", [], labels=data.labels)
    if isinstance(validation, (int, float)) and not isinstance(validation, bool):
        return data.split(float(validation), seed)
    held = load_dataset(validation)
    if held.modality != "image" or set(held.labels) - set(data.labels):
        raise DatasetError(
            f"the validation set {held.name!r} must hold images labelled with the training "
            f"labels {data.labels}; it has {held.modality}s labelled {held.labels}"
        )
    held.labels = data.labels
    return data, held


@dataclass
class _Images:
    """Decoded images as uint8 pixels at the training size, their label indices, and the
    examples that could not be read."""

    pixels: torch.Tensor
    labels: torch.Tensor
    skipped: list[tuple[str, str]]

    def counts(self) -> Counter[int]:
        return Counter(self.labels.tolist())


def _decode(data: Dataset, size: int, progress: bool, what: str) -> _Images:
    """Every image decoded once, kept as uint8 (n x 3 x size x size bytes), so epochs cost no
    decoding; unreadable ones are skipped and listed."""
    index = {label: i for i, label in enumerate(data.labels)}
    pixels, labels, skipped = [], [], []
    for example in tqdm(data, disable=not progress, desc=f"decoding {what} images", leave=False):
        try:
            pixels.append(to_pixels(decode_image(example.input), size))
        except ValueError as exc:
            skipped.append((example.source, str(exc)))
            continue
        labels.append(index[example.label])
    if skipped:
        shown = "; ".join(f"{source}: {why}" for source, why in skipped[:5])
        logger.warning("skipped %d unreadable %s image(s): %s", len(skipped), what, shown)
    stacked = torch.stack(pixels) if pixels else torch.empty((0, 3, size, size), dtype=torch.uint8)
    return _Images(stacked, torch.tensor(labels, dtype=torch.long), skipped)


def _check_classes(labels: list[str], train: _Images, val: _Images) -> None:
    have, held = train.counts(), val.counts()
    empty = [i for i in range(len(labels)) if not have[i]]
    if empty:
        detail = ", ".join(f"{labels[i]!r} ({held[i]} held out for validation)" for i in empty)
        unreadable = f"; {len(train.skipped)} image(s) could not be read" if train.skipped else ""
        raise DatasetError(
            f"{len(empty)} class(es) have no training image: {detail}{unreadable}. Add images "
            "to these classes or remove them from the dataset."
        )


class _CaptionBank:
    """Every distinct caption embedded once by the frozen text encoder, and which captions
    describe which label (``members``: labels x captions, bool)."""

    def __init__(self, texts: list[str], embeddings: torch.Tensor, members: torch.Tensor) -> None:
        self.texts, self.embeddings, self.members = texts, embeddings, members

    @classmethod
    def build(
        cls, encoder: Encoder, labels: list[str], captions: Captions, progress: bool
    ) -> _CaptionBank:
        per_label = [_captions_of(label, captions) for label in labels]
        texts = list(dict.fromkeys(text for texts in per_label for text in texts))
        column = {text: j for j, text in enumerate(texts)}
        members = torch.zeros((len(labels), len(texts)), dtype=torch.bool)
        for i, label_texts in enumerate(per_label):
            members[i, [column[text] for text in label_texts]] = True
        embeddings = encoder.encode_text(texts, progress=progress)
        return cls(texts, embeddings, members)


def _captions_of(label: str, captions: Captions) -> list[str]:
    from mmenc.zeroshot import resolve_templates

    if callable(captions):
        made = captions(label)
        if (
            isinstance(made, str)
            or not made
            or not all(isinstance(t, str) and t.strip() for t in made)
        ):
            raise ValueError(
                f"captions({label!r}) must return a non-empty list of non-empty str, got {made!r}"
            )
        return list(made)
    return [template.format(label) for template in resolve_templates(captions, "image")]


class _Run:
    """The training state of one ``lit`` call: model, optimiser, schedule and history."""

    def __init__(
        self,
        plan: _Plan,
        tower: ImageTower,
        config: dict[str, Any],
        bank: _CaptionBank,
        train: _Images,
        val: _Images,
        encoder: Encoder,
    ) -> None:
        self.plan, self.tower, self.config = plan, tower, config
        self.bank, self.train, self.val = bank, train, val
        self.history: list[dict[str, Any]] = []
        decay = [p for p in tower.parameters() if p.ndim >= 2]
        other = [p for p in tower.parameters() if p.ndim < 2]  # biases, norms, temperature
        groups: list[dict[str, Any]] = [{"params": decay}, {"params": other, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(
            groups,
            lr=plan.lr,
            weight_decay=plan.weight_decay,
        )
        n = len(train.labels)
        self.steps_per_epoch = max(1, n // plan.batch_size)
        self.total_steps = self.steps_per_epoch * plan.epochs
        self.classifier = _validator(self, encoder)

    # -- one epoch --------------------------------------------------------------------------
    def epoch(self, epoch: int) -> None:
        plan, started = self.plan, time.perf_counter()
        torch.manual_seed(plan.seed * 100_003 + epoch)  # every draw of this epoch, resumable
        self.tower.train()
        order = torch.randperm(len(self.train.labels))
        batches = order[: self.steps_per_epoch * plan.batch_size].view(self.steps_per_epoch, -1)
        if len(order) < plan.batch_size:
            batches = order.view(1, -1)
        total = 0.0
        bar = tqdm(
            batches,
            disable=not plan.progress,
            desc=f"epoch {epoch + 1}/{plan.epochs}",
            unit="batch",
            leave=False,
        )
        for step, batch in enumerate(bar, epoch * self.steps_per_epoch):
            self._set_lr(step)
            loss = self._loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                self.tower.logit_scale.clamp_(max=math.log(MAX_LOGIT_SCALE))
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        record = {
            "epoch": epoch + 1,
            "loss": round(total / len(batches), 5),
            "val_top1": self._validate(),
            "logit_scale": round(self.tower.scale(), 3),
            "seconds": round(time.perf_counter() - started, 1),
        }
        self.history.append(record)
        message = (
            f"epoch {record['epoch']}/{plan.epochs}: loss {record['loss']:.4f}, held-out "
            f"zero-shot top-1 {_percent(record['val_top1'])} ({record['seconds']} s)"
        )
        (tqdm.write if plan.progress else logger.info)(message)

    def _set_lr(self, step: int) -> None:
        """Linear warm-up over the first 5% of steps, then a cosine decay to zero."""
        warmup = max(1, round(WARMUP_FRACTION * self.total_steps))
        if step < warmup:
            factor = (step + 1) / warmup
        else:
            factor = 0.5 * (
                1 + math.cos(math.pi * (step - warmup) / max(1, self.total_steps - warmup))
            )
        for group in self.optimizer.param_groups:
            group["lr"] = self.plan.lr * factor

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        device = self.plan.device
        labels = self.train.labels[batch]
        members = self.bank.members[labels]  # (b, captions): the captions each image may take
        chosen = torch.multinomial(members.float(), 1).squeeze(1)
        pixels = normalise(self.train.pixels[batch].to(device), self.config)
        if self.plan.augment:
            pixels = _augment(pixels)
        images = F.normalize(self.tower(pixels), dim=-1)
        texts = self.bank.embeddings[chosen].to(device)
        logits = self.tower.logit_scale.exp() * images @ texts.T
        targets = members[:, chosen].float().to(device)  # image i matches caption j
        return (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets.T)) / 2

    def _validate(self) -> float | None:
        if not len(self.val.labels):
            return None
        self.tower.eval()
        images = [p.permute(1, 2, 0).numpy() for p in self.val.pixels]
        scores = self.classifier.scores(images, batch_size=128)
        self.tower.train()
        return round(float((scores.argmax(1) == self.val.labels).float().mean()), 5)

    # -- checkpoints ------------------------------------------------------------------------
    def save(self, out: Path, state_dir: Path) -> None:
        """The model so far into ``out``, and a checkpoint to resume from: the same model, the
        optimiser's tensors (safetensors) and the history, written to a new folder that then
        replaces the old one, so an interruption leaves one whole checkpoint."""
        from safetensors.torch import save_file

        config = {**self.config, "history": self.history}
        save_model(out, self.tower, config)
        fresh, old = state_dir.with_name(".checkpoint.new"), state_dir.with_name(".checkpoint.old")
        shutil.rmtree(fresh, ignore_errors=True)
        save_model(fresh, self.tower, config)
        tensors = {
            f"{index}.{key}": value.contiguous().cpu()
            for index, values in self.optimizer.state_dict()["state"].items()
            for key, value in values.items()
        }
        save_file(tensors, str(fresh / OPTIMIZER_FILE))
        if state_dir.exists():
            state_dir.rename(old)
        fresh.rename(state_dir)
        shutil.rmtree(old, ignore_errors=True)

    def restore(self, out: Path) -> int:
        """Load the last checkpoint in ``out`` (or its finished model); the epochs done."""
        from safetensors.torch import load_file

        state_dir = out / STATE_FOLDER
        source = state_dir if state_dir.exists() else out
        saved = read_config(source)
        differ = sorted(k for k in _KEY if saved.get(k) != self.config.get(k))
        if differ:
            raise ValueError(
                f"cannot resume {out}: it was trained with other settings ({', '.join(differ)}); "
                "resume with the same arguments, or train into another out_dir"
            )
        self.tower.load_state_dict(load_file(str(source / WEIGHTS_FILE)))
        self.history = saved["history"]
        if source is state_dir:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for name, tensor in load_file(str(state_dir / OPTIMIZER_FILE)).items():
                index, key = name.split(".", 1)
                state.setdefault(int(index), {})[key] = tensor
            groups = self.optimizer.state_dict()["param_groups"]
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        logger.info("resuming %s after epoch %d", out, len(self.history))
        return len(self.history)


def _validator(run: _Run, text_encoder: Encoder) -> Any:
    """A ZeroShotClassifier over the live tower (its label weights are built once: the text
    side never changes)."""
    from mmenc_lit._encoder import LitEncoder

    from mmenc.zeroshot import ZeroShotClassifier

    templates = run.plan.validation_templates
    if templates is None:
        templates = "photo" if callable(run.plan.captions) else run.plan.captions
    device = run.plan.device
    encoder = LitEncoder(
        run.tower,
        run.config,
        text_encoder,
        name=str(run.plan.out),
        device=device,
        dtype=torch.float32,
    )
    return ZeroShotClassifier(encoder, run.config["labels"], templates=templates)


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against each row's matches, weighted equally."""
    weights = targets / targets.sum(dim=1, keepdim=True)
    return -(weights * logits.log_softmax(dim=1)).sum(dim=1).mean()


def _augment(pixels: torch.Tensor) -> torch.Tensor:
    """A random affine per image: rotation within 10 degrees, scale 0.9-1.1, shift up to 8% of
    the side (no flips or colour changes: both can change what a caption says)."""
    n = len(pixels)
    angle = (torch.rand(n) * 2 - 1) * math.radians(10)
    zoom = 1 + (torch.rand(n) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2) * 2 - 1) * 0.16  # grid coordinates span 2: 8% of the side
    cos, sin = angle.cos() / zoom, angle.sin() / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(pixels)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, padding_mode="border", align_corners=False)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
