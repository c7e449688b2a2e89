"""Turning what users pass in (texts, image files, bytes, arrays) into clean model inputs.

Each checker returns either the clean item or a cause string, so a batch can report every bad
item at once (``InvalidInputError.problems``) instead of stopping at the first.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from mmenc.errors import InvalidInputError

ImageLike = Any  # PIL.Image.Image | str | Path | bytes | np.ndarray
IMAGE_TYPES = (Image.Image, Path, bytes, bytearray, memoryview, np.ndarray)

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default bomb threshold (~ 9459 x 9459)
MAX_ASPECT_RATIO = 64  # longer strips are centre-cropped to this ratio: see limit_aspect_ratio
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_UPRIGHT = {  # EXIF orientation -> the transpose that makes the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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
    """An upright RGB PIL image from any accepted image form; ValueError says why not.

    Images longer than ``MAX_ASPECT_RATIO`` times their short side come back centre-cropped to
    that ratio (see ``limit_aspect_ratio``).
    """
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
        image.load()
        image = _upright(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image data ({exc}); the file may be truncated") from None
    return limit_aspect_ratio(to_rgb(image))


def limit_aspect_ratio(image: Image.Image) -> Image.Image:
    """``image`` centre-cropped along its long side to ``MAX_ASPECT_RATIO`` times its short side.

    Centre-crop preprocessing (CLIP, open_clip, timm, LiT) resizes the short side to the model's
    size first: a 1x100000 strip becomes 224 x 22,400,000 pixels (gigabytes, minutes) of which
    the model keeps the central square. That square, plus the resampling filter's few pixels of
    support, lies far inside the kept strip, so these models see the same pixels: exactly when
    the resize scale is exact (a 1-pixel strip), else to within the rounding of the resized
    length. The kept length has the full length's parity, so the strip is exactly centred.
    Squash-resize processors (HF ViT, BLIP) see less of the strip, but only beyond the ratio,
    where squashing to a square has already distorted it out of recognition.
    """
    short, long = sorted(image.size)
    keep = short * MAX_ASPECT_RATIO
    keep += (long - keep) % 2
    if long <= keep:
        return image
    start = (long - keep) // 2
    if image.width > image.height:
        return image.crop((start, 0, start + keep, image.height))
    return image.crop((0, start, image.width, start + keep))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB from any mode: 16-bit and float images are rescaled to 8 bits, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in HIGH_DEPTH_MODES:
        gray = _to_8_bit(np.asarray(image), is_float=image.mode == "F")
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _to_8_bit(values: np.ndarray, is_float: bool) -> np.ndarray:
    """uint8 gray from 16/32-bit or float values, scaled by the range they use. Float32 maths
    (4 bytes a pixel, not float64's 8); NaN, which float images use for missing data, is 0."""
    scaled = np.nan_to_num(values.astype(np.float32), copy=False, nan=0.0)
    peak = scaled.max(initial=0)
    small, large = (1.0, 255.0) if is_float else (255.0, 65535.0)  # the full scales it may use
    top = small if peak <= small else large
    scaled *= 255.0 / top
    scaled += 0.5
    return np.clip(scaled, 0, 255, out=scaled).astype(np.uint8)


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF (or XMP) orientation says. Unlike ``ImageOps.exif_transpose``
    this rewrites no metadata, which raises struct.error on some corrupt EXIF blocks; an
    orientation that cannot be read is ignored, as broken metadata must not reject the pixels."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # PIL's EXIF parser raises many types on corrupt blocks
        return image
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _open(item: ImageLike) -> Image.Image:
    if isinstance(item, Image.Image):
        if isinstance(item, ImageFile.ImageFile) and item.tile and item.fp is None:
            raise ValueError(
                "the PIL image's file was closed before its pixels were read (Image.open is "
                "lazy); call .load() inside the `with Image.open(...)` block, or pass the path"
            )
        return item
    if isinstance(item, np.ndarray):
        return _from_array(item)
    if isinstance(item, (str, Path)):
        path = Path(item)
        return _open_bytes(_read_file(path), f"file {str(path)!r}")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _open_bytes(bytes(item), f"{len(item)} bytes")
    raise ValueError(
        f"expected a PIL image, a file path, encoded bytes or a uint8 HxWxC array, "
        f"got {type(item).__name__} ({_short(item)})"
    )


def _read_file(path: Path) -> bytes:
    """The bytes of a regular file; ValueError, never OSError, when there are none to read. A
    pipe or device is refused unread, as reading it could block forever."""
    try:
        if path.is_file():
            return path.read_bytes()
        if path.exists():
            raise ValueError(f"not a regular file (a folder, pipe or device): {str(path)!r}")
    except OSError as exc:
        why = exc.strerror or exc
        raise ValueError(f"cannot read file {_short(str(path), 80)}: {why}") from None
    raise ValueError(f"file not found: {str(path)!r}")


def _open_bytes(data: bytes, described: str) -> Image.Image:
    try:
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
