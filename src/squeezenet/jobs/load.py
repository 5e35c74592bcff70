"""Any model file -> a torch model: ``.safetensors`` weights files and ``.sqz`` files alike.

The one rule for "is this a model file" lives here too (:func:`is_model_file`).
"""

from __future__ import annotations

import os
from pathlib import Path

from squeezenet.compress.export import from_compressed
from squeezenet.data.presets import Preprocess
from squeezenet.errors import MissingFileError
from squeezenet.formats.sqz import read_sqz
from squeezenet.io.weights import LoadedModel, load_model

MODEL_SUFFIXES = (".safetensors", ".sqz")  # the files load_any reads


def is_model_file(spec: str | Path) -> bool:
    """Whether ``spec`` names a model file rather than a registry model.

    One rule for every command: a name with a model-file suffix (``.safetensors``, ``.sqz``) or
    with a folder separator. Registry names have neither, so a file that happens to share a
    registry name in the working folder never shadows it (write ``./NAME`` to mean the file).
    """
    text = str(spec)
    return (
        Path(text).suffix in MODEL_SUFFIXES
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    )


def load_any(path: str | Path, *, map_location: str = "cpu") -> LoadedModel:
    """Rebuild a model from a weights file (``.safetensors``) or a Deep Compression ``.sqz``.

    Raises:
        MissingFileError: no such file.
        WeightsFileError: a ``.safetensors`` file that is not a weights file of this package.
        SqzFormatError: a damaged ``.sqz`` file (names the field and byte offset).
    """
    path = Path(path)
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
