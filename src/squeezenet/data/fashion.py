"""Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey) from its IDX files."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from squeezenet.data.datasets import (
    ArrayDataset,
    DatasetFileError,
    DatasetNotFoundError,
    Transform,
)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain): the Fashion-MNIST / MNIST container."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise DatasetFileError(
            f"{path}: not an IDX file (only {len(data)} bytes)", field="header", offset=0
        )
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DatasetFileError(
            f"{path}: not a uint8 IDX file (header {data[:4].hex()})", field="header", offset=0
        )
    if len(data) < 4 + 4 * ndim:
        raise DatasetFileError(f"{path}: IDX file cut short in its dims", field="dims", offset=4)
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    expected = int(np.prod(dims))
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).copy()  # writable
    if payload.size != expected:
        raise DatasetFileError(
            f"{path}: expected {expected} values for shape {dims}, found {payload.size}",
            field="data",
            offset=4 + 4 * ndim,
        )
    return payload.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist(
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    transform: Transform | None = None,
) -> ArrayDataset:
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey) from its IDX files.

    Looks in ``data_dir``, else in ``/usr/share/datasets/fashion-mnist`` (the Debian package
    ``dataset-fashion-mnist``). With ``download=True`` and the files absent, torchvision's
    downloader fetches them into ``data_dir`` (needs internet).
    """
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    image_stem, label_stem = FASHION_MNIST_FILES[split]
    images_path, labels_path = _find(folder, image_stem), _find(folder, label_stem)
    if (images_path is None or labels_path is None) and download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(folder), train=split == "train", download=True)
        folder = folder / "FashionMNIST" / "raw"
        images_path, labels_path = _find(folder, image_stem), _find(folder, label_stem)
    if images_path is None or labels_path is None:
        raise DatasetNotFoundError(
            f"Fashion-MNIST {split} files ({image_stem}[.gz]) not found in {folder}; install them "
            "with `apt-get install -y dataset-fashion-mnist`, or pass --data-dir to a folder that "
            "holds them (with internet, --download fetches them)"
        )
    images = _read_idx(images_path)[..., None]  # (N, 28, 28, 1)
    labels = _read_idx(labels_path).astype(np.int64)
    return ArrayDataset(images, labels, FASHION_MNIST_CLASSES, transform)
