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

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import layer_names
from squeezenet.compress.weight_sharing import QuantizeReport, share_layer_, shareable_weight
from squeezenet.formats.grid import DQ_NEXT, MAX_GRID_BITS, QUANTIZER_DEPENDENT, GridCode, zigzag

STEP_LAMBDA = 0.3  # lambda / delta**2 (see the module docstring)
PERIOD_LOG2 = 12  # the state restarts every 4,096 weights
PASSES = 3  # Viterbi passes; each re-estimates the level rates from the last
MAX_LEVEL = (1 << (MAX_GRID_BITS - 1)) - 1  # |k| such that zigzag(k) < 2**15
GRID_ATTRIBUTE = "sqz_grid"  # where trellis_quantize_ leaves each layer's GridCode


@dataclass(frozen=True)
class TrellisLayer:
    """One layer for :func:`trellis_many`."""

    values: np.ndarray  # the weights, any shape (flat order is the scan order)
    step: float  # delta, > 0
    rate_lambda: float  # squared-error units per bit, >= 0
    # Per-weight cost of a unit of squared error (same shape as values); None: all 1.
    importance: np.ndarray | None = None


def step_for(rate_lambda: float) -> float:
    """The grid step that goes with ``rate_lambda`` (float32-exact)."""
    return float(np.float32(math.sqrt(max(rate_lambda, 1e-30) / STEP_LAMBDA)))


def trellis_many(
    layers: Sequence[TrellisLayer], *, period_log2: int = PERIOD_LOG2, passes: int = PASSES
) -> list[GridCode]:
    """Dependent-quantization levels of every layer, all state periods searched together."""
    lanes = _Lanes.of(layers, 1 << period_log2)
    rates = lanes.initial_rates()
    levels = np.zeros_like(lanes.a, dtype=np.int64)
    for _ in range(passes):
        levels = _viterbi(lanes, rates)
        rates = lanes.rates_of(levels)
    return [
        GridCode(QUANTIZER_DEPENDENT, float(np.float32(layer.step)), k, period_log2)
        for layer, k in zip(layers, lanes.split(levels), strict=True)
    ]


@dataclass
class _Lanes:
    """Every state period of every layer as a row (zero-padded to whole periods)."""

    a: np.ndarray  # (rows, period) |w| / delta
    negative: np.ndarray  # (rows, period) bool
    zero: np.ndarray  # (rows, period) bool: exact zeros (and padding), kept at level 0
    weight: np.ndarray  # (rows, period) squared-error weight of each position, times delta**2
    lam: np.ndarray  # (rows,) lambda
    layer: np.ndarray  # (rows,) layer index
    sizes: list[int]  # weights per layer
    nrows: list[int]  # rows per layer
    symbols: int  # level symbols any layer may use

    @classmethod
    def of(cls, layers: Sequence[TrellisLayer], period: int) -> _Lanes:
        parts, signs, zeros, weights, lam, owner, sizes, nrows = ([] for _ in range(8))
        for i, layer in enumerate(layers):
            x = np.asarray(layer.values, dtype=np.float64).reshape(-1)
            rows = max(1, -(-x.size // period))
            padded = np.zeros(rows * period)
            padded[: x.size] = x
            h = np.ones(rows * period)
            if layer.importance is not None:
                h[: x.size] = np.asarray(layer.importance, dtype=np.float64).reshape(-1)
            weights.append(h.reshape(rows, period) * layer.step**2)
            parts.append(np.abs(padded).reshape(rows, period) / layer.step)
            signs.append((padded < 0).reshape(rows, period))
            zeros.append((padded == 0).reshape(rows, period))
            lam.append(np.full(rows, layer.rate_lambda))
            owner.append(np.full(rows, i))
            sizes.append(x.size)
            nrows.append(rows)
        a = np.concatenate(parts)
        top = min(MAX_LEVEL, int(np.floor(a.max() / 2)) + 2 if a.size else 1)
        return cls(
            a,
            np.concatenate(signs),
            np.concatenate(zeros),
            np.concatenate(weights),
            np.concatenate(lam),
            np.concatenate(owner),
            sizes,
            nrows,
            2 * top + 1,
        )

    def initial_rates(self) -> np.ndarray:
        """Rates from rounding every weight to the nearest multiple of 2 delta."""
        k = np.minimum(np.rint(self.a / 2), MAX_LEVEL).astype(np.int64)
        return self.rates_of(np.where(self.negative, -k, k))

    def rates_of(self, levels: np.ndarray) -> np.ndarray:
        """(layers, symbols) bits of each level symbol: -log2 of its share in the layer (real
        weights only), an unseen symbol costing as much as half an occurrence."""
        symbols = zigzag(levels)
        rates = np.zeros((len(self.sizes), self.symbols))
        first = 0
        for i, (rows, n) in enumerate(zip(self.nrows, self.sizes, strict=True)):
            s = symbols[first : first + rows].reshape(-1)[:n]
            counts = np.bincount(s, minlength=self.symbols)[: self.symbols] + 0.5
            rates[i] = -np.log2(counts / counts.sum())
            first += rows
        return rates

    def split(self, levels: np.ndarray) -> list[np.ndarray]:
        out, first = [], 0
        for rows, n in zip(self.nrows, self.sizes, strict=True):
            out.append(levels[first : first + rows].reshape(-1)[:n].copy())
            first += rows
        return out


# For each next state: the (previous state, parity) pairs that lead to it (DQ_NEXT inverted).
_INTO = [[(s, p) for s in range(4) for p in range(2) if DQ_NEXT[s, p] == ns] for ns in range(4)]


def _viterbi(lanes: _Lanes, rates: np.ndarray) -> np.ndarray:
    rows, period = lanes.a.shape
    cost = np.full((rows, 4), np.inf)
    cost[:, 0] = 0.0
    back_state = np.zeros((period, rows, 4), dtype=np.int8)
    back_level = np.zeros((period, rows, 4), dtype=np.int32)
    for t in range(period):
        best = _candidates(lanes, rates, t)  # (quantizer, parity) -> (cost, |k|)
        new = np.empty((rows, 4))
        for ns, ways in enumerate(_INTO):
            (s0, p0), (s1, p1) = ways
            c0 = cost[:, s0] + best[s0 >> 1, p0][0]
            c1 = cost[:, s1] + best[s1 >> 1, p1][0]
            second = c1 < c0
            new[:, ns] = np.where(second, c1, c0)
            back_state[t, :, ns] = np.where(second, s1, s0)
            back_level[t, :, ns] = np.where(second, best[s1 >> 1, p1][1], best[s0 >> 1, p0][1])
        cost = new
    state = cost.argmin(axis=1)
    magnitude = np.empty((rows, period), dtype=np.int64)
    index = np.arange(rows)
    for t in range(period - 1, -1, -1):
        magnitude[:, t] = back_level[t, index, state]
        state = back_state[t, index, state].astype(np.int64)
    return np.where(lanes.negative, -magnitude, magnitude)


def _candidates(
    lanes: _Lanes, rates: np.ndarray, t: int
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Per quantizer and level parity, the cheapest level of weight ``t`` of every row: zero
    or one of the two nearest non-zero levels, by squared error plus lambda times bits."""
    a, negative, zero = lanes.a[:, t], lanes.negative[:, t].astype(np.int64), lanes.zero[:, t]
    weight = lanes.weight[:, t]
    out = {}
    for q in (0, 1):
        low = np.floor(a / 2) if q == 0 else np.maximum(np.floor((a + 1) / 2), 1)
        low = np.minimum(low.astype(np.int64), MAX_LEVEL - 1)
        choices = (np.zeros_like(low), low, low + 1)
        costs = []
        for j in choices:
            level = 2 * j - q * (j > 0)
            error = (a - level) ** 2 * weight
            symbol = np.where(j == 0, 0, 2 * j - 1 + negative)
            c = error + lanes.lam * rates[lanes.layer, symbol]
            costs.append(np.where(zero & (j > 0), np.inf, c))
        for parity in (0, 1):
            best_c = np.full(len(a), np.inf)
            best_j = np.zeros(len(a), dtype=np.int64)
            for j, c in zip(choices, costs, strict=True):
                take = ((j & 1) == parity) & (c < best_c)
                best_c = np.where(take, c, best_c)
                best_j = np.where(take, j, best_j)
            out[q, parity] = (best_c, best_j)
    return out


def trellis_quantize_(
    model: nn.Module,
    rate_lambda: float,
    *,
    scales: Mapping[str, float] | None = None,
    importance: Mapping[str, np.ndarray] | None = None,
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
        h = None if importance is None else importance.get(name)
        found.append((name, module, TrellisLayer(weight, step_for(lam), lam, h)))
    codes = trellis_many([layer for _, _, layer in found], period_log2=period_log2)
    rows = []
    for (name, module, layer), code in zip(found, codes, strict=True):
        values = code.values()
        codebook, inverse = np.unique(values, return_inverse=True)
        keep = codebook != 0
        centroids = codebook[keep] if keep.any() else np.zeros(1, dtype=np.float32)
        renumber = np.where(keep, np.cumsum(keep) - 1, len(centroids))  # zero: the last level
        assignment = renumber[inverse].reshape(np.shape(layer.values))
        width = max(1, math.ceil(math.log2(len(centroids))))
        rows.append(share_layer_(name, module, centroids, torch.from_numpy(assignment), width))
        setattr(module, GRID_ATTRIBUTE, code)
    return QuantizeReport(tuple(rows))
