"""Labelled image files on disk: an image folder (one sub-folder per class) or a CSV manifest
(``path,label``), as ``(path, label)`` samples and class names. The torch datasets of
``squeezenet.data`` wrap the same lists."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from squeezenet.errors import FileFormatError
from squeezenet.runtime.images import DatasetNotFoundError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
Samples = list[tuple[Path, int]]


class DatasetFileError(FileFormatError):
    """A dataset file (IDX, CIFAR-10 batch or npz, CSV manifest) whose contents are not what its
    format says; the message names the file and what is wrong."""


def folder_samples(root: str | Path) -> tuple[Samples, list[str]]:
    """One sub-folder per class (sorted names = labels), images inside.

    Raises:
        DatasetNotFoundError: no class sub-folders, or no images in them.
    """
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
    return samples, classes


def manifest_samples(
    path: str | Path, classes: Sequence[str] | None = None
) -> tuple[Samples, list[str]]:
    """A CSV with columns ``path,label`` (paths relative to the CSV, labels integers).

    Class names come from ``classes``, else from a ``classes.csv`` (``index,synset,name``)
    beside the manifest, else they are the label numbers.

    Raises:
        DatasetNotFoundError: no such file.
        DatasetFileError: no ``path,label`` header, or a label that is not an integer.
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
    names = list(classes) if classes is not None else read_class_names(path.parent / "classes.csv")
    if names is None:
        top = max((label for _, label in samples), default=-1)
        names = [str(i) for i in range(top + 1)]
    return samples, names


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


def labelled_images(spec: str | Path) -> tuple[Samples, list[str]]:
    """A CSV manifest (a ``.csv`` file) or an image folder, by its path.

    Raises:
        DatasetNotFoundError: neither a file nor a folder.
    """
    path = Path(spec)
    if path.is_dir():
        return folder_samples(path)
    if path.suffix.lower() == ".csv" or path.is_file():
        return manifest_samples(path)
    raise DatasetNotFoundError(
        f"dataset not found: {spec}; the runtime engines read a CSV manifest (path,label) or an "
        "image folder with one sub-folder per class (named datasets such as cifar10 run with "
        "--engine torch, from the torch extra: pip install 'squeezenet-dc[torch]')"
    )
