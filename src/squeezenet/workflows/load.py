"""Any model file -> a torch model: ``.safetensors`` weights files and ``.sqz`` files alike.

The one rule for "is this a model file" lives here too (:func:`is_model_file`).
"""

from __future__ import annotations

from pathlib import Path

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.plain_data import from_compressed
from squeezenet.errors import MissingFileError
from squeezenet.formats.sqz import read_sqz
from squeezenet.io.weights import LoadedModel, load_model
from squeezenet.runtime.model_file import (
    MODEL_SUFFIXES,
    PRETRAINED,
    is_model_file,
    pretrained_path,
)

__all__ = [
    "MODEL_SUFFIXES",
    "ONNX_SUFFIX",
    "PRETRAINED",
    "is_model_file",
    "load_any",
    "load_onnx",
    "load_pretrained",
    "pretrained_path",
]

ONNX_SUFFIX = ".onnx"  # exported files: load_onnx runs them (eval, predict, bench)


def load_pretrained(name: str = "squeezenet1_0-dc") -> LoadedModel:
    """A model the package ships, by name, as a torch model: ``squeezenet1_0-dc`` is the
    published Deep Compression SqueezeNet v1.0 re-coded to 477,964 bytes (calibrated
    trellis-coded quantization; provenance in ``squeezenet/pretrained/squeezenet1_0-dc.json``).

    Returns a :class:`LoadedModel` whose ``.model`` is the decoded ``nn.Module`` (eval mode);
    this needs the torch extra. Without torch, ``squeezenet.load(name)`` returns a numpy
    :class:`squeezenet.runtime.Classifier` of the same file."""
    return load_any(pretrained_path(name))


def load_onnx(path: str | Path, runtime: str = "onnxruntime") -> LoadedModel:
    """An ONNX file exported by this package, running in ``runtime`` (onnxruntime or
    openvino) behind a module's call, after its self-check passed on this machine.

    Raises:
        MissingFileError: no such file.
        CheckFormatError: not an ONNX file with this package's metadata.
        ModelCheckError: the runtime does not compute the file on this machine.
    """
    from squeezenet.deploy.engines import EngineModule, from_runner
    from squeezenet.deploy.onnx_file import checked_runner, read_onnx

    file = read_onnx(path)
    run, _ = checked_runner(file, runtime)
    preprocess = Preprocess.from_dict(file.preprocess) if file.preprocess else None
    module = EngineModule(from_runner(run)).eval()
    return LoadedModel(
        module, file.model_name, file.config, preprocess, file.class_names, file.path
    )


def load_any(path: str | Path, *, map_location: str = "cpu") -> LoadedModel:
    """Rebuild a model from a weights file (``.safetensors``), a Deep Compression ``.sqz`` or
    the name of a model the package ships (:data:`PRETRAINED`).

    Raises:
        MissingFileError: no such file.
        WeightsFileError: a ``.safetensors`` file that is not a weights file of this package.
        SqzFormatError: a damaged ``.sqz`` file (names the field and byte offset).
    """
    path = pretrained_path(str(path)) if str(path) in PRETRAINED else Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}")
    if path.suffix != ".sqz":
        return load_model(path, map_location=map_location)
    compressed = read_sqz(path)
    model = from_compressed(compressed)
    preprocess = Preprocess.from_dict(compressed.preprocess) if compressed.preprocess else None
    return LoadedModel(
        model.eval(),
        compressed.model_name,
        compressed.config,
        preprocess,
        compressed.class_names,
        path,
    )
