"""Grid layers (docs/FORMAT.md section 4a), the decode side: every weight an integer level times
a step, with the level symbols' zigzag map and the trellis (dependent) quantizer's state machine.

The Viterbi search that picks levels is an encoder's business (``squeezenet.compress.trellis``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.formats.spec import MAX_GRID_BITS, QUANTIZER_DEPENDENT, QUANTIZER_UNIFORM

__all__ = [
    "DQ_NEXT",
    "MAX_GRID_BITS",
    "QUANTIZER_DEPENDENT",
    "QUANTIZER_UNIFORM",
    "GridCode",
    "dq_quantizers",
    "dq_quantizers_many",
    "grid_multiples",
    "grid_values",
    "unzigzag",
    "zigzag",
]

# Grid layers (docs/FORMAT.md section 4a): every weight an integer level k times a step.
DQ_NEXT = np.array([[0, 2], [2, 0], [1, 3], [3, 1]], dtype=np.int64)  # NEXT[state][k & 1]


def zigzag(levels: np.ndarray) -> np.ndarray:
    """Level symbols of signed levels: 0 -> 0, k > 0 -> 2k - 1, k < 0 -> -2k."""
    k = np.asarray(levels, dtype=np.int64)
    return np.where(k > 0, 2 * k - 1, -2 * k)


def unzigzag(symbols: np.ndarray) -> np.ndarray:
    """Signed levels of level symbols (the inverse of :func:`zigzag`)."""
    s = np.asarray(symbols, dtype=np.int64)
    return np.where(s & 1 == 1, (s + 1) // 2, -(s // 2))


def dq_quantizers(levels: np.ndarray, period_log2: int) -> np.ndarray:
    """The quantizer (0 or 1) of each weight of a dependent grid layer: the state machine of
    docs/FORMAT.md section 4a run over ``levels`` in flat order, restarting every
    ``2**period_log2`` weights."""
    return dq_quantizers_many([levels], [period_log2])[0]


def dq_quantizers_many(levels: list[np.ndarray], period_log2: list[int]) -> list[np.ndarray]:
    """:func:`dq_quantizers` of many layers: every state period of every layer side by side,
    one numpy step per index in a period (so decoding a file costs ``2**period`` steps)."""
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(levels)
    for r in sorted(set(period_log2)):
        members = [i for i, p in enumerate(period_log2) if p == r]
        period = 1 << r
        rows, sizes = [], []
        for i in members:
            k = np.asarray(levels[i], dtype=np.int64).reshape(-1)
            padded = np.zeros(-(-k.size // period) * period, dtype=np.int64)
            padded[: k.size] = np.abs(k) & 1
            rows.append(padded.reshape(-1, period))
            sizes.append(k.size)
        parity = np.concatenate(rows) if rows else np.zeros((0, period), dtype=np.int64)
        quantizer = np.empty(parity.shape, dtype=np.int64)
        state = np.zeros(len(parity), dtype=np.int64)
        for j in range(min(period, max(sizes, default=0))):
            quantizer[:, j] = state >> 1
            state = DQ_NEXT[state, parity[:, j]]
        first = 0
        for i, part, n in zip(members, rows, sizes, strict=True):
            out[i] = quantizer[first : first + len(part)].reshape(-1)[:n]
            first += len(part)
    return out


def grid_multiples(levels: np.ndarray, quantizer: int, quantizers: np.ndarray | None) -> np.ndarray:
    """m of each weight: ``k`` (uniform) or ``2k - sgn(k) q`` (dependent, ``quantizers`` q)."""
    k = np.asarray(levels, dtype=np.int64).reshape(-1)
    if quantizer == QUANTIZER_UNIFORM:
        return k
    assert quantizers is not None
    out: np.ndarray = 2 * k - np.sign(k) * quantizers
    return out


def grid_values(multiples: np.ndarray, step: float) -> np.ndarray:
    """float32 ``m * step``, the exact product rounded once (float64 holds it exactly).

    A product beyond the float32 range is +-inf, a valid weight (docs/FORMAT.md section 4a),
    so numpy's overflow warning is silenced rather than raised or shown.
    """
    exact = multiples.astype(np.float64) * float(np.float32(step))
    with np.errstate(over="ignore"):
        return exact.astype(np.float32)


@dataclass(frozen=True)
class GridCode:
    """How a grid layer stores its weights (docs/FORMAT.md section 4a)."""

    quantizer: int  # QUANTIZER_UNIFORM or QUANTIZER_DEPENDENT
    step: float  # a finite binary32 value > 0
    levels: np.ndarray  # int64 (numel,): the signed level of every weight, flat order
    period_log2: int = 12  # dependent: the state restarts every 2**period_log2 weights

    def values(self, quantizers: np.ndarray | None = None) -> np.ndarray:
        """float32 (numel,): the weights (``quantizers``: :func:`dq_quantizers`, if known)."""
        if self.quantizer == QUANTIZER_DEPENDENT and quantizers is None:
            quantizers = dq_quantizers(self.levels, self.period_log2)
        return grid_values(grid_multiples(self.levels, self.quantizer, quantizers), self.step)
