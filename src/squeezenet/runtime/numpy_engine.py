"""The numpy engine: a SqueezeNet's layer list run with numpy alone.

Activations are kept channels-last (``N, H, W, C``) so that every convolution is one matrix
product over the whole batch: a 1x1 convolution multiplies the activations as they lie, a KxK
one first gathers its K*K shifted views side by side (im2col). Batch norms are folded into the
convolutions (:func:`squeezenet.runtime.params.conv_params`); dropout is the identity at
inference. float32 throughout; the matrix products run in numpy's BLAS, on all its threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from squeezenet.arch.layers import Conv, Fire, GlobalAvgPool, Layer, MaxPool
from squeezenet.runtime.params import conv_params

# Images run through the network together: the im2col buffers grow with the batch (conv1 of
# SqueezeNet v1.0 at 227 px: 7 MB per image), and beyond a few images a larger product is no
# faster on a CPU (measured: 32.5 ms/image in chunks of 2-4 against 38.5 ms in one of 32).
CHUNK = 4


@dataclass(frozen=True)
class _ConvOp:
    """A convolution ready to run: weight ``(K*K*I, O)`` in im2col order, bias ``(O,)``."""

    matrix: np.ndarray
    bias: np.ndarray
    kernel: int
    stride: int
    padding: int
    relu: bool

    @classmethod
    def of(cls, conv: Conv, weights: Mapping[str, np.ndarray]) -> _ConvOp:
        w, b = conv_params(conv, weights)
        # (O, I, Kh, Kw) -> (Kh, Kw, I, O) -> (Kh*Kw*I, O): the column order of _im2col
        matrix = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]))
        return cls(matrix, b, conv.kernel, conv.stride, conv.padding, conv.relu)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if self.kernel == 1 and self.stride == 1 and self.padding == 0:
            h, w = x.shape[1:3]
            cols = x.reshape(n * h * w, x.shape[3])
        else:
            cols, h, w = _im2col(x, self.kernel, self.stride, self.padding)
        y = cols @ self.matrix
        y += self.bias
        if self.relu:
            np.maximum(y, 0, out=y)
        out: np.ndarray = y.reshape(n, h, w, -1)
        return out


def _im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """``(N, H, W, C)`` -> ``(N*OH*OW, K*K*C)`` patches (row: one output pixel), OH, OW."""
    n, h, w, c = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    cols = np.empty((n, oh, ow, k * k * c), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            tap = i * k + j
            cols[..., tap * c : (tap + 1) * c] = x[
                :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride
            ]
    return cols.reshape(n * oh * ow, k * k * c), oh, ow


def _max_pool(x: np.ndarray, pool: MaxPool) -> np.ndarray:
    """Max pooling of ``(N, H, W, C)``; ceil mode lets the last window hang over the edge."""
    h, w = x.shape[1:3]
    k, s = pool.kernel, pool.stride
    oh = (-((h - k) // -s) if pool.ceil_mode else (h - k) // s) + 1
    ow = (-((w - k) // -s) if pool.ceil_mode else (w - k) // s) + 1
    if pool.ceil_mode:  # a window must start inside the image (torch's and Caffe's rule)
        oh -= (oh - 1) * s >= h
        ow -= (ow - 1) * s >= w
    need_h, need_w = (oh - 1) * s + k, (ow - 1) * s + k
    if need_h > h or need_w > w:
        x = np.pad(
            x,
            ((0, 0), (0, max(need_h - h, 0)), (0, max(need_w - w, 0)), (0, 0)),
            constant_values=-np.inf,
        )
    out: np.ndarray | None = None
    for i in range(k):
        for j in range(k):
            view = x[:, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s]
            out = view.copy() if out is None else np.maximum(out, view, out=out)
    assert out is not None
    return out


@dataclass(frozen=True)
class _FireOp:
    squeeze: _ConvOp
    expand1x1: _ConvOp
    expand3x3: _ConvOp
    bypass: str
    shortcut: _ConvOp | None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        s = self.squeeze(x)
        y = np.concatenate([self.expand1x1(s), self.expand3x3(s)], axis=3)
        if self.bypass == "simple":
            y += x
        elif self.shortcut is not None:
            y += self.shortcut(x)
        return y


class NumpyNetwork:
    """A SqueezeNet's layers (``squeezenet.arch.layers.layer_list``) with their weights, run by
    numpy: ``network(x)`` maps float32 ``(N, C, H, W)`` model inputs to ``(N, classes)`` logits.

    Raises:
        InputError: ``weights`` lacks a tensor of a layer or has it in the wrong shape.
    """

    def __init__(self, layers: tuple[Layer, ...], weights: Mapping[str, np.ndarray]) -> None:
        self.layers = layers
        self._ops = [self._op(layer, weights) for layer in layers]
        first = layers[0]
        self.in_channels = first.in_channels if isinstance(first, Conv) else 0

    @staticmethod
    def _op(layer: Layer, weights: Mapping[str, np.ndarray]) -> object:
        if isinstance(layer, Conv):
            return _ConvOp.of(layer, weights)
        if isinstance(layer, Fire):
            shortcut = _ConvOp.of(layer.shortcut, weights) if layer.shortcut else None
            return _FireOp(
                _ConvOp.of(layer.squeeze, weights),
                _ConvOp.of(layer.expand1x1, weights),
                _ConvOp.of(layer.expand3x3, weights),
                layer.bypass,
                shortcut,
            )
        return layer  # MaxPool, GlobalAvgPool: no parameters

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) inputs, got {x.shape}")
        if len(x) <= CHUNK:
            return self._run(x)
        return np.concatenate([self._run(x[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        y = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        for op in self._ops:
            if isinstance(op, MaxPool):
                y = _max_pool(y, op)
            elif isinstance(op, GlobalAvgPool):
                y = y.mean(axis=(1, 2), dtype=np.float32)
            else:
                y = op(y)  # type: ignore[operator]
        return y
