"""Between modules and plain data: a pruned / weight-shared model <-> :class:`CompressedModel`.

:func:`to_compressed` reads the masks and codebooks that :func:`prune_` and :func:`quantize_`
attached; :func:`from_compressed` rebuilds the dense model from the registry. The round trip is
exact: every weight, bias and buffer comes back bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import prune_mask_of, weight_layers
from squeezenet.compress.trellis import BIAS_SCALE_ATTRIBUTE, GRID_ATTRIBUTE
from squeezenet.compress.weight_sharing import centroids_of, weight_share_of
from squeezenet.errors import ConfigError, InputError
from squeezenet.formats.grid import GridCode
from squeezenet.formats.model import MAX_BITS, CompressedLayer, CompressedModel
from squeezenet.formats.spec import MAX_GRID_BITS, MIN_STATE_PERIOD_LOG2, QUANTIZER_UNIFORM
from squeezenet.models import create_model, get_spec


class _HasToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def to_compressed(
    model: nn.Module,
    *,
    model_name: str,
    preprocess: _HasToDict | dict[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> CompressedModel:
    """The plain-data form of ``model``: one :class:`CompressedLayer` per conv/linear layer.

    Weight-shared layers give their centroids and assignment; other layers are shared
    losslessly (their distinct stored values become the codebook), which works for pruned or
    baked-in quantized layers but not for a float layer with more than 2**16 distinct values.
    Stored positions are the unpruned ones (or the non-zero ones of an unmasked layer).

    Args:
        model: a registry model, possibly pruned and/or quantized, with a ``config`` dataclass.
        model_name: its registry name (``create_model(model_name, **config)`` rebuilds it).
        preprocess: a :class:`squeezenet.arch.preprocess.Preprocess` (or its ``to_dict()``).
        class_names: one name per output class.

    Raises:
        ConfigError: a layer needs quantizing first (no bit width was given for it).
        ValueError: the config does not fit ``model_name``, or a tensor is parametrized by
            something other than pruning / weight sharing (a caller's bug).
    """
    config = _config_overrides(model, model_name)
    layers = [_layer(name, module) for name, module in weight_layers(model)]
    names = {layer.name for layer in layers}
    covered = {f"{n}.{t}" for n in names for t in ("weight", "bias")}
    dense: dict[str, np.ndarray] = {}
    for key, value in model.state_dict().items():
        if ".parametrizations." in f".{key}":
            owner = key.split(".parametrizations.")[0] if ".parametrizations." in key else ""
            if owner not in names:
                raise ValueError(f"{key}: only conv/linear weights may be parametrized to export")
            continue
        if key not in covered:
            dense[key] = value.detach().cpu().to(torch.float32).numpy().copy()
    if preprocess is not None and not isinstance(preprocess, dict):
        preprocess = preprocess.to_dict()
    return CompressedModel(
        model_name=model_name,
        config=config,
        preprocess=dict(preprocess) if preprocess is not None else None,
        class_names=list(class_names) if class_names is not None else None,
        layers=layers,
        dense=dense,
    )


def _config_overrides(model: nn.Module, model_name: str) -> dict[str, Any]:
    """The fields of ``model.config`` that differ from the registry defaults of ``model_name``."""
    config = getattr(model, "config", None)
    default = get_spec(model_name).config
    if type(config) is not type(default):
        raise ValueError(
            f"model_name {model_name!r} builds a {type(default).__name__}, but the model's "
            f"config is {type(config).__name__}; pass the registry name the model came from"
        )
    out = {}
    for field in dataclasses.fields(default):
        value = getattr(config, field.name)
        if value != getattr(default, field.name):
            out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def _layer(name: str, module: nn.Module) -> CompressedLayer:
    bias = getattr(module, "bias", None)
    bias_np = bias.detach().cpu().to(torch.float32).numpy().copy() if bias is not None else None
    share = weight_share_of(module)
    if share is not None:
        centroids = centroids_of(module)
        assignment_t = cast(torch.Tensor, share.assignment)
        assignment = assignment_t.detach().cpu().flatten().numpy()
        positions = np.flatnonzero(assignment < share.num_centroids).astype(np.int64)
        layer = CompressedLayer(
            name=name,
            shape=tuple(assignment_t.shape),
            bits=share.bits,
            codebook=centroids.detach().cpu().to(torch.float32).numpy().copy(),
            positions=positions,
            codes=assignment[positions].astype(np.uint16),
            bias=bias_np,
        )
        layer.grid = _grid_of(module, layer)
        _bias_on_grid(module, layer)
        return layer
    weight = cast(torch.Tensor, module.weight).detach().cpu().to(torch.float32)
    prune = prune_mask_of(module)
    keep = prune.prune_mask.cpu() if prune is not None else weight != 0
    flat = weight.flatten().numpy()
    positions = np.flatnonzero(keep.flatten().numpy()).astype(np.int64)
    codebook, codes = np.unique(flat[positions], return_inverse=True)
    if codebook.size > 2**MAX_BITS:
        raise ConfigError(
            f"{name} holds {codebook.size} distinct weights, more than 2**{MAX_BITS}: "
            "quantize it first (give it a width with --bits, or squeezenet.compress.quantize_)"
        )
    return CompressedLayer(
        name=name,
        shape=tuple(weight.shape),
        bits=max(1, math.ceil(math.log2(max(codebook.size, 1)))),
        codebook=codebook.astype(np.float32),
        positions=positions,
        codes=codes.reshape(-1).astype(np.uint16),
        bias=bias_np,
    )


def _grid_of(module: nn.Module, layer: CompressedLayer) -> GridCode | None:
    """The layer's grid code (left by :func:`squeezenet.compress.trellis.trellis_quantize_`)
    while its weights still equal it bit for bit; None once e.g. distillation moved them."""
    grid = getattr(module, GRID_ATTRIBUTE, None)
    if not isinstance(grid, GridCode):
        return None
    same = np.array_equal(
        grid.values().view(np.uint32), layer.dense_weight().reshape(-1).view(np.uint32)
    )
    return grid if same else None


def _bias_on_grid(module: nn.Module, layer: CompressedLayer) -> None:
    """A grid layer's bias rounded to its own uniform grid (``layer.bias_grid``, version 4)
    when the module carries :data:`BIAS_SCALE_ATTRIBUTE`: step = that scale x the weights'
    grid step, float32. The module's bias is left as it is (:func:`snap_biases_` copies the
    file's back); levels too wide for 15-bit symbols keep the float bias."""
    scale = getattr(module, BIAS_SCALE_ATTRIBUTE, None)
    if layer.grid is None or layer.bias is None or scale is None:
        return
    step = np.float32(float(scale) * layer.grid.step)
    if not (np.isfinite(step) and step > 0):
        return
    levels = np.round(layer.bias.astype(np.float64) / float(step)).astype(np.int64)
    if levels.size and int(np.abs(levels).max()) >= 1 << (MAX_GRID_BITS - 1):
        return
    grid = GridCode(QUANTIZER_UNIFORM, float(step), levels, MIN_STATE_PERIOD_LOG2)
    layer.bias, layer.bias_grid = grid.values().astype(np.float32), grid


def snap_biases_(model: nn.Module, cm: CompressedModel) -> None:
    """Give ``model``'s layers the biases of ``cm`` where they lie on a grid, so the module
    computes what the file decodes to."""
    modules = dict(model.named_modules())
    for layer in cm.layers:
        bias = getattr(modules[layer.name], "bias", None)
        if layer.bias_grid is not None and isinstance(bias, torch.Tensor):
            with torch.no_grad():
                bias.copy_(torch.from_numpy(np.asarray(layer.bias, np.float32)))


def from_compressed(cm: CompressedModel) -> nn.Module:
    """Rebuild the dense model: ``create_model(cm.model_name, **cm.config)`` + all weights.

    Raises:
        InputError: the layers and dense entries do not fill the model's state dict exactly.
    """
    model = create_model(cm.model_name, **cm.config)
    state: dict[str, torch.Tensor] = {}
    for layer in cm.layers:
        state[f"{layer.name}.weight"] = torch.from_numpy(layer.dense_weight())
        if layer.bias is not None:
            state[f"{layer.name}.bias"] = torch.from_numpy(np.asarray(layer.bias, np.float32))
    for key, array in cm.dense.items():
        state[key] = torch.from_numpy(np.array(array))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # one line: the CLI prints it as it is
        raise InputError(f"compressed model does not fit {cm.model_name}: {detail}") from None
    return model
