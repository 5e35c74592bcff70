"""Transforms from a :class:`Preprocess` preset: per-image (PIL) and per-batch (uint8 tensors)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from squeezenet.arch.preprocess import Preprocess

_INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def normalize_batch(x: torch.Tensor, preset: Preprocess) -> torch.Tensor:
    """uint8 or float ``(N, C, H, W)`` RGB pixels in 0..255 -> the model's input (float32).

    Applies the preset's value scale, channel order (RGB -> BGR for Caffe) and mean/std.
    """
    x = x.float()
    if preset.value_scale == 1.0:
        x = x / 255.0
    if preset.channel_order == "BGR":
        x = x.flip(1)
    mean = torch.tensor(preset.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(preset.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def eval_transform(preset: Preprocess) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> ``(C, crop, crop)`` float tensor: resize short side, centre crop, normalise."""

    def transform(image: Image.Image) -> torch.Tensor:
        image = image.convert("L" if preset.channels == 1 else "RGB")
        if preset.resize:
            image = TF.resize(
                image, preset.resize, interpolation=_INTERPOLATION[preset.interpolation]
            )
        image = TF.center_crop(image, [preset.crop, preset.crop])
        pixels = TF.pil_to_tensor(image)  # (C, H, W) uint8
        return normalize_batch(pixels[None], preset)[0]

    return transform


def train_transform(preset: Preprocess) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> augmented float tensor: random-resized crop + flip for ImageNet-size presets,
    4-pixel pad-crop + flip for small (28-32 px) images."""

    def transform(image: Image.Image) -> torch.Tensor:
        image = image.convert("L" if preset.channels == 1 else "RGB")
        if preset.resize:
            i, j, h, w = _random_resized_crop_box(image.size)
            image = TF.resized_crop(
                image,
                i,
                j,
                h,
                w,
                [preset.crop, preset.crop],
                interpolation=_INTERPOLATION[preset.interpolation],
            )
            pixels = TF.pil_to_tensor(image)[None]
        else:
            image = TF.center_crop(image, [preset.crop, preset.crop])
            pixels = random_crop_flip(TF.pil_to_tensor(image)[None], padding=4)
        if preset.resize and torch.rand(()) < 0.5:
            pixels = pixels.flip(3)
        return normalize_batch(pixels, preset)[0]

    return transform


def _random_resized_crop_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    area = width * height
    for _ in range(10):
        target = area * float(torch.empty(()).uniform_(0.08, 1.0))
        log_ratio = torch.empty(()).uniform_(-0.2877, 0.2877)  # log(3/4)..log(4/3)
        ratio = float(torch.exp(log_ratio))
        w = round((target * ratio) ** 0.5)
        h = round((target / ratio) ** 0.5)
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, ()))
            j = int(torch.randint(0, width - w + 1, ()))
            return i, j, h, w
    side = min(width, height)
    return (height - side) // 2, (width - side) // 2, side, side


def random_crop_flip(
    x: torch.Tensor,
    *,
    padding: int = 4,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Batched pad-and-random-crop plus horizontal flip of ``(N, C, H, W)`` images (any dtype).

    Each image gets its own offset and flip, drawn from ``generator``; zero padding.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (oy[:, None] + torch.arange(h)).to(x.device)  # (N, H)
    cols = (ox[:, None] + torch.arange(w)).to(x.device)  # (N, W)
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flipped[:, None].to(x.device), cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


class BatchPipeline:
    """Turns uint8 ``(N, C, H, W)`` batches of an in-memory dataset into model inputs.

    Training batches get the small-image augmentation (pad-crop, flip); images are resized to
    the preset's crop when their size differs (e.g. CIFAR-10 fed to a 227-px ImageNet model).
    """

    def __init__(self, preset: Preprocess, *, train: bool, augment: bool = True) -> None:
        self.preset = preset
        self.train = train
        self.augment = augment

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.train and self.augment:
            x = random_crop_flip(x, padding=max(1, x.shape[-1] // 8), generator=generator)
        if x.shape[-1] != self.preset.crop or x.shape[-2] != self.preset.crop:
            x = F.interpolate(
                x.float(),
                size=(self.preset.crop, self.preset.crop),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        if x.shape[1] != self.preset.channels:
            x = (
                x.expand(-1, self.preset.channels, -1, -1)
                if x.shape[1] == 1
                else x.float().mean(1, keepdim=True)
            )
        return normalize_batch(x, self.preset)
