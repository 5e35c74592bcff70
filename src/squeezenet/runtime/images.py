"""Images to model inputs with Pillow and numpy: decode, resize, crop, channel order, mean, scale.

The one place image files are decoded, for the torch layers too (``squeezenet.data`` reads its
image files through :func:`load_image`). :func:`prepare` does what
``squeezenet.data.transforms.eval_transform`` does with torchvision, step for step (the same
Pillow resize, the same crop offsets, the same float32 arithmetic); a test ties the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from squeezenet.arch.preprocess import Preprocess
from squeezenet.errors import InputError, MissingFileError

ImageLike = str | Path | Image.Image | np.ndarray
_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class DatasetNotFoundError(MissingFileError):
    """A dataset that is not where we looked; the message says where and how to get it."""


class CorruptImageError(InputError):
    """An image file that cannot be decoded; the message names the file."""


def load_image(path: Path, mode: str = "RGB") -> Image.Image:
    """Decode one image file to ``mode``; :class:`CorruptImageError` names the file.

    Pillow refuses a header that claims more than ``2 * Image.MAX_IMAGE_PIXELS`` pixels (a
    decompression bomb: a few bytes that would decode to gigabytes) before reading any pixel;
    that is a bad image too, so ``eval --skip-bad`` skips it and ``predict`` says so in one line.
    """
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"image not found: {path}") from None
    except Image.DecompressionBombError as exc:
        raise CorruptImageError(
            f"refusing to decode image {path}: {str(exc).rstrip('.')}; downscale it first "
            "(the model resizes every image to a few hundred pixels anyway)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise CorruptImageError(f"cannot decode image {path}: {exc}") from None


def as_image(image: ImageLike, mode: str) -> Image.Image:
    """A path, a PIL image or a uint8 array (``H, W`` or ``H, W, C``, RGB) as a PIL image in
    ``mode`` ("RGB" or "L").

    Raises:
        InputError: an array that is not uint8 ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``.
        CorruptImageError / DatasetNotFoundError: an unreadable or missing file.
    """
    if isinstance(image, Image.Image):
        return image.convert(mode)
    if isinstance(image, np.ndarray):
        if (
            image.dtype != np.uint8
            or image.ndim not in (2, 3)
            or (image.ndim == 3 and image.shape[2] not in (1, 3))
        ):
            raise InputError(
                f"an image array must be uint8 (H, W) or (H, W, 1|3) RGB, got {image.dtype} "
                f"{image.shape}; model inputs that are already prepared go to logits()"
            )
        pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        return Image.fromarray(pixels).convert(mode)
    return load_image(Path(image), mode)


def _resize_short_side(image: Image.Image, size: int, interpolation: str) -> Image.Image:
    """torchvision's ``resize(image, size)`` on a PIL image: the short side to ``size``, the
    long side to ``int(size * long / short)``, nothing when that is the size already."""
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) == (w, h):
        return image
    return image.resize((new_w, new_h), _FILTERS[interpolation])


def _center_crop(pixels: np.ndarray, crop: int) -> np.ndarray:
    """torchvision's ``center_crop`` of ``(H, W, C)`` pixels: zero padding first where the image
    is smaller, then the crop at ``round((size - crop) / 2)``."""
    h, w = pixels.shape[:2]
    if crop > w or crop > h:
        pad_w, pad_h = max(crop - w, 0), max(crop - h, 0)
        pixels = np.pad(
            pixels, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0))
        )
        h, w = pixels.shape[:2]
    top, left = round((h - crop) / 2.0), round((w - crop) / 2.0)
    return pixels[top : top + crop, left : left + crop]


def normalize(pixels: np.ndarray, preset: Preprocess) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` pixels in 0..255 (RGB) -> the model's float32 input: the preset's
    value scale, channel order and ``(x - mean) / std``, in float32 as the torch path does."""
    x = pixels.astype(np.float32)
    if preset.value_scale == 1.0:
        x = x / np.float32(255.0)
    if preset.channel_order == "BGR":
        x = x[:, ::-1]
    mean = np.asarray(preset.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(preset.std, dtype=np.float32).reshape(1, -1, 1, 1)
    result: np.ndarray = (x - mean) / std
    return result


def pixels_of(image: ImageLike, preset: Preprocess) -> np.ndarray:
    """One image, resized and centre-cropped as ``preset`` says, as uint8 ``(C, crop, crop)``."""
    picture = as_image(image, "L" if preset.channels == 1 else "RGB")
    if preset.resize:
        picture = _resize_short_side(picture, preset.resize, preset.interpolation)
    array = np.asarray(picture, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(_center_crop(array, preset.crop).transpose(2, 0, 1))


def prepare(images: Sequence[ImageLike], preset: Preprocess) -> np.ndarray:
    """Images (paths, PIL images or uint8 arrays) -> the model's float32 ``(N, C, crop, crop)``
    input batch."""
    if not images:
        channels = preset.channels
        return np.zeros((0, channels, preset.crop, preset.crop), np.float32)
    return normalize(np.stack([pixels_of(image, preset) for image in images]), preset)


def describe(image: Any) -> str:
    """How a prediction names its image: the path, else the kind of object."""
    if isinstance(image, str | Path):
        return str(image)
    if isinstance(image, np.ndarray):
        return f"array{tuple(image.shape)}"
    return f"<{type(image).__name__}>"
