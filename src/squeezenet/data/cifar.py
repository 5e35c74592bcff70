"""CIFAR-10 (50,000 train / 10,000 test, 32x32 RGB) from the shared JPEG ``.npz`` or the
standard python batches, decoded once and cached in memory."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from squeezenet.data.datasets import (
    ArrayDataset,
    CorruptImageError,
    DatasetFileError,
    DatasetNotFoundError,
    Transform,
    default_data_root,
)

CIFAR10_NPZ = "cifar10/cifar10_jpeg.npz"


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
