"""Prediction on image files with a model's own preprocessing and class names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from squeezenet.data.datasets import load_image
from squeezenet.data.transforms import eval_transform
from squeezenet.deploy.engines import make_engine
from squeezenet.errors import ConfigError, InputError
from squeezenet.io.weights import LoadedModel


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image."""

    image: str
    indices: list[int]
    names: list[str]
    probabilities: list[float]

    def to_dict(self) -> dict[str, object]:
        return {
            "image": self.image,
            "top": [
                {"index": i, "name": n, "probability": p}
                for i, n, p in zip(self.indices, self.names, self.probabilities, strict=True)
            ],
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, classes)`` logits, shifted by each row's max for stability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    result: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return result


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
        probabilities = softmax(run(x).astype(np.float64))
        k = min(top, probabilities.shape[1])
        order = np.argsort(-probabilities, axis=1)[:, :k]
        for path, row, probs in zip(chunk, order, probabilities, strict=True):
            names = [loaded.class_names[i] if loaded.class_names else str(i) for i in row]
            results.append(Prediction(str(path), row.tolist(), names, probs[row].tolist()))
    return results
