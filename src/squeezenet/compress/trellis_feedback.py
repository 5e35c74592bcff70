"""Error feedback inside the trellis search (GPTQ / Optimal Brain Compression).

A layer's weights are quantized row by row (one output channel's weights, in scan order); the
rounding error ``e`` of weight ``j`` moves the row's later weights by ``-e * U[j, j+1:] / U[j, j]``
where ``U`` is the upper Cholesky factor of the layer's damped inverse input Hessian, and costs
``(e / U[j, j])**2``: its share of the layer's output error once they have moved. The Viterbi
search of :mod:`squeezenet.compress.trellis` then carries the moves per survivor path: each of
the four states keeps what its own decisions did to the rest of the row, and each weight is
quantized as moved along the path that reaches it. Pruned weights stay zero (their forced error
is fed forward too). The feedback stops at the search's state restarts (every ``2**period_log2``
weights), where the lanes run side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from squeezenet.compress.trellis_lanes import INTO, Lanes, choices

if TYPE_CHECKING:
    from squeezenet.compress.trellis import TrellisLayer

# The rate-distortion weight of column j's error is (1 / U[j, j]^2) ** COST_POWER (the moves stay
# the full GPTQ update): 1 is the exact output error under the proxies' covariance; a lower
# power trusts the proxies' statistics less, as the activation weighting's square root did.
COST_POWER = 1.0


def feedback_factor(hessian: np.ndarray, damping: float) -> np.ndarray:
    """The upper Cholesky factor ``U`` (``U.T @ U`` = the inverse) of ``hessian`` + ``damping``
    x its mean diagonal: what ``TrellisLayer.feedback`` takes (GPTQ's formulation).

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
class Feedback:
    """Per lane position: its column in its row, the stacked feedback row it applies, whether a
    new row (or a lane) starts there; the signed weights in step units."""

    x: np.ndarray  # (rows, period) signed weight / step
    col: np.ndarray  # (rows, period) column j of the weight in its layer row (0: no feedback)
    fresh: np.ndarray  # (rows, period) bool: the feedback resets before this position
    index: np.ndarray  # (rows, period) row of ``moves`` (0: the zero row)
    moves: np.ndarray  # (1 + sum K, width) float32: U[j, :] / U[j, j], zero-padded

    @classmethod
    def of(cls, layers: Sequence[TrellisLayer], lanes: Lanes) -> Feedback:
        """The feedback of ``layers`` laid out like ``lanes``; also sets ``lanes.weight`` of each
        fed layer to its feedback cost (``importance`` does not apply to it)."""
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
                # the cost of column j's error: (1 / U[j, j]^2) ** COST_POWER, mean 1 over the
                # stored weights
                cost = (1.0 / diag**2) ** COST_POWER
                stored = values.reshape(len(values), k) != 0
                per = np.broadcast_to(cost, (len(values), k))
                norm = float(per[stored].mean()) if stored.any() else float(cost.mean())
                w = np.ones(nrows * period)
                w[:n] = (per / norm).reshape(-1) * layer.row_factors()
                lanes.weight[lane] = w.reshape(nrows, period) * layer.step**2
                offset += k
            first += nrows
        x = np.where(lanes.negative, -lanes.a, lanes.a)
        return cls(x, col, fresh, index, np.concatenate(moves))


def _state_choices(
    lanes: Lanes,
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
        found = choices(
            q, a[:, pair].reshape(-1), negative[:, pair].reshape(-1), zero2, weight2, lam2,
            layer2, rates,
        )  # fmt: skip
        for parity, (c, j) in found.items():
            c, j = c.reshape(rows, 2), j.reshape(rows, 2)
            for half in (0, 1):
                best[2 * q + half][parity] = (c[:, half], j[:, half])
    return best


def viterbi_fed(lanes: Lanes, feedback: Feedback, rates: np.ndarray) -> np.ndarray:
    """The lanes' Viterbi (:func:`squeezenet.compress.trellis_lanes.viterbi`) with error
    feedback: every survivor path carries the moves its rounding errors made to the rest of its
    row (per-survivor processing), and each weight is quantized as moved along the path that
    reaches it."""
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
        for ns, ways in enumerate(INTO):
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
