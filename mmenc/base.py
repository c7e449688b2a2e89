"""``BaseEncoder``: everything an encoder needs except the model's forward pass.

A family subclasses it and implements ``_embed_texts`` and/or ``_embed_images`` for one batch.
The base class checks inputs (reporting every bad item), sorts texts by length so batches pad
little, decodes and preprocesses images on worker threads while the model runs the previous
batch, restores input order, normalises, and returns float32 CPU tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from mmenc._locks import lock_of
from mmenc.errors import InvalidInputError, UnsupportedModalityError
from mmenc.inputs import as_batch, decode_image, modality_of, text_problems

OnError = Literal["raise", "nan"]


@cache
def _pool() -> ThreadPoolExecutor:
    """Image decoding threads: one per two cores (at most 4), since the model's forward pass
    uses every core; more threads measured slower on 2 cores (see docs/benchmarks.md)."""
    workers = max(1, min(4, (os.cpu_count() or 2) // 2))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmenc")


class BaseEncoder:
    """Batching, input decoding, ordering, normalisation and modality checks for one model.

    Subclasses set ``family`` and ``modalities`` (class attributes or in ``__init__``), set
    ``shared_space = True`` when text and image embeddings live in one space (CLIP, BLIP), and
    implement the per-batch forward: ``_embed_texts`` and/or ``_embed_images``. Images reach
    ``_embed_images`` after ``_prepare_image``, which runs on worker threads.
    """

    family: str = ""
    modalities: frozenset[str] = frozenset()
    shared_space: bool = False

    def __init__(
        self, *, name: str, embed_dim: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.name = name
        self.embed_dim = int(embed_dim)
        self.device = torch.device(device)
        self.dtype = dtype

    # -- what a family implements ---------------------------------------------------------
    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Embeddings (len(texts), embed_dim) for one batch, not yet normalised."""
        raise UnsupportedModalityError(self._no_modality("text"))

    def _text_lengths(self, texts: list[str]) -> list[int]:
        """Sizes to sort texts by, so that each batch pads little (default: characters;
        a family with a tokenizer counts tokens, which pads less)."""
        return [len(text) for text in texts]

    def _prepare_image(self, image: Image.Image) -> Any:
        """Per-image preprocessing, run on a worker thread (default: pass the RGB image on)."""
        return image

    def _embed_images(self, images: list[Any]) -> torch.Tensor:
        """Embeddings (len(images), embed_dim) for one batch of prepared images."""
        raise UnsupportedModalityError(self._no_modality("image"))

    # -- the contract ---------------------------------------------------------------------
    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        progress: bool = False,
        on_error: OnError = "raise",
    ) -> torch.Tensor:
        """Embed texts; longer texts than the model's maximum are truncated to it.

        Bad items (not a str, lone surrogates) raise ``InvalidInputError`` listing all of them,
        or with ``on_error="nan"`` get NaN rows while every other row is embedded.
        """
        self._require("text")
        _check_on_error(on_error)
        items = as_batch(texts, "text")
        problems = text_problems(items)
        if problems and on_error == "raise":
            raise InvalidInputError(problems, "text")
        bad = {i for i, _ in problems}
        good = [i for i in range(len(items)) if i not in bad]
        out = self._empty(len(items))
        with lock_of(self):  # the tokenizer is shared state: one thread's texts at a time
            lengths = dict(zip(good, self._text_lengths([items[i] for i in good]), strict=True))
            order = sorted(good, key=lambda i: -lengths[i])
            with torch.inference_mode(), self._bar(len(order), progress, "text") as bar:
                for chunk in _chunks(order, batch_size):
                    out[chunk] = self._embed_texts([items[i] for i in chunk]).float().cpu()
                    bar.update(len(chunk))
        return _finish(out, normalize)

    def encode_image(
        self,
        images: Sequence[Any],
        *,
        batch_size: int = 32,
        normalize: bool = True,
        progress: bool = False,
        on_error: OnError = "raise",
    ) -> torch.Tensor:
        """Embed images: PIL images, file paths, encoded bytes or uint8 HxWxC arrays.

        Images are converted to upright RGB; unreadable, truncated, zero-size or over-limit
        images raise ``InvalidInputError`` naming them, or get NaN rows with ``on_error="nan"``.
        """
        self._require("image")
        _check_on_error(on_error)
        items = as_batch(images, "image")
        out = self._empty(len(items))
        with torch.inference_mode(), self._bar(len(items), progress, "image") as bar:
            for indices, prepared, problems in self._prepared_batches(items, batch_size):
                if problems and on_error == "raise":
                    later = self._problems(items, range(indices[-1] + 1, len(items)))
                    raise InvalidInputError(problems + later, "image")
                good = [i for i in indices if i in prepared]
                if good:
                    batch = [prepared[i] for i in good]
                    out[good] = self._embed_images(batch).float().cpu()
                bar.update(len(indices))
        return _finish(out, normalize)

    def similarity(self, a: Sequence[Any], b: Sequence[Any]) -> torch.Tensor:
        """Cosine similarity (len(a), len(b)); a ``str`` is a text, anything else an image."""
        a, b = as_batch(a, "item"), as_batch(b, "item")
        kind_a, kind_b = modality_of(a), modality_of(b)
        kind_a = kind_a or kind_b or max(self.modalities)  # "text" if it has it
        kind_b = kind_b or kind_a
        if kind_a != kind_b and not self.shared_space:
            raise UnsupportedModalityError(
                f"{self.name!r} ({self.family}) has no shared text-image space, so texts and "
                "images cannot be compared; use a CLIP or BLIP encoder for cross-modal similarity"
            )
        return self._encode(kind_a, a) @ self._encode(kind_b, b).T

    # -- helpers --------------------------------------------------------------------------
    def _encode(self, modality: str, items: list[Any]) -> torch.Tensor:
        encode = self.encode_text if modality == "text" else self.encode_image
        return encode(items)

    def _prepared_batches(
        self, items: list[Any], batch_size: int
    ) -> Iterator[tuple[list[int], dict[int, Any], list[tuple[int, str]]]]:
        """Yield (indices, {index: prepared image}, problems); the next batch is decoded on
        worker threads while the caller runs the model on this one."""
        chunks = _chunks(list(range(len(items))), batch_size)
        pending = [self._submit(items, c) for c in chunks[:1]]
        for n, chunk in enumerate(chunks):
            if n + 1 < len(chunks):
                pending.append(self._submit(items, chunks[n + 1]))
            results = [f.result() for f in pending.pop(0)]
            prepared = {i: r for i, (ok, r) in zip(chunk, results, strict=True) if ok}
            problems = [(i, r) for i, (ok, r) in zip(chunk, results, strict=True) if not ok]
            yield chunk, prepared, problems

    def _problems(self, items: list[Any], indices: range) -> list[tuple[int, str]]:
        """The bad items among ``indices``, so that one error names them all."""
        results = [f.result() for f in self._submit(items, list(indices))]
        return [(i, why) for i, (ok, why) in zip(indices, results, strict=True) if not ok]

    def _submit(self, items: list[Any], chunk: list[int]) -> list[Future[tuple[bool, Any]]]:
        return [_pool().submit(self._try_prepare, items[i]) for i in chunk]

    def _try_prepare(self, item: Any) -> tuple[bool, Any]:
        try:
            return True, self._prepare_image(decode_image(item))
        except ValueError as exc:
            return False, str(exc)

    def _empty(self, n: int) -> torch.Tensor:
        return torch.full((n, self.embed_dim), float("nan"), dtype=torch.float32)

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise UnsupportedModalityError(self._no_modality(modality))

    def _no_modality(self, modality: str) -> str:
        have = ", ".join(sorted(self.modalities)) or "nothing"
        return (
            f"{self.name!r} ({self.family}) cannot encode {modality}: it encodes {have}. "
            f"Pick an encoder with `mmenc list --modality {modality}`."
        )

    def _bar(self, total: int, enabled: bool, unit: str) -> tqdm:
        return tqdm(total=total, disable=not enabled, unit=unit, desc=self.name, leave=False)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name!r} family={self.family} "
            f"modalities={sorted(self.modalities)} dim={self.embed_dim} "
            f"device={self.device} dtype={self.dtype}>"
        )


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', not {on_error!r}")


def _finish(out: torch.Tensor, normalize: bool) -> torch.Tensor:
    return F.normalize(out, dim=-1) if normalize else out
