"""Dataset specs: a name ("fashion-mnist", "cifar10", "synthetic") or a path -> a Dataset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezenet.arch.preprocess import CIFAR10, FASHION_MNIST, IMAGENET, Preprocess
from squeezenet.data.cifar import cifar10
from squeezenet.data.datasets import (
    ArrayDataset,
    DatasetNotFoundError,
    FileListDataset,
    csv_manifest,
    image_folder,
    synthetic,
)
from squeezenet.data.fashion import fashion_mnist
from squeezenet.errors import ConfigError

NAMED = ("fashion-mnist", "cifar10", "synthetic")


@dataclass(frozen=True)
class DataSpec:
    """Where a dataset comes from; ``kind`` is a named dataset, "csv", "folder" or "npz"."""

    kind: str
    path: Path | None = None

    @property
    def default_preset(self) -> Preprocess:
        """The preprocessing a model trained from scratch on this data should use."""
        return {
            "fashion-mnist": FASHION_MNIST,
            "cifar10": CIFAR10,
            "npz": CIFAR10,
            "synthetic": CIFAR10,
        }.get(self.kind, IMAGENET)


def parse_data_spec(spec: str) -> DataSpec:
    """Resolve ``spec``: a named dataset, a ``.csv`` manifest, an ``.npz`` or a folder.

    Raises:
        ConfigError: ``spec`` is no dataset name and does not look like a path.
        DatasetNotFoundError: ``spec`` looks like a path (a suffix or a separator) to no folder.
    """
    if spec in NAMED:
        return DataSpec(spec)
    path = Path(spec)
    if path.suffix == ".csv":
        return DataSpec("csv", path)
    if path.suffix == ".npz":
        return DataSpec("npz", path)
    if path.is_dir():
        if (path / "batches.meta").exists() or (path / "cifar-10-batches-py").is_dir():
            return DataSpec("npz", path)
        return DataSpec("folder", path)
    choices = (
        f"use one of {', '.join(NAMED)}, a CSV manifest (path,label), an image folder with one "
        "sub-folder per class, or a CIFAR-10 .npz / batches folder"
    )
    if path.suffix or os.sep in spec or (os.altsep is not None and os.altsep in spec):
        raise DatasetNotFoundError(f"dataset not found: no file or folder {spec!r}; {choices}")
    raise ConfigError(f"unknown dataset {spec!r}: {choices}")


def load_dataset(
    spec: str | DataSpec,
    split: str = "train",
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    transform: Any = None,
    synthetic_size: int = 512,
    synthetic_image: int = 32,
    synthetic_channels: int = 3,
    seed: int = 0,
) -> ArrayDataset | FileListDataset:
    """Load the ``split`` ("train" or "test") of a dataset spec.

    Files-based specs (CSV, folders) have a single split: both names return the same images.
    """
    data = parse_data_spec(spec) if isinstance(spec, str) else spec
    if data.kind == "fashion-mnist":
        return fashion_mnist(split, data_dir, download=download, transform=transform)
    if data.kind in ("cifar10", "npz"):
        return cifar10(split, data.path or data_dir, transform=transform)
    if data.kind == "synthetic":
        return synthetic(
            synthetic_size if split == "train" else max(64, synthetic_size // 4),
            size=synthetic_image,
            channels=synthetic_channels,
            seed=seed,
            split=split,
            transform=transform,
        )
    assert data.path is not None
    if data.kind == "csv":
        return csv_manifest(data.path, transform=transform)
    return image_folder(data.path, transform=transform)
