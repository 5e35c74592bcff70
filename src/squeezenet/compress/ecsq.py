"""Entropy-constrained scalar quantization (ECSQ) of one layer's weights, pruning included.

k-means minimises distortion for a fixed number of levels, but an entropy-coded file pays for
bits, not levels. ECSQ (Chou, Lookabaugh and Gray 1989, the 1-D case of ECVQ) minimises

    D + lambda * R = sum_i (w_i - q(w_i))**2 + lambda * sum_i -log2 p(q(w_i))

over the levels and the assignment, where ``p`` is the share of weights on each level. Zero is a
level of its own, fixed at 0.0: sending a weight to it is pruning it, so how many weights a layer
keeps is a rate decision too (Deep Compression Sec. 2's threshold falls out of ``lambda``). The
joint alphabet {0, c_1..c_K} models what a ``.sqz`` layer costs: the positions stream codes the
zero / non-zero mask (about its entropy), the codes stream the levels of the kept weights.

The algorithm is Lloyd's with a rate term: for fixed levels and code lengths ``L_k``, each weight
goes to the level minimising ``(w - c_k)**2 + lambda * L_k``. In 1-D these costs are parabolas of
equal curvature, so the winners form intervals of the sorted weights, found from the lower
envelope of the lines ``-2 c_k w + c_k**2 + lambda L_k``; levels then move to their cluster means
(zero stays), and code lengths follow the new counts. Levels nobody picks drop out. Each
iteration costs O(K log n) with prefix sums, as in
:func:`squeezenet.compress.weight_sharing.kmeans1d`.

At ``lambda = 0`` with zeros kept fixed this is exactly k-means, with the same initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import layer_names
from squeezenet.compress.weight_sharing import (
    BitsSpec,
    Init,
    QuantizeReport,
    assign_intervals,
    bits_for,
    kmeans1d,
    share_layer_,
    shareable_weight,
)
from squeezenet.formats.model import check_bits

# Bits a codebook entry costs in a .sqz layer: a float32 value plus its Huffman code length
# (docs/FORMAT.md section 6, 5-bit lengths). A level is kept only if it saves more than that.
LEVEL_BITS = 32 + 5
MERGE_ROUNDS = 32  # rounds of (Lloyd to a fixed point, merge the levels not worth their entry)


@dataclass(frozen=True)
class EcsqResult:
    """One layer quantized by :func:`ecsq1d`."""

    codebook: np.ndarray  # (K,) float, ascending, non-zero levels actually used
    assignment: np.ndarray  # int64, the values' shape: 0..K-1 a level, K the zero level
    distortion: float  # sum of squared errors, zeros included
    rate_bits: float  # order-0 entropy of the joint alphabet times n, plus LEVEL_BITS per level
    iterations: int

    @property
    def kept(self) -> int:
        """Weights on a non-zero level (what the positions stream lists)."""
        return int(np.count_nonzero(self.assignment < len(self.codebook)))


def ecsq1d(
    values: np.ndarray,
    levels: int,
    rate_lambda: float,
    *,
    prune: bool = True,
    init: Init = "linear",
    iters: int = 100,
    seed: int = 0,
    level_bits: float = 0.0,
) -> EcsqResult:
    """Quantize ``values`` to at most ``levels`` non-zero levels plus zero, minimising D + λR.

    Args:
        values: one layer's weights, any shape; exact zeros are pruned weights and stay zero.
        levels: the most non-zero levels (2**bits).
        rate_lambda: squared-error units per bit, >= 0. 0 gives k-means of the non-zero values.
        prune: whether non-zero weights may move to zero (a rate decision). False keeps the
            zero / non-zero mask as it is, like
            :func:`~squeezenet.compress.weight_sharing.quantize_`.
        init: the k-means initialisation the levels start from (see ``kmeans1d``).
        iters: the most Lloyd iterations after the k-means start.
        seed: for ``init="random"``.
        level_bits: what one codebook entry costs in the file (e.g. :data:`LEVEL_BITS`); a
            level whose members would cost less than ``rate_lambda * level_bits`` more squared
            error on its neighbours is merged into them. 0 keeps every level Lloyd keeps.

    Returns:
        The levels, the assignment (zero level = ``len(codebook)``), distortion and rate.
    """
    if rate_lambda < 0 or not math.isfinite(rate_lambda):
        raise ValueError(f"ecsq1d: rate_lambda must be finite and >= 0, got {rate_lambda}")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    nonzero = x != 0
    start, _ = kmeans1d(x[nonzero], levels, init=init, iters=300, seed=seed)
    state = _State.start(x, nonzero, np.asarray(start, np.float64), prune)
    state.step(0.0)  # the k-means clusters: counts for the first code lengths
    steps = 1
    for _ in range(MERGE_ROUNDS):
        while steps < iters and state.step(rate_lambda):
            steps += 1
        if not (level_bits > 0 and state.merge_levels(rate_lambda, rate_lambda * level_bits)):
            break
        steps += 1
    codebook = state.levels
    assignment = state.assign(x, nonzero, rate_lambda)
    codebook, assignment = _drop_unused(codebook, assignment)
    distortion = float(np.square(x - np.append(codebook, 0.0)[assignment]).sum())
    rate = _rate_bits(assignment, len(codebook))
    out_dtype = np.asarray(values).dtype if np.asarray(values).dtype.kind == "f" else np.float64
    return EcsqResult(
        codebook.astype(out_dtype),
        assignment.reshape(np.shape(values)),
        distortion,
        rate,
        steps,
    )


def _drop_unused(codebook: np.ndarray, assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Levels no weight chose removed, the assignment renumbered (zero level = new K)."""
    k = codebook.size
    counts = np.bincount(assignment, minlength=k + 1)
    used = counts[:k] > 0
    if used.all():
        return codebook, assignment
    renumber = np.append(np.cumsum(used) - 1, int(used.sum()))
    renumber[:k][~used] = -1
    return codebook[used], renumber[assignment]


def _rate_bits(assignment: np.ndarray, k: int) -> float:
    counts = np.bincount(assignment.reshape(-1), minlength=k + 1).astype(np.float64)
    n = counts.sum()
    used = counts[counts > 0]
    return float(-(used * np.log2(used / n)).sum()) + LEVEL_BITS * k


@dataclass
class _State:
    """Sorted movable values with prefix sums, and the current levels (the zero level last)."""

    movable: np.ndarray  # sorted float64 values that may change level (the non-zero ones)
    prefix: np.ndarray  # prefix sums of movable
    prefix2: np.ndarray  # prefix sums of movable**2
    fixed_zeros: int  # exact zeros: always on the zero level
    levels: np.ndarray  # (K,) non-zero levels, ascending
    counts: np.ndarray  # (K + 1,) weights per level, zero level last
    prune: bool
    edges: np.ndarray | None = None  # the last assignment's cuts (the fixed point test)

    @classmethod
    def start(cls, x: np.ndarray, nonzero: np.ndarray, levels: np.ndarray, prune: bool) -> _State:
        movable = np.sort(x[nonzero])
        prefix = np.concatenate(([0.0], np.cumsum(movable)))
        prefix2 = np.concatenate(([0.0], np.cumsum(movable * movable)))
        zeros = int(x.size - movable.size)
        counts = np.append(np.ones(levels.size), zeros)  # only used at lambda = 0
        return cls(movable, prefix, prefix2, zeros, levels, counts, prune)

    def costs(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """Centres (levels, then zero) and their rate costs ``lam * -log2 p``."""
        centres = np.append(self.levels, 0.0)
        if lam == 0:
            bias = np.zeros(centres.size)
        else:
            n = self.counts.sum()
            with np.errstate(divide="ignore"):
                bias = lam * np.where(self.counts > 0, -np.log2(self.counts / n), np.inf)
        if not self.prune:  # the zero level only holds the fixed zeros
            bias[-1] = np.inf
        return centres, bias

    def intervals(self, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each level wins at ``lam``: ``(centres, bounds, winners)``, ``winners`` indexing
        ``centres`` (levels, then zero) and winning on ``(bounds[j - 1], bounds[j]]``."""
        centres, bias = self.costs(lam)
        order = np.argsort(centres, kind="stable")
        bounds, winners = _envelope(centres[order], bias[order])
        return centres, bounds, order[winners]

    def cuts(self, bounds: np.ndarray) -> np.ndarray:
        """Indices into the sorted values: interval j is ``movable[cuts[j]:cuts[j + 1]]``."""
        edges = np.searchsorted(self.movable, bounds, side="right")  # ties go to the lower level
        return np.concatenate(([0], edges, [self.movable.size]))

    def step(self, lam: float) -> bool:
        """One assignment and update of levels and counts; False at a fixed point."""
        centres, bounds, winners = self.intervals(lam)
        cuts = self.cuts(bounds)
        if self.edges is not None and np.array_equal(cuts, self.edges):
            return False
        self.edges = cuts
        counts = np.zeros(centres.size)
        sums = np.zeros(centres.size)
        np.add.at(counts, winners, np.diff(cuts))
        np.add.at(sums, winners, self.prefix[cuts[1:]] - self.prefix[cuts[:-1]])
        counts[-1] += self.fixed_zeros
        used = counts[:-1] > 0
        means = sums[:-1][used] / counts[:-1][used]
        rank = np.argsort(means, kind="stable")
        self.levels = means[rank]
        self.counts = np.append(counts[:-1][used][rank], counts[-1])
        return True

    def merge_levels(self, lam: float, entry_cost: float) -> bool:
        """Drop the non-zero levels whose members cost less than ``entry_cost`` more squared
        error on their neighbouring levels (non-adjacent ones, cheapest first); False if none.
        """
        centres, bounds, winners = self.intervals(lam)
        if len(winners) < 2:
            return False
        cuts = self.cuts(bounds)
        zero = centres.size - 1
        extra = []
        for j, level in enumerate(winners.tolist()):
            if level == zero:
                continue
            left = float(centres[winners[j - 1]]) if j > 0 else None
            right = float(centres[winners[j + 1]]) if j + 1 < len(winners) else None
            cost = self._merge_cost(cuts[j], cuts[j + 1], float(centres[level]), left, right)
            extra.append((cost, j, level))
        dropped: set[int] = set()
        taken: set[int] = set()
        for cost, j, level in sorted(extra):
            if cost >= entry_cost:
                break
            if j - 1 in taken or j + 1 in taken:
                continue
            taken.add(j)
            dropped.add(level)
        if not dropped:
            return False
        keep = np.array([k not in dropped for k in range(self.levels.size)])
        self.levels = self.levels[keep]
        self.counts = np.append(self.counts[:-1][keep], self.counts[-1])
        self.edges = None
        return True

    def _merge_cost(
        self, lo: int, hi: int, centre: float, left: float | None, right: float | None
    ) -> float:
        """Extra squared error of moving sorted values [lo, hi) from ``centre`` to the nearer
        of ``left`` / ``right`` (either may be missing)."""
        if hi <= lo:
            return 0.0
        if left is None and right is None:
            return math.inf
        split = hi
        if left is not None and right is not None:
            split = lo + int(np.searchsorted(self.movable[lo:hi], (left + right) / 2, "right"))
        elif left is None:
            split = lo

        def sse(a: int, b: int, c: float) -> float:
            n, s1, s2 = b - a, self.prefix[b] - self.prefix[a], self.prefix2[b] - self.prefix2[a]
            return float(s2 - 2 * c * s1 + n * c * c)

        new = (sse(lo, split, left) if left is not None and split > lo else 0.0) + (
            sse(split, hi, right) if right is not None and hi > split else 0.0
        )
        return new - sse(lo, hi, centre)

    def assign(self, x: np.ndarray, nonzero: np.ndarray, lam: float) -> np.ndarray:
        """The assignment of ``x`` in its own order to the current levels (zero level = K)."""
        k = self.levels.size
        assignment = np.full(x.size, k, dtype=np.int64)
        if k == 0 or not nonzero.any():
            return assignment
        _, bounds, winners = self.intervals(lam)
        values = x[nonzero]
        interval = assign_intervals(values, bounds, float(values.min()), float(values.max()))
        assignment[nonzero] = winners[interval]
        return assignment


def _envelope(centres: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each level wins ``min_k (w - c_k)**2 + bias_k`` over w, for ascending ``centres``.

    Returns ``(bounds, winners)``: level ``winners[j]`` (an index into ``centres``) wins on
    ``(bounds[j - 1], bounds[j]]``; ``len(bounds) == len(winners) - 1``. Levels with an infinite
    bias, and dominated ones, never win.
    """
    # Costs are w**2 + line_k(w) with line_k(w) = -2 c_k w + c_k**2 + bias_k: the lower envelope
    # of lines whose slopes fall as c_k rises (the convex hull trick).
    hull: list[int] = []
    starts: list[float] = []  # where hull[j] starts winning
    for k in range(centres.size):
        if not math.isfinite(bias[k]):
            continue
        if hull and centres[k] == centres[hull[-1]]:
            if bias[k] >= bias[hull[-1]]:
                continue
            hull.pop()
            starts.pop()
        while hull:
            at = _crossing(centres, bias, hull[-1], k)
            if at <= starts[-1]:
                hull.pop()
                starts.pop()
            else:
                break
        starts.append(-math.inf if not hull else _crossing(centres, bias, hull[-1], k))
        hull.append(k)
    return np.asarray(starts[1:], dtype=np.float64), np.asarray(hull, dtype=np.int64)


def _crossing(centres: np.ndarray, bias: np.ndarray, a: int, b: int) -> float:
    """The w where level b (higher centre) starts to beat level a."""
    ca, cb = float(centres[a]), float(centres[b])
    return (cb * cb - ca * ca + float(bias[b]) - float(bias[a])) / (2.0 * (cb - ca))


def ecsq_quantize_(
    model: nn.Module,
    rate_lambda: float,
    *,
    bits: BitsSpec = 8,
    scales: Mapping[str, float] | None = None,
    prune: bool = True,
    iters: int = 100,
    level_bits: float = LEVEL_BITS,
) -> QuantizeReport:
    """Share every matched layer's weights in place with :func:`ecsq1d` (pruning included).

    Args:
        model: any module with conv / linear layers, plain or pruned.
        rate_lambda: the global trade-off, in distortion units per bit.
        bits: the largest index width per layer, as for
            :func:`~squeezenet.compress.weight_sharing.quantize_` (unmatched layers stay float).
        scales: per layer prefix, how much a unit of squared weight error costs there (e.g.
            proxy KL per unit error); a layer's own lambda is ``rate_lambda / scale``, so
            sensitive layers get finer levels. Missing layers count 1.
        prune: whether weights may move to zero (False keeps every layer's zero mask).
        iters: the most Lloyd iterations per layer.
        level_bits: what a codebook entry costs (see :func:`ecsq1d`); 0 keeps every level.
    """
    rows = []
    for name, names, module in layer_names(model):
        width = bits_for(bits, name, names, module)
        if width is None:
            continue
        width = check_bits(width, f"ecsq_quantize_: bits for {name}")
        scale = 1.0 if scales is None else float(scales.get(name, 1.0))
        if not scale > 0:
            raise ValueError(f"ecsq_quantize_: scale of {name} must be > 0, got {scale}")
        weight = shareable_weight(name, module)
        values = weight.cpu().numpy()
        result = ecsq1d(
            values, 2**width, rate_lambda / scale, prune=prune, iters=iters, level_bits=level_bits
        )
        assignment = torch.from_numpy(result.assignment).to(weight.device)
        rows.append(share_layer_(name, module, result.codebook, assignment, width))
    return QuantizeReport(tuple(rows))
