"""The parameters an inference engine runs: each convolution's weight and bias, with the batch
norm after it folded in (inference statistics), as float32 numpy arrays.

``weights`` is a state dict as numpy arrays (what a ``.sqz`` decodes to, or a weights file holds),
keyed by the state-dict names that :func:`squeezenet.arch.layers.layer_list` gives each layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from squeezenet.arch.layers import Conv
from squeezenet.errors import InputError

BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which every model of the registry uses


def conv_params(conv: Conv, weights: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``conv``'s float32 weight ``(O, I, K, K)`` and bias ``(O,)``, its batch norm folded in:
    ``w * g / sqrt(var + eps)`` and ``(b - mean) * g / sqrt(var + eps) + beta``.

    Raises:
        InputError: a tensor is missing or has the wrong shape (names it).
    """
    shape = (conv.out_channels, conv.in_channels, conv.kernel, conv.kernel)
    weight = _tensor(weights, f"{conv.name}.weight", shape).astype(np.float32)
    if f"{conv.name}.bias" in weights:
        bias = _tensor(weights, f"{conv.name}.bias", (conv.out_channels,)).astype(np.float32)
    else:
        bias = np.zeros(conv.out_channels, np.float32)
    if conv.batch_norm is None:
        return np.ascontiguousarray(weight), np.ascontiguousarray(bias)
    norm = {
        part: _tensor(weights, f"{conv.batch_norm}.{part}", (conv.out_channels,)).astype(np.float64)
        for part in ("weight", "bias", "running_mean", "running_var")
    }
    scale = norm["weight"] / np.sqrt(norm["running_var"] + BATCH_NORM_EPS)
    folded_w = (weight.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
    folded_b = ((bias - norm["running_mean"]) * scale + norm["bias"]).astype(np.float32)
    return np.ascontiguousarray(folded_w), folded_b


def _tensor(weights: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in weights:
        raise InputError(f"the model's weights have no {key!r}; is this file for another model?")
    value = np.asarray(weights[key])
    if tuple(value.shape) != shape:
        raise InputError(f"{key} has shape {tuple(value.shape)}, expected {shape}")
    return value
