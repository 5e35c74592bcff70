"""Prediction on image files with a model's own preprocessing and class names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from squeezenet.data.transforms import eval_transform
from squeezenet.deploy.engines import make_engine
from squeezenet.errors import ConfigError, InputError
from squeezenet.io.weights import LoadedModel
from squeezenet.runtime.classifier import Prediction, softmax, top_predictions
from squeezenet.runtime.images import load_image

__all__ = ["Prediction", "predict", "softmax"]


def predict(
    loaded: LoadedModel,
    images: Sequence[str | Path],
    *,
    engine: str = "torch",
    top: int = 5,
    batch_size: int = 16,
    calibration: Sequence[np.ndarray] | None = None,
) -> list[Prediction]:
    """Classify image files; probabilities are the softmax of the model's outputs.

    ``calibration``: preprocessed proxy batches for an int8 engine's activation ranges.

    Raises:
        InputError: the model has no preprocessing record.
        ConfigError: ``top`` is not positive, or ``engine`` is unknown.
        CorruptImageError / DatasetNotFoundError: an image is unreadable or missing (named).
    """
    if loaded.preprocess is None:
        raise InputError(
            f"{loaded.path} has no preprocessing record, so its images cannot be prepared; "
            "re-save it with save_weights(preprocess=...)"
        )
    if top < 1:
        raise ConfigError(f"top: expected a number of classes >= 1, got {top}")
    preprocess = loaded.preprocess
    transform = eval_transform(preprocess)
    mode = "L" if preprocess.channels == 1 else "RGB"
    shape = (preprocess.channels, preprocess.crop, preprocess.crop)
    if engine.endswith("-int8") and calibration is None:
        raise ConfigError(f"--engine {engine} needs --calib DATA (proxy images, not eval images)")
    run = make_engine(
        engine, loaded.model, shape, calibration=calibration, preprocess=preprocess.to_dict()
    )
    results: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = torch.stack([transform(load_image(Path(p), mode)) for p in chunk])
        results += top_predictions(run(x), [str(p) for p in chunk], loaded.class_names, top)
    return results
