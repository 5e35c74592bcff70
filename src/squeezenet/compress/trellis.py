"""Trellis-coded ("dependent") quantization of weights on a grid, pruning included.

Measured against MPEG-7 Part 17's NNCodec in docs/RESULTS.md, "Against the MPEG neural-network
coding standard".

Two scalar quantizers share one step ``delta``: Q0 holds the even multiples of it, Q1 zero and
the odd ones. A four-state machine driven by the parity of each level picks the quantizer of
the next weight (docs/FORMAT.md section 4a; Schwarz et al., DCC 2019, as in VVC and MPEG-7
Part 17's NNCodec). Every level costs the bits of one quantizer's spacing (2 delta) while the
union of reachable reconstructions is twice as dense, and a Viterbi search over the states
finds the levels that minimise

    D + lambda * R = sum_i (w_i - t_i)**2 + lambda * sum_i -log2 p(s_i)

with ``p`` the share of each level symbol in the layer (what a rANS table codes). The rates come
from the previous pass (three passes). Zero is a level of both quantizers, so dropping a weight
is a rate decision; weights that are exactly zero (pruned) stay zero.

The state restarts every ``2**period_log2`` weights, so the search runs every period of every
layer side by side: one numpy step per index in a period (4,096 steps for SqueezeNet).

The step follows lambda: ``delta = sqrt(lambda / STEP_LAMBDA)``. STEP_LAMBDA = 0.3 gave the
lowest weight error at equal entropy on the published SqueezeNet weights among 0.02 .. 1.0
(a property of the weights alone; no images were used).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import layer_names
from squeezenet.compress.trellis_feedback import Feedback, feedback_factor, viterbi_fed
from squeezenet.compress.trellis_lanes import MAX_LEVEL, Lanes, viterbi
from squeezenet.compress.weight_sharing import QuantizeReport, share_layer_, shareable_weight
from squeezenet.formats.grid import QUANTIZER_DEPENDENT, GridCode

STEP_LAMBDA = 0.3  # lambda / delta**2 (see the module docstring)
PERIOD_LOG2 = 12  # the state restarts every 4,096 weights
PASSES = 3  # Viterbi passes; each re-estimates the level rates from the last
GRID_ATTRIBUTE = "sqz_grid"  # where trellis_quantize_ leaves each layer's GridCode
# Where --bias grid leaves each layer's bias step in units of its weights' grid step (set
# before quantization; plain_data.to_compressed rounds the bias with it)
BIAS_SCALE_ATTRIBUTE = "sqz_bias_scale"
__all__ = [
    "MAX_LEVEL",
    "TrellisLayer",
    "feedback_factor",
    "share_codes_",
    "step_for",
    "trellis_many",
    "trellis_quantize_",
]


@dataclass(frozen=True)
class TrellisLayer:
    """One layer for :func:`trellis_many`."""

    values: np.ndarray  # the weights, any shape (flat order is the scan order)
    step: float  # delta, > 0
    rate_lambda: float  # squared-error units per bit, >= 0
    # Per-weight cost of a unit of squared error (same shape as values); None: all 1.
    importance: np.ndarray | None = None
    # Error feedback (GPTQ / Optimal Brain Compression): the upper Cholesky factor ``U`` of the
    # layer's damped inverse input Hessian, (K, K) with K the weights per output channel (row
    # of ``values.reshape(len(values), -1)``). The rounding error ``e`` of column ``j`` moves the
    # row's later weights by ``-e * U[j, j+1:] / U[j, j]`` and costs ``(e / U[j, j])**2``, its
    # share of the layer's output error once they have moved (see :func:`feedback_factor`).
    feedback: np.ndarray | None = None
    # Per row (output channel, ``len(values)``): a factor on the cost of its squared error, on
    # top of ``importance`` or ``feedback`` (e.g. the output Fisher, weighting.output_fisher).
    row_scale: np.ndarray | None = None

    def row_factors(self) -> np.ndarray:
        """``row_scale`` spread over the flat weights (all 1 without it)."""
        values = np.asarray(self.values)
        if self.row_scale is None:
            return np.ones(values.size)
        scale = np.asarray(self.row_scale, dtype=np.float64).reshape(-1)
        if len(scale) != len(values):
            raise ValueError(f"TrellisLayer: row_scale {scale.shape} does not fit {values.shape}")
        return np.repeat(scale, values.size // len(values))


def step_for(rate_lambda: float) -> float:
    """The grid step that goes with ``rate_lambda`` (float32-exact)."""
    return float(np.float32(math.sqrt(max(rate_lambda, 1e-30) / STEP_LAMBDA)))


def trellis_many(
    layers: Sequence[TrellisLayer], *, period_log2: int = PERIOD_LOG2, passes: int = PASSES
) -> list[GridCode]:
    """Dependent-quantization levels of every layer, all state periods searched together."""
    lanes = Lanes.of(layers, 1 << period_log2)
    feedback = Feedback.of(layers, lanes) if any(x.feedback is not None for x in layers) else None
    rates = lanes.initial_rates()
    levels = np.zeros_like(lanes.a, dtype=np.int64)
    for _ in range(passes):
        levels = viterbi(lanes, rates) if feedback is None else viterbi_fed(lanes, feedback, rates)
        rates = lanes.rates_of(levels)
    return [
        GridCode(QUANTIZER_DEPENDENT, float(np.float32(layer.step)), k, period_log2)
        for layer, k in zip(layers, lanes.split(levels), strict=True)
    ]


def trellis_quantize_(
    model: nn.Module,
    rate_lambda: float,
    *,
    scales: Mapping[str, float] | None = None,
    importance: Mapping[str, np.ndarray] | None = None,
    feedback: Mapping[str, np.ndarray] | None = None,
    period_log2: int = PERIOD_LOG2,
) -> QuantizeReport:
    """Put every conv / linear layer's weights on a dependent-quantization grid, in place.

    Each layer becomes weight-shared over its distinct grid values (so training, export and
    the report see an ordinary shared layer) and carries its :class:`GridCode` as attribute
    :data:`GRID_ATTRIBUTE`, which :func:`squeezenet.compress.plain_data.to_compressed` keeps while
    the weights still equal it.

    Args:
        model: any module with conv / linear layers, plain or pruned.
        rate_lambda: the global trade-off, squared-error units per bit; each layer's step is
            :func:`step_for` of its own lambda, ``rate_lambda / scale``.
        scales: per layer prefix, the cost of a unit of squared weight error (missing: 1).
        importance: per layer prefix, a per-weight cost of a unit of squared error (the
            weight's shape, mean 1 over the layer's stored weights; missing: all 1), e.g.
            :func:`squeezenet.compress.weighting.weight_importance`.
        feedback: per layer prefix, the error feedback factor (:func:`feedback_factor` of the
            layer's input Hessian); a layer with one takes no ``importance``.
    """
    if rate_lambda < 0 or not math.isfinite(rate_lambda):
        raise ValueError(
            f"trellis_quantize_: rate_lambda must be finite and >= 0, got {rate_lambda}"
        )
    found = []
    for name, _names, module in layer_names(model):
        scale = 1.0 if scales is None else float(scales.get(name, 1.0))
        if not scale > 0:
            raise ValueError(f"trellis_quantize_: scale of {name} must be > 0, got {scale}")
        lam = rate_lambda / scale
        weight = shareable_weight(name, module).cpu().numpy()
        u = None if feedback is None else feedback.get(name)
        h = None if importance is None or u is not None else importance.get(name)
        found.append((name, module, TrellisLayer(weight, step_for(lam), lam, h, u)))
    codes = trellis_many([layer for _, _, layer in found], period_log2=period_log2)
    named = {name: code for (name, _, _), code in zip(found, codes, strict=True)}
    return share_codes_(model, named)


def share_codes_(model: nn.Module, codes: Mapping[str, GridCode]) -> QuantizeReport:
    """Make each layer named in ``codes`` weight-shared over its grid values and give it its
    :class:`GridCode` as attribute :data:`GRID_ATTRIBUTE`, in place."""
    rows = []
    for name, _names, module in layer_names(model):
        if name not in codes:
            continue
        code = codes[name]
        values = code.values()
        codebook, inverse = np.unique(values, return_inverse=True)
        keep = codebook != 0
        centroids = codebook[keep] if keep.any() else np.zeros(1, dtype=np.float32)
        renumber = np.where(keep, np.cumsum(keep) - 1, len(centroids))  # zero: the last level
        shape = tuple(cast(torch.Tensor, module.weight).shape)
        assignment = renumber[inverse].reshape(shape)
        width = max(1, math.ceil(math.log2(len(centroids))))
        rows.append(share_layer_(name, module, centroids, torch.from_numpy(assignment), width))
        setattr(module, GRID_ATTRIBUTE, code)
    return QuantizeReport(tuple(rows))
