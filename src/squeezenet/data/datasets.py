"""Datasets: Fashion-MNIST, CIFAR-10, image folders, CSV manifests and a seeded synthetic set.

Every dataset is a standard ``torch.utils.data.Dataset`` returning ``(image, label)``, where the
image is what its ``transform`` makes of a PIL image (the raw PIL image without one). Datasets
held in memory (:class:`ArrayDataset`) also expose their uint8 pixels, so the training loop can
augment whole batches at once instead of one PIL image at a time.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from squeezenet.errors import FileFormatError, InputError, MissingFileError

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
CIFAR10_NPZ = "cifar10/cifar10_jpeg.npz"
Transform = Callable[[Image.Image], Any]


class DatasetNotFoundError(MissingFileError):
    """A dataset that is not where we looked; the message says where and how to get it."""


class CorruptImageError(InputError):
    """An image file that cannot be decoded; the message names the file."""


class DatasetFileError(FileFormatError):
    """A dataset file (IDX, CIFAR-10 batch or npz, CSV manifest) whose contents are not what its
    format says; the message names the file and what is wrong."""


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


def load_image(path: Path, mode: str = "RGB") -> Image.Image:
    """Decode one image file to ``mode``; :class:`CorruptImageError` names the file.

    The one place image files are decoded (datasets, ``predict``). Pillow refuses a header that
    claims more than ``2 * Image.MAX_IMAGE_PIXELS`` pixels (a decompression bomb: a few bytes
    that would decode to gigabytes) before reading any pixel; that is a bad image too, so
    ``eval --skip-bad`` skips it and ``predict`` says so in one line.
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


def _decode_jpegs(blob: np.ndarray, offsets: np.ndarray, source: Path) -> np.ndarray:
    """``len(offsets) - 1`` JPEGs cut from ``blob`` -> uint8 ``(N, H, W, 3)``."""
    first = _decode_jpeg(blob, offsets, 0, source)
    out = np.empty((len(offsets) - 1, *first.shape), dtype=np.uint8)
    out[0] = first
    for i in range(1, len(offsets) - 1):
        out[i] = _decode_jpeg(blob, offsets, i, source)
    return out


def _decode_jpeg(blob: np.ndarray, offsets: np.ndarray, i: int, source: Path) -> np.ndarray:
    data = blob[offsets[i] : offsets[i + 1]].tobytes()
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(f"{source}: image {i} cannot be decoded: {exc}") from None


_CIFAR_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, list[str]]] = {}


def cifar10(
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    transform: Transform | None = None,
) -> ArrayDataset:
    """CIFAR-10 (50,000 train / 10,000 test, 32x32 RGB).

    ``data_dir`` may be the shared JPEG ``.npz`` (format in ``shared/data/README.md``), a folder
    holding ``cifar10/cifar10_jpeg.npz`` or ``cifar10_jpeg.npz``, or the standard
    ``cifar-10-batches-py`` folder. Default: ``$SQUEEZENET_DATA`` or ``../shared/data``. The
    decoded pixels are cached in memory, so a second call costs nothing.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(data_dir) if data_dir is not None else default_data_root()
    key = (str(root.resolve()), split)
    if key not in _CIFAR_CACHE:
        _CIFAR_CACHE[key] = _load_cifar10(root, split)
    images, labels, classes = _CIFAR_CACHE[key]
    return ArrayDataset(images, labels, classes, transform)


def _load_cifar10(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    candidates = (
        [root] if root.suffix == ".npz" else [root / CIFAR10_NPZ, root / "cifar10_jpeg.npz"]
    )
    for path in candidates:
        if path.is_file():
            return _load_cifar10_npz(path, split)
    batches = root if (root / "batches.meta").exists() else root / "cifar-10-batches-py"
    if (batches / "batches.meta").exists():
        return _load_cifar10_batches(batches, split)
    raise DatasetNotFoundError(
        f"CIFAR-10 not found: looked for {', '.join(map(str, candidates))} and "
        f"{batches}/batches.meta; pass --data-dir to the cifar10_jpeg.npz file or to a "
        "cifar-10-batches-py folder"
    )


def _load_cifar10_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The shared JPEG ``.npz``: ``{split}_jpeg``, ``{split}_offsets``, ``y_{split}``,
    ``class_names``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = _decode_jpegs(npz[f"{split}_jpeg"], npz[f"{split}_offsets"], path)
            return images, npz[f"y_{split}"].astype(np.int64), [str(c) for c in npz["class_names"]]
    except CorruptImageError:
        raise
    except KeyError as exc:
        raise DatasetFileError(f"{path}: not a CIFAR-10 JPEG .npz ({exc} missing)") from None
    except (OSError, ValueError) as exc:
        raise DatasetFileError(f"{path}: not a readable .npz file ({exc})") from None


def _load_cifar10_batches(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The standard python batches: pickles of dicts of numpy arrays. They are read with an
    allow-list unpickler (numpy array reconstruction only, as torch's ``weights_only``), so a
    tampered file cannot run code."""
    import pickle

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    class _NoClasses(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"refusing to load {module}.{name} from {folder}")
            return super().find_class(module, name)

    def load(path: Path) -> dict[bytes, Any]:
        if not path.is_file():
            raise DatasetNotFoundError(f"CIFAR-10 batch file missing: {path}")
        try:
            with open(path, "rb") as f:
                result: dict[bytes, Any] = _NoClasses(f, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise DatasetFileError(f"{path}: not a CIFAR-10 batch file ({exc})") from None
        return result

    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    data, labels = [], []
    try:
        for name in names:
            batch = load(folder / name)
            data.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch[b"labels"])
        meta = load(folder / "batches.meta")
        classes = [c.decode() for c in meta[b"label_names"]]
    except DatasetFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetFileError(f"{folder}: not a CIFAR-10 batches folder ({exc!r})") from None
    return np.concatenate(data).transpose(0, 2, 3, 1).copy(), np.array(labels, np.int64), classes


def default_data_root() -> Path:
    """``$SQUEEZENET_DATA`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("SQUEEZENET_DATA", "../shared/data"))


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def image_folder(
    root: str | Path, *, transform: Transform | None = None, mode: str = "RGB"
) -> FileListDataset:
    """One sub-folder per class (sorted names = labels), images inside."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise DatasetNotFoundError(
            f"{root} holds no class sub-folders; an image folder needs one sub-folder per class"
        )
    samples = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not samples:
        raise DatasetNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
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
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"manifest not found: {path}")
    samples = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "label"} <= set(reader.fieldnames):
            raise DatasetFileError(
                f"{path}: expected a header with columns path,label; got {reader.fieldnames}",
                field="header",
            )
        for line, row in enumerate(reader, start=2):
            try:
                samples.append((path.parent / row["path"], int(row["label"])))
            except (TypeError, ValueError):
                raise DatasetFileError(
                    f"{path}:{line}: label {row['label']!r} is not an integer", field="label"
                ) from None
    if classes is None:
        classes = read_class_names(path.parent / "classes.csv")
    if classes is None:
        top = max((label for _, label in samples), default=-1)
        classes = [str(i) for i in range(top + 1)]
    return FileListDataset(samples, classes, transform, mode)


def read_class_names(path: Path) -> list[str] | None:
    """Names from a ``classes.csv`` with columns ``index,...,name`` (None when absent)."""
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        names = {int(row["index"]): row["name"] for row in rows}
        return [names[i] for i in range(len(names))]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetFileError(
            f"{path}: expected columns index,...,name with indices 0..n-1 ({exc!r})"
        ) from None


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
