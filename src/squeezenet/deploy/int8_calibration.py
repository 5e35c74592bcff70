"""Calibration inputs for int8 engines and exports: proxy images through a model's own
preprocessing, a seeded subset of the training split (never evaluation images)."""

from __future__ import annotations

import os

import numpy as np

from squeezenet.arch.preprocess import PRESETS, Preprocess
from squeezenet.data.proxy_images import proxy_subset
from squeezenet.errors import ConfigError
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


def engine_calibration(
    engine: str,
    calib: str | None,
    preprocess: Preprocess,
    *,
    evaluated: tuple[str, str] | None = None,
) -> tuple[list[np.ndarray] | None, tuple[str, ...]]:
    """What ``--engine`` and ``--calib`` give an engine: the int8 engines' calibration batches
    (:func:`calibration_batches`; they need ``calib``), none for the others, and the warnings.

    Args:
        evaluated: the evaluated data and split (``eval``): a warning when the calibration
            reads those very images, since the result is then a bound, not an accuracy.

    Raises:
        ConfigError: an int8 engine without ``calib``, or ``calib`` for another engine.
    """
    int8 = engine.endswith("-int8")
    if int8 and calib is None:
        raise ConfigError(
            f"--engine {engine} needs --calib DATA (proxy images, not the evaluation images)"
        )
    if calib is None:
        return None, ()
    if not int8:
        raise ConfigError(
            "--calib calibrates the int8 engines only: drop it, or use an -int8 engine"
        )
    warnings: tuple[str, ...] = ()
    if evaluated is not None and same_images(calib, *evaluated):
        warnings = (
            "--calib is the evaluation data, so the result is a bound, not an accuracy: "
            "calibrate on other images",
        )
    return calibration_batches(calib, preprocess), warnings


def same_images(calib: str, data: str, split: str) -> bool:
    """Whether calibration (the training split of ``calib``) reads the evaluated images: the
    same file or folder (which has no splits), or the same named dataset's training split."""
    if os.path.exists(data):
        return os.path.realpath(calib) == os.path.realpath(data)
    return calib == data and split == "train"
