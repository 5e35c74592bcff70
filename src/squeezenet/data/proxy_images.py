"""Proxy images: the unlabeled images that calibrate, weigh and distil a model (``--calib`` of
``compress``, ``export`` and the int8 engines; ``--distill``).

One rule for all of them: the *training* split of the named image set, labels dropped, never
the evaluation images. Int8 calibration draws a seeded subset of any image set; the compressor's
samplers (crops, mosaics, distillation) need the images in memory, such as CIFAR-10.
"""

from __future__ import annotations

import numpy as np

from squeezenet.data.datasets import ArrayDataset, FileListDataset
from squeezenet.data.sources import load_dataset
from squeezenet.errors import InputError


def proxy_images(data: str, option: str = "--calib") -> ArrayDataset | FileListDataset:
    """The training split of image set ``data`` (a named dataset, an .npz, a CSV or a folder).

    Raises:
        InputError: ``data`` holds no images (the message names ``option``).
    """
    images = load_dataset(data, "train")  # the training split: never the evaluation images
    if len(images) == 0:
        raise InputError(f"{option} {data}: no images")
    return images


def proxy_arrays(data: str, option: str = "--calib") -> ArrayDataset:
    """:func:`proxy_images` of an in-memory image set (what crops, mosaics and distillation
    sample from).

    Raises:
        InputError: ``data`` is not an in-memory image set, or holds no images.
    """
    images = proxy_images(data, option)
    if not isinstance(images, ArrayDataset):
        raise InputError(f"{option} needs an in-memory image set such as CIFAR-10, got {data}")
    return images


def proxy_subset(
    data: str, images: int, *, seed: int = 0, option: str = "--calib"
) -> ArrayDataset | FileListDataset:
    """``images`` of :func:`proxy_images` drawn without replacement (seeded), in file order."""
    split = proxy_images(data, option)
    n = len(split)
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[: min(images, n)])
    if isinstance(split, ArrayDataset):
        return ArrayDataset(split.images[chosen], split.labels[chosen], split.classes)
    samples = [split.samples[int(i)] for i in chosen]
    return FileListDataset(samples, split.classes, split.transform, split.mode)
