"""The runtime: classify images with a ``.sqz`` or weights file without torch.

numpy runs the network (:mod:`squeezenet.runtime.numpy_engine`), or ONNX Runtime on a graph
built from the file (:mod:`squeezenet.runtime.onnx_graph`, the ``onnx`` extra); Pillow and
numpy prepare the images exactly as the torch path does (:mod:`squeezenet.runtime.images`).

    >>> import squeezenet
    >>> model = squeezenet.load()          # the shipped squeezenet1_0-dc
    >>> model.predict("photo.jpg")[0]      # Prediction(image, indices, names, probabilities)
"""

from squeezenet.runtime.classifier import (
    RUNTIME_ENGINES,
    Classifier,
    Prediction,
    load,
    make_network,
)
from squeezenet.runtime.model_file import PRETRAINED, ModelFile, read_model
from squeezenet.runtime.numpy_engine import NumpyNetwork

__all__ = [
    "PRETRAINED",
    "RUNTIME_ENGINES",
    "Classifier",
    "ModelFile",
    "NumpyNetwork",
    "Prediction",
    "load",
    "make_network",
    "read_model",
]
