"""Datasets: the two kinds (in memory, files read on demand), image folders, CSV manifests and
a seeded synthetic set; Fashion-MNIST and CIFAR-10 are read by :mod:`squeezenet.data.fashion` and
:mod:`squeezenet.data.cifar`.

Every dataset is a standard ``torch.utils.data.Dataset`` returning ``(image, label)``, where the
image is what its ``transform`` makes of a PIL image (the raw PIL image without one). Datasets
held in memory (:class:`ArrayDataset`) also expose their uint8 pixels, so the training loop can
augment whole batches at once instead of one PIL image at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from squeezenet.runtime.image_lists import (
    IMAGE_SUFFIXES,
    DatasetFileError,
    folder_samples,
    manifest_samples,
    read_class_names,
)
from squeezenet.runtime.images import CorruptImageError, DatasetNotFoundError, load_image

__all__ = [
    "IMAGE_SUFFIXES",
    "ArrayDataset",
    "CorruptImageError",
    "DatasetFileError",
    "DatasetNotFoundError",
    "FileListDataset",
    "csv_manifest",
    "default_data_root",
    "draw",
    "image_folder",
    "load_image",
    "read_class_names",
    "synthetic",
    "take",
]

Transform = Callable[[Image.Image], Any]


class ArrayDataset(Dataset[tuple[Any, int]]):
    """Images held in memory as uint8 ``(N, H, W, C)`` with int64 labels.

    Args:
        images: uint8 array ``(N, H, W, C)`` (C = 1 or 3, RGB order).
        labels: integer labels ``(N,)`` in ``0..len(classes)-1``.
        classes: class names, index = label.
        transform: applied to a PIL image by ``__getitem__`` (None: return the PIL image).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        classes: Sequence[str],
        transform: Transform | None = None,
    ) -> None:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
            raise ValueError(
                f"images must be uint8 (N, H, W, 1|3), got {images.dtype} {images.shape}"
            )
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        pixels = self.images[index]
        image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
        label = int(self.labels[index])
        return (self.transform(image) if self.transform else image), label

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All pixels as uint8 ``(N, C, H, W)`` (a view, no copy) and int64 labels ``(N,)``."""
        return torch.from_numpy(self.images).permute(0, 3, 1, 2), torch.from_numpy(self.labels)


class FileListDataset(Dataset[tuple[Any, int]]):
    """Images read from files on demand (image folders and CSV manifests)."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        classes: Sequence[str],
        transform: Transform | None = None,
        mode: str = "RGB",
    ) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.transform = transform
        self.mode = mode
        self.labels = np.array([label for _, label in self.samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        image = load_image(path, self.mode)
        return (self.transform(image) if self.transform else image), label


def default_data_root() -> Path:
    """``$SQUEEZENET_DATA`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("SQUEEZENET_DATA", "../shared/data"))


def image_folder(
    root: str | Path, *, transform: Transform | None = None, mode: str = "RGB"
) -> FileListDataset:
    """One sub-folder per class (sorted names = labels), images inside."""
    samples, classes = folder_samples(root)
    return FileListDataset(samples, classes, transform, mode)


def csv_manifest(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    transform: Transform | None = None,
    mode: str = "RGB",
) -> FileListDataset:
    """A CSV with columns ``path,label`` (paths relative to the CSV, labels integers).

    Class names come from ``classes``, else from a ``classes.csv`` (``index,synset,name``)
    beside the manifest, else they are the label numbers.
    """
    samples, names = manifest_samples(path, classes)
    return FileListDataset(samples, names, transform, mode)


def synthetic(
    n: int = 512,
    *,
    num_classes: int = 10,
    size: int = 32,
    channels: int = 3,
    seed: int = 0,
    split: str = "train",
    transform: Transform | None = None,
) -> ArrayDataset:
    """A seeded, learnable synthetic set: each class is a smooth random colour layout (a 4x4
    grid upsampled and mirror-symmetric, so crops and flips keep the class) plus pixel noise."""
    coarse = np.random.default_rng(seed).uniform(0, 255, size=(num_classes, 4, 4, channels))
    coarse[:, :, 2:] = coarse[:, :, 1::-1]  # mirror-symmetric: horizontal flips keep the class
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])  # same classes, new samples
    repeat = -(-size // 4)
    patterns = coarse.repeat(repeat, axis=1).repeat(repeat, axis=2)[:, :size, :size]
    labels = rng.integers(0, num_classes, size=n)
    noise = rng.normal(0, 30, size=(n, size, size, channels))
    images = np.clip(patterns[labels] + noise, 0, 255).astype(np.uint8)
    return ArrayDataset(images, labels, [f"class{i}" for i in range(num_classes)], transform)


def take(
    data: ArrayDataset | FileListDataset, indices: np.ndarray
) -> ArrayDataset | FileListDataset:
    """The images at ``indices`` (repeats allowed) as a dataset of the same kind."""
    if isinstance(data, ArrayDataset):
        return ArrayDataset(
            data.images[indices], data.labels[indices], data.classes, data.transform
        )
    samples = [data.samples[i] for i in indices]
    return FileListDataset(samples, data.classes, data.transform, data.mode)


def draw(
    data: ArrayDataset | FileListDataset, count: int, seed: int
) -> ArrayDataset | FileListDataset:
    """``count`` images from seeded permutations of ``data``, one pass before any repeat."""
    generator = torch.Generator().manual_seed(seed)
    passes = -(-count // len(data))
    order = torch.cat([torch.randperm(len(data), generator=generator) for _ in range(passes)])
    return take(data, order[:count].numpy())
