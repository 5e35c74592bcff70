"""A model file read without torch: a ``.sqz``, a weights file (``.safetensors``) or the name of
a model the package ships, as its description (model name, config, preprocessing, class names)
and its state dict as float32 numpy arrays.

The weights file's metadata is read here for the torch layers too (``squeezenet.io.weights``),
and the decode of a compressed model into a state dict and a weights file
(:func:`write_weights`, what ``squeezenet decompress`` and ``import-caffe-dc`` write).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from squeezenet.arch.config import ModelConfig, SqueezeNetConfig
from squeezenet.arch.layers import Conv, Fire, layer_list
from squeezenet.arch.preprocess import Preprocess
from squeezenet.arch.registry import resolve_config
from squeezenet.atomic import atomic_write
from squeezenet.errors import ConfigError, FileFormatError, InputError, MissingFileError
from squeezenet.formats.model import CompressedModel
from squeezenet.formats.sqz import read_sqz

WEIGHTS_FORMAT = "squeezenet-weights"  # the "format" metadata of a weights file
WEIGHTS_VERSION = "1"
MODEL_SUFFIXES = (".safetensors", ".sqz")  # the model files this package reads
# Models the package ships (package data in squeezenet/pretrained/, each with a provenance JSON
# and the licence of what it derives from): name -> file.
PRETRAINED = {"squeezenet1_0-dc": "squeezenet1_0-dc.sqz"}
DEFAULT_MODEL = "squeezenet1_0-dc"


class WeightsFileError(FileFormatError):
    """A weights file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ModelFile:
    """What a model file holds, torch-free."""

    model_name: str
    config: dict[str, Any]  # the fields the file gives (overrides of the registry's config)
    preprocess: Preprocess | None
    class_names: list[str] | None
    weights: dict[str, np.ndarray]  # the state dict: plain names -> arrays
    path: Path

    def model_config(self) -> ModelConfig:
        """The full config: the registry's for ``model_name`` with the file's fields."""
        return resolve_config(self.model_name, **self.config)


def pretrained_path(name: str) -> Path:
    """The shipped file of a pretrained model name (see :data:`PRETRAINED`).

    Raises:
        MissingFileError: an unknown name (the message lists the known ones).
    """
    if name not in PRETRAINED:
        raise MissingFileError(f"no pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    return Path(str(resources.files("squeezenet.pretrained").joinpath(PRETRAINED[name])))


def model_path(spec: str | Path) -> Path:
    """The file a MODEL argument names: a shipped model's name or a path.

    Raises:
        MissingFileError: no such file.
    """
    path = pretrained_path(str(spec)) if str(spec) in PRETRAINED else Path(spec)
    if not path.is_file():
        raise MissingFileError(f"model file not found: {path}")
    return path


def is_model_file(spec: str | Path) -> bool:
    """Whether ``spec`` names a model file rather than a registry model.

    One rule for every command: a shipped model's name (:data:`PRETRAINED`), a name with a
    model-file suffix (``.safetensors``, ``.sqz``) or with a folder separator. Registry names
    have none of these, so a file that happens to share a registry name in the working folder
    never shadows it (write ``./NAME`` to mean the file).
    """
    text = str(spec)
    return (
        text in PRETRAINED
        or Path(text).suffix in MODEL_SUFFIXES
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
    )


def read_model(spec: str | Path) -> ModelFile:
    """A ``.sqz``, a weights file or a shipped model's name, read with numpy alone.

    Raises:
        MissingFileError: no such file.
        WeightsFileError: a ``.safetensors`` file that is not a weights file of this package.
        SqzFormatError: a damaged ``.sqz`` file (names the field and byte offset).
    """
    path = model_path(spec)
    if path.suffix == ".sqz":
        cm = read_sqz(path)
        preprocess = Preprocess.from_dict(cm.preprocess) if cm.preprocess else None
        weights = state_dict(cm)
        return ModelFile(cm.model_name, dict(cm.config), preprocess, cm.class_names, weights, path)
    header = read_header(path)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: damaged tensor data ({exc})", field="tensors") from None
    return ModelFile(*header, weights, path)


def state_dict(cm: CompressedModel) -> dict[str, np.ndarray]:
    """The decoded state dict of a compressed model (weights, biases, dense tensors)."""
    state: dict[str, np.ndarray] = {}
    for layer in cm.layers:
        state[f"{layer.name}.weight"] = layer.dense_weight()
        if layer.bias is not None:
            state[f"{layer.name}.bias"] = np.asarray(layer.bias, np.float32)
    for key, array in cm.dense.items():
        if key.endswith(".num_batches_tracked"):  # a batch norm's counter: a 0-d int64 in torch
            state[key] = np.array(array, dtype=np.int64).reshape(())
        else:
            state[key] = np.array(array)
    return state


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file.

    Raises:
        WeightsFileError: not a readable safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from None


def read_header(path: Path) -> tuple[str, dict[str, Any], Preprocess | None, list[str] | None]:
    """Model name, config, preprocessing and class names from the metadata of a weights file.

    Raises:
        WeightsFileError: no metadata of this package, another format version, or damaged.
    """
    metadata = read_metadata(path)
    if metadata.get("format") != WEIGHTS_FORMAT:
        raise WeightsFileError(
            f"{path}: no squeezenet metadata; write it with `squeezenet train` or save_weights()",
            field="format",
        )
    if metadata.get("format_version") != WEIGHTS_VERSION:
        raise WeightsFileError(
            f"{path}: weights format version {metadata.get('format_version')!r} is not supported "
            f"(this package reads {WEIGHTS_VERSION}); upgrade squeezenet",
            field="format_version",
        )
    try:
        model_name = metadata["model_name"]
        config = json.loads(metadata["config"])
        preprocess_dict = json.loads(metadata["preprocess"])
        class_names = json.loads(metadata["class_names"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise WeightsFileError(f"{path}: damaged metadata ({exc})", field="metadata") from None
    if not isinstance(config, dict):
        raise WeightsFileError(
            f"{path}: damaged metadata (config is not an object)", field="config"
        )
    try:
        preprocess = Preprocess.from_dict(preprocess_dict) if preprocess_dict else None
    except (ValueError, TypeError, AttributeError) as exc:
        raise WeightsFileError(
            f"{path}: damaged preprocessing record ({exc})", field="preprocess"
        ) from None
    return model_name, config, preprocess, class_names


def weights_metadata(
    model_name: str,
    config: ModelConfig,
    preprocess: Preprocess | None,
    class_names: list[str] | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The metadata of a weights file (docs/FORMAT.md): enough to rebuild the model."""
    return {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_VERSION,
        "model_name": model_name,
        "config": json.dumps(dataclasses.asdict(config)),
        "preprocess": json.dumps(preprocess.to_dict() if preprocess else None),
        "class_names": json.dumps(class_names),
        "extra": json.dumps(extra or {}),
    }


def save_safetensors(
    path: str | Path, metadata: dict[str, str], write: Callable[[str], None]
) -> Path:
    """Write a safetensors file through a temp file and a rename (never half-written):
    ``write(tmp)`` writes it (safetensors' numpy or torch ``save_file``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return path


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What ``import-caffe-dc`` or ``decompress`` wrote."""

    source: str
    output: str
    model_name: str
    config: dict[str, Any]
    layers: int  # compressed layers read
    weights: int  # weights in those layers
    stored: int  # of them, the stored (non-zero) ones
    params: int  # parameters of the rebuilt model
    output_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_weights(cm: CompressedModel, source: str | Path, output: str | Path) -> ConversionReport:
    """A compressed model -> a dense weights file (the decoded weights, bit for bit), atomically.

    Raises:
        InputError: the tensors do not fill the model's state dict exactly, or one has the
            wrong shape.
        ConfigError: the model is not a SqueezeNet (its weights file needs torch).
    """
    from safetensors.numpy import save_file

    from squeezenet.runtime.numpy_engine import NumpyNetwork

    config = resolve_config(cm.model_name, **cm.config)
    state = state_dict(cm)
    expected = state_keys(config)
    if set(state) != set(expected):
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise InputError(
            f"compressed model does not fit {cm.model_name}: missing {missing}, "
            f"unexpected {unexpected}"
        )
    NumpyNetwork(layer_list(config), state)  # checks the shape of every tensor it runs
    preprocess = Preprocess.from_dict(cm.preprocess) if cm.preprocess else None
    metadata = weights_metadata(cm.model_name, config, preprocess, cm.class_names)
    tensors = {key: np.array(value, order="C") for key, value in state.items()}  # 0-d stays 0-d
    path = save_safetensors(
        output, metadata, lambda tmp: save_file(tensors, tmp, metadata=metadata)
    )
    params = sum(int(state[key].size) for key, kind in expected.items() if kind == "param")
    return conversion_report(cm, source, path, params)


def conversion_report(
    cm: CompressedModel, source: str | Path, written: Path, params: int
) -> ConversionReport:
    """The report of a compressed model written to ``written`` as a weights file."""
    return ConversionReport(
        source=str(source),
        output=str(written),
        model_name=cm.model_name,
        config=dict(cm.config),
        layers=len(cm.layers),
        weights=sum(layer.numel for layer in cm.layers),
        stored=sum(len(layer.positions) for layer in cm.layers),
        params=params,
        output_bytes=written.stat().st_size,
    )


def state_keys(config: ModelConfig) -> dict[str, str]:
    """Every state-dict key of a SqueezeNet ``config``: ``"param"`` or ``"buffer"`` (batch-norm
    statistics), as ``torch``'s module would have them.

    Raises:
        ConfigError: not a SqueezeNet.
    """
    if not isinstance(config, SqueezeNetConfig):
        raise ConfigError(f"no torch-free state dict for {type(config).__name__}")
    keys: dict[str, str] = {}

    def conv(c: Conv) -> None:
        keys[f"{c.name}.weight"] = keys[f"{c.name}.bias"] = "param"
        if c.batch_norm is not None:
            keys[f"{c.batch_norm}.weight"] = keys[f"{c.batch_norm}.bias"] = "param"
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                keys[f"{c.batch_norm}.{buffer}"] = "buffer"

    for layer in layer_list(config):
        if isinstance(layer, Conv):
            conv(layer)
        elif isinstance(layer, Fire):
            for part in (layer.squeeze, layer.expand1x1, layer.expand3x3, layer.shortcut):
                if part is not None:
                    conv(part)
    return keys
