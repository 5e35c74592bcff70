"""The trellis search's working form: every state period of every layer as a row (a lane),
searched side by side by a Viterbi over the four states of dependent quantization
(:mod:`squeezenet.compress.trellis` describes the quantizer and the cost it minimises)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from squeezenet.formats.grid import DQ_NEXT, MAX_GRID_BITS, zigzag

if TYPE_CHECKING:
    from squeezenet.compress.trellis import TrellisLayer

MAX_LEVEL = (1 << (MAX_GRID_BITS - 1)) - 1  # |k| such that zigzag(k) < 2**15


@dataclass
class Lanes:
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
    def of(cls, layers: Sequence[TrellisLayer], period: int) -> Lanes:
        parts, signs, zeros, weights, lam, owner, sizes, nrows = ([] for _ in range(8))
        for i, layer in enumerate(layers):
            x = np.asarray(layer.values, dtype=np.float64).reshape(-1)
            rows = max(1, -(-x.size // period))
            padded = np.zeros(rows * period)
            padded[: x.size] = x
            h = np.ones(rows * period)
            if layer.importance is not None:
                h[: x.size] = np.asarray(layer.importance, dtype=np.float64).reshape(-1)
            h[: x.size] *= layer.row_factors()
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
INTO = [[(s, p) for s in range(4) for p in range(2) if DQ_NEXT[s, p] == ns] for ns in range(4)]


def viterbi(lanes: Lanes, rates: np.ndarray) -> np.ndarray:
    rows, period = lanes.a.shape
    cost = np.full((rows, 4), np.inf)
    cost[:, 0] = 0.0
    back_state = np.zeros((period, rows, 4), dtype=np.int8)
    back_level = np.zeros((period, rows, 4), dtype=np.int32)
    for t in range(period):
        best = candidates(lanes, rates, t)  # (quantizer, parity) -> (cost, |k|)
        new = np.empty((rows, 4))
        for ns, ways in enumerate(INTO):
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


def candidates(
    lanes: Lanes, rates: np.ndarray, t: int
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """Per quantizer and level parity, the cheapest level of weight ``t`` of every row: zero
    or one of the two nearest non-zero levels, by squared error plus lambda times bits."""
    a, negative, zero = lanes.a[:, t], lanes.negative[:, t], lanes.zero[:, t]
    weight, lam, layer = lanes.weight[:, t], lanes.lam, lanes.layer
    out = {}
    for q in (0, 1):
        for parity, best in choices(q, a, negative, zero, weight, lam, layer, rates).items():
            out[q, parity] = best
    return out


def choices(
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
    # the largest level the rate table holds (error feedback can move a weight past the largest
    # one the lanes started with); top <= MAX_LEVEL
    top = (rates.shape[1] - 1) // 2
    low = np.minimum(low.astype(np.int64), top - 1)
    options = (np.zeros_like(low), low, low + 1)
    costs = []
    for j in options:
        level = 2 * j - q * (j > 0)
        error = (a - level) ** 2 * weight
        symbol = np.where(j == 0, 0, 2 * j - 1 + negative)
        c = error + lam * rates[layer, symbol]
        costs.append(np.where(zero & (j > 0), np.inf, c))
    out = {}
    for parity in (0, 1):
        best_c = np.full(len(a), np.inf)
        best_j = np.zeros(len(a), dtype=np.int64)
        for j, c in zip(options, costs, strict=True):
            take = ((j & 1) == parity) & (c < best_c)
            best_c = np.where(take, c, best_c)
            best_j = np.where(take, j, best_j)
        out[parity] = (best_c, best_j)
    return out
