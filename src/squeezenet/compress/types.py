"""The compressed model as plain data: where `compress` (makes it) meets `formats` (stores it).

Nothing here imports torch: the encoder never sees an ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from squeezenet.errors import ConfigError

# Codebook index width: codes are stored as uint16, so a codebook has at most 2**16 entries
# (Deep Compression Sec. 3; docs/FORMAT.md §4). The one definition; formats.spec imports it.
MAX_BITS = 16


def check_bits(value: object, what: str) -> int:
    """``value`` if it is an integer width in 1..MAX_BITS.

    Raises:
        ConfigError: otherwise; the message starts with ``what`` (e.g. ``"--bits"``).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BITS:
        raise ConfigError(f"{what}: expected an integer width in 1..{MAX_BITS}, got {value!r}")
    return value


# Grid layers (docs/FORMAT.md section 4a): every weight an integer level k times a step.
QUANTIZER_UNIFORM = 0  # w = k * step
QUANTIZER_DEPENDENT = 1  # two interleaved quantizers picked by a 4-state machine (trellis-coded)
DQ_NEXT = np.array([[0, 2], [2, 0], [1, 3], [3, 1]], dtype=np.int64)  # NEXT[state][k & 1]
MAX_GRID_BITS = 15  # level symbols < 2**15, so |m| <= 2**15 and a layer has < 2**16 values


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


@dataclass
class CompressedLayer:
    """One weight-shared, possibly pruned layer (Deep Compression Sec. 2-3).

    The dense weight is rebuilt as ``w = zeros(prod(shape)); w[positions] = codebook[codes];
    w.reshape(shape)``.
    """

    name: str  # state-dict prefix, e.g. "features.3.squeeze" (weight at name + ".weight")
    shape: tuple[int, ...]  # weight shape, OIHW for convolutions
    bits: int  # index width: the codebook has at most 2**bits entries (1..16)
    codebook: np.ndarray  # float32 (K,), K <= 2**bits: the shared values
    positions: np.ndarray  # int64 (n,), strictly increasing flat indices of the stored weights
    codes: np.ndarray  # uint16 (n,), codebook index of each stored weight, < K
    bias: np.ndarray | None = None  # float32 (out,), kept uncompressed, or None
    # Set when the weights lie on a grid (a uniform or trellis-coded quantizer): the encoder
    # then writes a grid record; codebook / positions / codes must describe the same weights.
    grid: GridCode | None = None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def density(self) -> float:
        return len(self.positions) / max(self.numel, 1)

    def dense_weight(self) -> np.ndarray:
        """The decoded float32 weight of ``shape``."""
        flat = np.zeros(self.numel, dtype=np.float32)
        flat[self.positions] = self.codebook[self.codes.astype(np.int64)]
        return flat.reshape(self.shape)


@dataclass
class CompressedModel:
    """Everything needed to rebuild a model: architecture, preprocessing, classes, layers."""

    model_name: str  # registry name, e.g. "squeezenet1_0"
    config: dict[str, Any]  # the model config's fields (JSON-able), e.g. {"final_conv_padding": 1}
    preprocess: dict[str, Any] | None = None  # squeezenet.data.presets.Preprocess.to_dict()
    class_names: list[str] | None = None  # one per output class, or None
    layers: list[CompressedLayer] = field(default_factory=list)
    # Parameters and buffers kept as plain float32 arrays (e.g. batch-norm statistics).
    dense: dict[str, np.ndarray] = field(default_factory=dict)
