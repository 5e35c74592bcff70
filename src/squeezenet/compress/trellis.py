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
    # Error feedback (GPTQ / Optimal Brain Compression): the upper Cholesky factor ``U`` of the
    # layer's damped inverse input Hessian, (K, K) with K the weights per output channel (row
    # of ``values.reshape(len(values), -1)``). The rounding error ``e`` of column ``j`` moves the
    # row's later weights by ``-e * U[j, j+1:] / U[j, j]`` and costs ``(e / U[j, j])**2``, its
    # share of the layer's output error once they have moved (see :func:`feedback_factor`).
    feedback: np.ndarray | None = None


def step_for(rate_lambda: float) -> float:
    """The grid step that goes with ``rate_lambda`` (float32-exact)."""
    return float(np.float32(math.sqrt(max(rate_lambda, 1e-30) / STEP_LAMBDA)))


def trellis_many(
    layers: Sequence[TrellisLayer], *, period_log2: int = PERIOD_LOG2, passes: int = PASSES
) -> list[GridCode]:
    """Dependent-quantization levels of every layer, all state periods searched together."""
    lanes = _Lanes.of(layers, 1 << period_log2)
    feedback = _Feedback.of(layers, lanes) if any(x.feedback is not None for x in layers) else None
    rates = lanes.initial_rates()
    levels = np.zeros_like(lanes.a, dtype=np.int64)
    for _ in range(passes):
        levels = (
            _viterbi(lanes, rates) if feedback is None else _viterbi_fed(lanes, feedback, rates)
        )
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
    a, negative, zero = lanes.a[:, t], lanes.negative[:, t], lanes.zero[:, t]
    weight, lam, layer = lanes.weight[:, t], lanes.lam, lanes.layer
    out = {}
    for q in (0, 1):
        for parity, best in _choices(q, a, negative, zero, weight, lam, layer, rates).items():
            out[q, parity] = best
    return out


def _choices(
    q: int,
    a: np.ndarray,
    negative_: np.ndarray,
    zero: np.ndarray,
    weight: np.ndarray,
    lam: np.ndarray,
    layer: np.ndarray,
    rates: np.ndarray,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per level parity, the cheapest level index of quantizer ``q`` for magnitudes ``a`` (step
    units) with their signs, zero flags, error weights, lambdas and layers (all one per entry)."""
    negative = negative_.astype(np.int64)
    low = np.floor(a / 2) if q == 0 else np.maximum(np.floor((a + 1) / 2), 1)
    low = np.minimum(low.astype(np.int64), MAX_LEVEL - 1)
    choices = (np.zeros_like(low), low, low + 1)
    costs = []
    for j in choices:
        level = 2 * j - q * (j > 0)
        error = (a - level) ** 2 * weight
        symbol = np.where(j == 0, 0, 2 * j - 1 + negative)
        c = error + lam * rates[layer, symbol]
        costs.append(np.where(zero & (j > 0), np.inf, c))
    out = {}
    for parity in (0, 1):
        best_c = np.full(len(a), np.inf)
        best_j = np.zeros(len(a), dtype=np.int64)
        for j, c in zip(choices, costs, strict=True):
            take = ((j & 1) == parity) & (c < best_c)
            best_c = np.where(take, c, best_c)
            best_j = np.where(take, j, best_j)
        out[parity] = (best_c, best_j)
    return out


def feedback_factor(hessian: np.ndarray, damping: float) -> np.ndarray:
    """The upper Cholesky factor ``U`` (``U.T @ U`` = the inverse) of ``hessian`` + ``damping``
    x its mean diagonal: what :class:`TrellisLayer` ``feedback`` takes (GPTQ's formulation).

    ``hessian``: (K, K), the mean of ``x x^T`` over the layer's input vectors ``x`` (a
    convolution's im2col patches in (C, KH, KW) order: the weight's row order).
    """
    h = np.asarray(hessian, dtype=np.float64)
    k = len(h)
    diag = np.diag(h).copy()
    dead = diag <= 0  # inputs that never fire: their weights cost nothing, move nothing
    h = h.copy()
    h[dead, :] = 0.0
    h[:, dead] = 0.0
    mean = float(diag[~dead].mean()) if (~dead).any() else 1.0
    h[np.arange(k), np.arange(k)] += damping * mean + dead * mean
    inverse = np.linalg.inv(h)
    inverse = (inverse + inverse.T) / 2
    return np.linalg.cholesky(inverse).T  # numpy's factor is lower: L L^T; U = L^T


@dataclass
class _Feedback:
    """Per lane position: its column in its row, the stacked feedback row it applies, whether a
    new row (or a lane) starts there; the signed weights in step units."""

    x: np.ndarray  # (rows, period) signed weight / step
    col: np.ndarray  # (rows, period) column j of the weight in its layer row (0: no feedback)
    fresh: np.ndarray  # (rows, period) bool: the feedback resets before this position
    index: np.ndarray  # (rows, period) row of ``moves`` (0: the zero row)
    moves: np.ndarray  # (1 + sum K, width) float32: U[j, :] / U[j, j], zero-padded

    @classmethod
    def of(cls, layers: Sequence[TrellisLayer], lanes: _Lanes) -> _Feedback:
        rows, period = lanes.a.shape
        width = max(len(x.feedback) for x in layers if x.feedback is not None)
        col = np.zeros((rows, period), dtype=np.int64)
        fresh = np.ones((rows, period), dtype=bool)
        index = np.zeros((rows, period), dtype=np.int64)
        moves = [np.zeros((1, width), dtype=np.float32)]
        first, offset = 0, 1
        for layer, n, nrows in zip(layers, lanes.sizes, lanes.nrows, strict=True):
            u = layer.feedback
            if u is not None:
                if layer.importance is not None:
                    raise ValueError("TrellisLayer: feedback and importance exclude each other")
                k = len(u)
                values = np.asarray(layer.values)
                if u.shape != (k, k) or values.size != len(values) * k:
                    raise ValueError(
                        f"TrellisLayer: feedback {u.shape} does not fit {values.shape}"
                    )
                diag = np.diag(u).astype(np.float64)
                grid = np.zeros((k, width), dtype=np.float32)
                grid[:, :k] = u / diag[:, None]
                moves.append(grid)
                p = np.arange(nrows * period)
                j = np.where(p < n, p % k, 0)
                lane = slice(first, first + nrows)
                col[lane] = j.reshape(nrows, period)
                fresh[lane] = (j == 0).reshape(nrows, period)
                fresh[lane, 0] = True
                index[lane] = np.where(p < n, offset + j, 0).reshape(nrows, period)
                # the cost of column j's error: 1 / U[j, j]^2, mean 1 over the stored weights
                cost = 1.0 / diag**2
                stored = values.reshape(len(values), k) != 0
                per = np.broadcast_to(cost, (len(values), k))
                norm = float(per[stored].mean()) if stored.any() else float(cost.mean())
                w = np.ones(nrows * period)
                w[:n] = (per / norm).reshape(-1)
                lanes.weight[lane] = w.reshape(nrows, period) * layer.step**2
                offset += k
            first += nrows
        x = np.where(lanes.negative, -lanes.a, lanes.a)
        return cls(x, col, fresh, index, np.concatenate(moves))


def _state_choices(
    lanes: _Lanes,
    rates: np.ndarray,
    t: int,
    a: np.ndarray,
    negative: np.ndarray,
    lam2: np.ndarray,
    layer2: np.ndarray,
) -> dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per state, per level parity: the cheapest (cost, level index) of weight ``t`` as moved
    along that state's survivor (``a``, ``negative``: (rows, 4)), on the state's quantizer."""
    rows = len(a)
    zero2 = np.repeat(lanes.zero[:, t], 2)
    weight2 = np.repeat(lanes.weight[:, t], 2)
    best: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {0: {}, 1: {}, 2: {}, 3: {}}
    for q in (0, 1):
        pair = slice(2 * q, 2 * q + 2)
        found = _choices(
            q, a[:, pair].reshape(-1), negative[:, pair].reshape(-1), zero2, weight2, lam2,
            layer2, rates,
        )  # fmt: skip
        for parity, (c, j) in found.items():
            c, j = c.reshape(rows, 2), j.reshape(rows, 2)
            for half in (0, 1):
                best[2 * q + half][parity] = (c[:, half], j[:, half])
    return best


def _viterbi_fed(lanes: _Lanes, feedback: _Feedback, rates: np.ndarray) -> np.ndarray:
    """:func:`_viterbi` with error feedback: every survivor path carries the moves its rounding
    errors made to the rest of its row (per-survivor processing), and each weight is quantized
    as moved along the path that reaches it."""
    rows, period = lanes.a.shape
    width = feedback.moves.shape[1]
    cost = np.full((rows, 4), np.inf)
    cost[:, 0] = 0.0
    moved = np.zeros((rows, 4, width), dtype=np.float32)
    back_state = np.zeros((period, rows, 4), dtype=np.int8)
    back_level = np.zeros((period, rows, 4), dtype=np.int32)
    every = np.arange(rows)
    lam2 = np.repeat(lanes.lam, 2)
    layer2 = np.repeat(lanes.layer, 2)
    for t in range(period):
        reset = feedback.fresh[:, t]
        moved[reset] = 0.0
        target = feedback.x[:, t, None] + moved[every, :, feedback.col[:, t]]  # (rows, 4)
        a, negative = np.abs(target), target < 0
        best = _state_choices(lanes, rates, t, a, negative, lam2, layer2)
        new = np.empty((rows, 4))
        before = np.empty((rows, 4), dtype=np.int64)
        error = np.empty((rows, 4))
        for ns, ways in enumerate(_INTO):
            (s0, p0), (s1, p1) = ways
            c0 = cost[:, s0] + best[s0][p0][0]
            c1 = cost[:, s1] + best[s1][p1][0]
            second = c1 < c0
            new[:, ns] = np.where(second, c1, c0)
            s = np.where(second, s1, s0)
            j = np.where(second, best[s1][p1][1], best[s0][p0][1])
            q = s >> 1
            value = 2 * j - q * (j > 0)
            sign = np.where(negative[every, s], -1, 1)
            before[:, ns] = s
            error[:, ns] = target[every, s] - sign * value
            back_state[t, :, ns] = s
            back_level[t, :, ns] = sign * j
        cost = new
        step_moves = feedback.moves[feedback.index[:, t]]  # (rows, width)
        moved = (
            moved[every[:, None], before]
            - error[:, :, None].astype(np.float32) * step_moves[:, None, :]
        )
    state = cost.argmin(axis=1)
    levels = np.empty((rows, period), dtype=np.int64)
    for t in range(period - 1, -1, -1):
        levels[:, t] = back_level[t, every, state]
        state = back_state[t, every, state].astype(np.int64)
    return levels


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
