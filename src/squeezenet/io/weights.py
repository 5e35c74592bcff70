"""Weights files: safetensors + metadata (model name, config, preprocessing, class names).

A weights file rebuilds its model alone: ``load_model(path)``. Nothing here knows about
compression or unpickles anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.arch.preprocess import Preprocess
from squeezenet.errors import MissingFileError
from squeezenet.models import create_model, get_spec
from squeezenet.runtime.model_file import (
    WeightsFileError,
    read_header,
    save_safetensors,
    weights_metadata,
)

__all__ = [
    "LoadedModel",
    "WeightsFileError",
    "atomic_save_safetensors",
    "load_model",
    "plain_state_dict",
    "save_weights",
]


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
    save_safetensors(path, metadata, lambda tmp: save_file(tensors, tmp, metadata=metadata))


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
    metadata = weights_metadata(model_name, config, preprocess, class_names, extra)  # type: ignore[arg-type]
    path = Path(path)
    atomic_save_safetensors(plain_state_dict(model), path, metadata)
    return path


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
    model_name, config, preprocess, class_names = read_header(path)
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
