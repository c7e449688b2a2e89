"""Turning what users pass in (texts, image files, bytes, arrays) into clean model inputs.

Each checker returns either the clean item or a cause string, so a batch can report every bad
item at once (``InvalidInputError.problems``) instead of stopping at the first.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mmenc.errors import InvalidInputError

ImageLike = Any  # PIL.Image.Image | str | Path | bytes | np.ndarray
IMAGE_TYPES = (Image.Image, Path, bytes, bytearray, memoryview, np.ndarray)

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default bomb threshold (~ 9459 x 9459)


def max_image_pixels() -> int:
    """The decompression-bomb limit: ``MMENC_MAX_IMAGE_PIXELS`` or PIL's default."""
    return int(os.environ.get("MMENC_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))


def as_batch(items: Any, what: str) -> list[Any]:
    """A single item becomes a batch of one; any other iterable becomes a list."""
    if isinstance(items, (str, *IMAGE_TYPES)):
        return [items]
    try:
        return list(items)
    except TypeError:
        raise InvalidInputError(
            [(0, f"expected a list of {what}s, got {type(items).__name__}")], what
        ) from None


def check_text(item: Any) -> str | None:
    """The cause why ``item`` is not an encodable text, or None when it is."""
    if not isinstance(item, str):
        return f"expected a str, got {type(item).__name__} ({_short(item)})"
    try:
        item.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: lone surrogate {item[exc.start]!r} at position {exc.start}"
    return None


def check_nonblank_text(item: Any) -> str | None:
    """``check_text``'s cause, or that the text is blank: for tasks that have nothing to work
    on in an empty text (classification, summarisation, a label or prompt)."""
    why = check_text(item)
    if why is None and not item.strip():
        return "the text is empty (or only whitespace)"
    return why


def text_problems(items: Sequence[Any]) -> list[tuple[int, str]]:
    """Every item that is not an encodable text, as ``(index, cause)``."""
    return [(i, cause) for i, item in enumerate(items) if (cause := check_text(item))]


def text_token_limit(tokenizer: Any, text_config: Any, default: int | None = None) -> int:
    """The longest text a model takes, in tokens: the smaller of its position table and its
    tokenizer's limit (tokenizers without one report a huge sentinel, ignored here)."""
    limits = [getattr(text_config, "max_position_embeddings", None), tokenizer.model_max_length]
    known = [int(n) for n in limits if n and n < 1_000_000]
    if known:
        return min(known)
    if default is not None:
        return default
    raise ValueError("the model states no maximum text length; pass max_length=")


def decode_image(item: ImageLike) -> Image.Image:
    """An upright RGB PIL image from any accepted image form; ValueError says why not."""
    image = _open(item)
    if image.width == 0 or image.height == 0:
        raise ValueError(f"image has zero size ({image.width}x{image.height})")
    limit = max_image_pixels()
    if image.width * image.height > limit:
        raise ValueError(
            f"image is {image.width}x{image.height} = {image.width * image.height:,} pixels, over "
            f"the limit of {limit:,} (a decompression-bomb guard); downscale it or raise "
            "MMENC_MAX_IMAGE_PIXELS"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            image = ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image data ({exc}); the file may be truncated") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode: 16-bit and float images are rescaled to 8 bits, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" and array.max(initial=0) <= 1.0 else 255.0
        if image.mode != "F":
            top = 65535.0 if array.max(initial=0) > 255 else 255.0
        gray = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _open(item: ImageLike) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        return _from_array(item)
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise ValueError(f"file not found: {str(path)!r}")
        return _open_bytes(path.read_bytes(), f"file {str(path)!r}")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _open_bytes(bytes(item), f"{len(item)} bytes")
    raise ValueError(
        f"expected a PIL image, a file path, encoded bytes or a uint8 HxWxC array, "
        f"got {type(item).__name__} ({_short(item)})"
    )


def _open_bytes(data: bytes, described: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError(f"{described} are not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"refused as a decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read {described} as an image: {exc}") from None
    return image


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        raise ValueError(f"array images must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return Image.fromarray(array, "L")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA")
    raise ValueError(f"array images must be HxW or HxWxC with C in 1, 3, 4; got {array.shape}")


def _short(item: Any, width: int = 40) -> str:
    text = repr(item)
    return text if len(text) <= width else text[: width - 3] + "..."


def modality_of(items: Sequence[Any]) -> str | None:
    """ "text" when every item is a str, "image" when none is; None for an empty list."""
    kinds = {"text" if isinstance(item, str) else "image" for item in items}
    if len(kinds) > 1:
        first_text = next(i for i, item in enumerate(items) if isinstance(item, str))
        raise InvalidInputError(
            [(first_text, "a list mixes texts and images; pass all texts or all images")]
        )
    return kinds.pop() if kinds else None
