"""Weights files: safetensors + metadata (model name, config, preprocessing, class names).

A weights file rebuilds its model alone: ``load_model(path)``. Nothing here knows about
compression or unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.arch.preprocess import Preprocess
from squeezenet.atomic import atomic_write
from squeezenet.errors import FileFormatError, MissingFileError
from squeezenet.models import create_model, get_spec

FORMAT_NAME = "squeezenet-weights"
FORMAT_VERSION = "1"


class WeightsFileError(FileFormatError):
    """A weights file that cannot be used; the message names the file and the problem."""


@dataclass
class LoadedModel:
    """A model rebuilt from a file, with what it needs for inference."""

    model: nn.Module
    model_name: str
    config: dict[str, Any]  # fields of the model config
    preprocess: Preprocess | None
    class_names: list[str] | None
    path: Path


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with pruning / weight-sharing parametrizations evaluated and removed.

    Keys are the plain ones (``features.0.weight``), values the effective (masked, shared)
    tensors, detached and contiguous.
    """
    state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in k}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tensor_name in module.parametrizations:
                key = f"{name}.{tensor_name}" if name else tensor_name
                state[key] = getattr(module, tensor_name)
    return {k: v.detach().contiguous().clone() for k, v in state.items()}


def atomic_save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]
) -> None:
    """``safetensors.torch.save_file`` through a temp file and a rename (never half-written)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_weights(
    model: nn.Module,
    path: str | Path,
    *,
    model_name: str,
    preprocess: Preprocess | None = None,
    class_names: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (effective weights) and its metadata to a safetensors file, atomically."""
    get_spec(model_name)  # fail early on an unknown name
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise ValueError("model has no .config dataclass; build it with create_model()")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "config": json.dumps(dataclasses.asdict(config)),  # type: ignore[arg-type]
        "preprocess": json.dumps(preprocess.to_dict() if preprocess else None),
        "class_names": json.dumps(class_names),
        "extra": json.dumps(extra or {}),
    }
    path = Path(path)
    atomic_save_safetensors(plain_state_dict(model), path, metadata)
    return path


def read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from None


def load_model(path: str | Path, *, map_location: str = "cpu") -> LoadedModel:
    """Rebuild a model from a weights file (``.safetensors``); ``.sqz`` files load through
    :func:`squeezenet.workflows.load.load_any`.

    Raises:
        MissingFileError: no such file.
        WeightsFileError: the file is not a weights file of this package, or is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"weights file not found: {path}")
    if path.suffix == ".sqz":
        raise WeightsFileError(
            f"{path}: a .sqz file, not a weights file; load it with "
            "squeezenet.workflows.load.load_any"
        )
    model_name, config, preprocess, class_names = _read_header(path)
    model = create_model(model_name, **config)
    try:
        state = load_file(str(path), device=map_location)
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: damaged tensor data ({exc})", field="tensors") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # one line: the CLI prints it as it is
        raise WeightsFileError(f"{path}: tensors do not fit {model_name}: {detail}") from None
    return LoadedModel(model.eval(), model_name, config, preprocess, class_names, path)


def _read_header(path: Path) -> tuple[str, dict[str, Any], Preprocess | None, list[str] | None]:
    """Model name, config, preprocessing and class names from the metadata of ``path``."""
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT_NAME:
        raise WeightsFileError(
            f"{path}: no squeezenet metadata; write it with `squeezenet train` or save_weights()",
            field="format",
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise WeightsFileError(
            f"{path}: weights format version {metadata.get('format_version')!r} is not supported "
            f"(this package reads {FORMAT_VERSION}); upgrade squeezenet",
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
