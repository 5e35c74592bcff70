"""A classifier from a model file, without torch: ``squeezenet.load(...)`` returns one.

    >>> import squeezenet
    >>> model = squeezenet.load()                  # the shipped squeezenet1_0-dc (0.48 MB)
    >>> model.predict("photo.jpg")[0].names[:3]    # top classes, with names
    >>> model.logits(batch)                        # (N, 1000) for a prepared (N, 3, 227, 227) batch

The network runs in one of the runtime's engines (:data:`RUNTIME_ENGINES`): ``numpy`` (numpy
alone) or ``onnxruntime-graph`` (ONNX Runtime on a graph built from the file, with the
``onnx`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.layers import layer_list
from squeezenet.arch.preprocess import Preprocess
from squeezenet.errors import ConfigError, InputError, MissingDependencyError, pip_command
from squeezenet.runtime.images import ImageLike, describe, prepare
from squeezenet.runtime.model_file import DEFAULT_MODEL, ModelFile, read_model
from squeezenet.runtime.numpy_engine import NumpyNetwork

# Engines that run a model file without torch, each with the pip extra it needs ("": none).
RUNTIME_ENGINES = {"numpy": "", "onnxruntime-graph": "onnx"}


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


def top_predictions(
    logits: np.ndarray, images: Sequence[str], class_names: Sequence[str] | None, top: int
) -> list[Prediction]:
    """The ``top`` classes of each row of ``logits`` with their softmax probabilities."""
    if top < 1:
        raise ConfigError(f"top: expected a number of classes >= 1, got {top}")
    probabilities = softmax(logits.astype(np.float64))
    k = min(top, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    results = []
    for image, row, probs in zip(images, order, probabilities, strict=True):
        names = [class_names[i] if class_names else str(i) for i in row]
        results.append(Prediction(image, row.tolist(), names, probs[row].tolist()))
    return results


def make_network(model: ModelFile, engine: str = "numpy") -> Callable[[np.ndarray], np.ndarray]:
    """``model``'s network in a runtime engine: float32 ``(N, C, H, W)`` -> ``(N, classes)``.

    Raises:
        ConfigError: an unknown engine, or a model that is not a SqueezeNet.
        MissingDependencyError: the engine's extra is not installed (names the pip command).
    """
    if engine not in RUNTIME_ENGINES:
        raise ConfigError(
            f"unknown runtime engine {engine!r}; choose one of {', '.join(RUNTIME_ENGINES)}"
        )
    config = model.model_config()
    if not isinstance(config, SqueezeNetConfig):
        raise ConfigError(
            f"{model.path} is a {model.model_name}, which runs only in torch: "
            f"{pip_command('torch')}"
        )
    layers = layer_list(config)
    if engine == "numpy":
        return NumpyNetwork(layers, model.weights)
    from squeezenet.runtime.onnx_graph import OnnxRuntimeNetwork

    crop = model.preprocess.crop if model.preprocess else 224
    return OnnxRuntimeNetwork(layers, model.weights, (config.in_channels, crop, crop))


class Classifier:
    """A model file ready to classify: preprocessing, network and class names in one object.

    Args:
        model: the file's contents (:func:`squeezenet.runtime.model_file.read_model`).
        engine: a runtime engine (:data:`RUNTIME_ENGINES`).

    Raises:
        InputError: the file has no preprocessing record (its images cannot be prepared).
        ConfigError / MissingDependencyError: see :func:`make_network`.
    """

    def __init__(self, model: ModelFile, engine: str = "numpy") -> None:
        if model.preprocess is None:
            raise InputError(
                f"{model.path} has no preprocessing record, so its images cannot be prepared; "
                "re-save it with save_weights(preprocess=...)"
            )
        self.model = model
        self.engine = engine
        self.preprocess: Preprocess = model.preprocess
        self.class_names = model.class_names
        self._network = make_network(model, engine)

    @classmethod
    def load(cls, source: str | Path = DEFAULT_MODEL, engine: str = "numpy") -> Classifier:
        """A shipped model's name (default ``squeezenet1_0-dc``), a ``.sqz`` or a weights file."""
        return cls(read_model(source), engine)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one prepared image."""
        pre = self.preprocess
        return pre.channels, pre.crop, pre.crop

    def prepare(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Images (paths, PIL images or uint8 arrays) -> the float32 model input batch."""
        return prepare(images, self.preprocess)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 ``(N, C, H, W)`` prepared inputs -> ``(N, classes)`` logits."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise InputError(
                f"logits() takes prepared (N, {', '.join(map(str, self.input_shape))}) batches, "
                f"got {batch.shape}; pass images to predict() or prepare() instead"
            )
        return self._network(batch)

    def predict(
        self, images: ImageLike | Sequence[ImageLike], *, top: int = 5, batch_size: int = 16
    ) -> list[Prediction]:
        """The ``top`` classes of each image (one image or a list), with softmax
        probabilities and class names.

        Raises:
            CorruptImageError / DatasetNotFoundError: an image is unreadable or missing.
        """
        if isinstance(images, str | Path | np.ndarray) or not isinstance(images, Sequence):
            images = [images]
        results: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            logits = self.logits(self.prepare(chunk))
            names = [describe(image) for image in chunk]
            results += top_predictions(logits, names, self.class_names, top)
        return results

    __call__ = predict


def load(source: str | Path = DEFAULT_MODEL, *, engine: str = "numpy") -> Classifier:
    """A classifier from a shipped model's name (default ``squeezenet1_0-dc``), a ``.sqz`` or a
    weights file, running in ``engine`` (``numpy``, or ``onnxruntime-graph`` with the ``onnx``
    extra). Needs no torch."""
    return Classifier.load(source, engine)


__all__ = [
    "RUNTIME_ENGINES",
    "Classifier",
    "MissingDependencyError",
    "Prediction",
    "load",
    "make_network",
    "softmax",
    "top_predictions",
]
