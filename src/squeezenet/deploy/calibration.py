"""Calibration inputs for int8 engines and exports: proxy images through a model's own
preprocessing, a seeded subset of the training split (never evaluation images)."""

from __future__ import annotations

import numpy as np

from squeezenet.arch.preprocess import PRESETS, Preprocess
from squeezenet.data.proxy_images import proxy_subset
from squeezenet.models import get_spec
from squeezenet.train.evaluate import eval_batches

CALIBRATION_IMAGES = 256  # enough for stable activation ranges of SqueezeNet (ONNX Runtime docs)


def model_preprocess(model_name: str, preprocess: Preprocess | None) -> Preprocess:
    """A model file's own preprocessing, else its registry preset."""
    if preprocess is not None:
        return preprocess
    return PRESETS[get_spec(model_name).facts.preprocess]


def calibration_batches(
    data: str,
    preprocess: Preprocess,
    *,
    images: int = CALIBRATION_IMAGES,
    batch_size: int = 32,
    seed: int = 0,
) -> list[np.ndarray]:
    """``images`` proxy images drawn (seeded) from the training split of ``data``,
    preprocessed as float32 ``(N, C, H, W)`` batches.

    Raises:
        InputError: ``data`` has no images (:mod:`squeezenet.data.proxy_images`).
    """
    subset = proxy_subset(data, images, seed=seed)
    return [x.numpy().astype(np.float32) for x, _ in eval_batches(subset, preprocess, batch_size)]
