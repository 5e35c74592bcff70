"""Dataset specs: a name ("fashion-mnist", "cifar10", "synthetic") or a path -> a Dataset.

:data:`SOURCES` is the table of dataset kinds: each one's default preset and loader. A new named
dataset is a reader module and one row here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


@dataclass(frozen=True)
class DataSpec:
    """Where a dataset comes from; ``kind`` is a named dataset, "csv", "folder" or "npz"."""

    kind: str
    path: Path | None = None

    @property
    def default_preset(self) -> Preprocess:
        """The preprocessing a model trained from scratch on this data should use."""
        return SOURCES[self.kind].preset


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
    options = LoadOptions(
        data_dir, download, transform, synthetic_size, synthetic_image, synthetic_channels, seed
    )
    return SOURCES[data.kind].load(data, split, options)


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`load_dataset` passes to a loader besides the spec and the split."""

    data_dir: str | Path | None = None
    download: bool = False
    transform: Any = None
    synthetic_size: int = 512
    synthetic_image: int = 32
    synthetic_channels: int = 3
    seed: int = 0


Loader = Callable[[DataSpec, str, LoadOptions], ArrayDataset | FileListDataset]


@dataclass(frozen=True)
class Source:
    """One kind of dataset: the preset a model trained on it from scratch uses, and its loader."""

    preset: Preprocess
    load: Loader
    named: bool = True  # spelled by its name; False: found from a path (csv, npz, folder)


def _synthetic(spec: DataSpec, split: str, o: LoadOptions) -> ArrayDataset:
    size = o.synthetic_size if split == "train" else max(64, o.synthetic_size // 4)
    return synthetic(
        size,
        size=o.synthetic_image,
        channels=o.synthetic_channels,
        seed=o.seed,
        split=split,
        transform=o.transform,
    )


def _path(spec: DataSpec) -> Path:
    assert spec.path is not None  # parse_data_spec gives file kinds a path
    return spec.path


SOURCES: dict[str, Source] = {
    "fashion-mnist": Source(
        FASHION_MNIST,
        lambda spec, split, o: fashion_mnist(
            split, o.data_dir, download=o.download, transform=o.transform
        ),
    ),
    "cifar10": Source(
        CIFAR10, lambda spec, split, o: cifar10(split, o.data_dir, transform=o.transform)
    ),
    "synthetic": Source(CIFAR10, _synthetic),
    "npz": Source(
        CIFAR10,
        lambda spec, split, o: cifar10(split, _path(spec), transform=o.transform),
        named=False,
    ),
    "csv": Source(
        IMAGENET,
        lambda spec, split, o: csv_manifest(_path(spec), transform=o.transform),
        named=False,
    ),
    "folder": Source(
        IMAGENET,
        lambda spec, split, o: image_folder(_path(spec), transform=o.transform),
        named=False,
    ),
}
NAMED = tuple(kind for kind, source in SOURCES.items() if source.named)
