"""Trained quantization by weight sharing: 1-D k-means per layer (Deep Compression Sec. 3).

:func:`kmeans1d` clusters a layer's non-zero weights; :func:`quantize_` then makes each layer's
``weight`` a function ``weight = [centroids, 0][assignment]`` through
:mod:`torch.nn.utils.parametrize`. The centroids are the layer's only trainable weight tensor
(``parametrizations.weight.original``, shape ``(K,)``) and the integer assignment is a fixed
buffer, so autograd gives every centroid the sum of its members' gradients (Sec. 3.3) and a
plain training loop fine-tunes centroids and biases only; pruned positions index the appended
zero and stay exactly zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.prune import (
    layer_names,
    prune_mask_of,
    register_mask_,
    weight_layers,
    weight_parametrizations,
)
from squeezenet.errors import InputError
from squeezenet.formats.model import check_bits

logger = logging.getLogger(__name__)

Init = Literal["linear", "density", "random"]
INITS: tuple[str, ...] = ("linear", "density", "random")
BitsSpec = int | Mapping[str, int] | Callable[[str, nn.Module], int | None]


def kmeans1d(
    values: np.ndarray | Sequence[float],
    k: int,
    *,
    init: Init = "linear",
    iters: int = 300,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Lloyd iterations on 1-D data, using sorted values and prefix sums.

    In 1-D every cluster is a run of the sorted values: the boundaries are the midpoints between
    neighbouring (sorted) centroids, located with ``searchsorted``, and each cluster mean comes
    from two prefix sums, so an iteration costs O(k log n) after one O(n log n) sort. A value on
    a midpoint goes to the lower cluster (the first nearest centroid). Iteration stops at a fixed
    point (no boundary moved) or after ``iters`` updates. An empty cluster keeps its centroid.

    Args:
        values: the data, any shape (flattened); float32 stays float32 in the result.
        k: number of clusters, >= 1.
        init: ``"linear"``: k centroids evenly spaced between min and max (Deep Compression Sec.
            3.2, the paper's choice: large weights keep their own centroids); ``"density"``:
            the (i + 0.5) / k quantiles of the data; ``"random"``: k distinct data values.
        iters: maximum number of centroid updates.
        seed: seeds ``init="random"``.

    Returns:
        ``(centroids, assignment)``: centroids ``(K,)`` sorted ascending, K = k, or K = the
        number of distinct values when that is <= k (then the centroids are exactly those values
        and the clustering is lossless); assignment int64 of ``values``' shape, in ``[0, K)``.
    """
    x = np.asarray(values)
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    flat = x.reshape(-1)
    _check_kmeans_args(k, init, iters)
    if flat.size == 0:
        return np.zeros(0, out_dtype), np.zeros(x.shape, np.int64)
    if not np.isfinite(flat).all():
        raise ValueError("kmeans1d: values must be finite (found NaN or inf)")
    if flat.dtype not in (np.float32, np.float64):
        flat = flat.astype(np.float64)
    native = np.sort(flat)  # float32 data sorts and searches faster in float32
    s = native.astype(np.float64)
    first = _run_starts(s)
    if np.count_nonzero(first) <= k:  # lossless: every distinct value is its own centroid
        unique = s[first]
        codes = assign_intervals(flat, unique[:-1], s[0], s[-1]).reshape(x.shape)
        return unique.astype(out_dtype), codes
    centroids = _init(s, first, k, init, seed)
    centroids = _lloyd(native, s, centroids, iters)
    bounds = (centroids[:-1] + centroids[1:]) / 2
    assignment = assign_intervals(flat, bounds, s[0], s[-1]).reshape(x.shape)
    return centroids.astype(out_dtype), assignment


def _check_kmeans_args(k: object, init: object, iters: int) -> None:
    """A caller's arguments (``quantize_`` passes checked ones, so these are bugs)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"kmeans1d: k must be an integer >= 1, got {k!r}")
    if init not in INITS:
        raise ValueError(f"kmeans1d: init must be one of {', '.join(INITS)}, got {init!r}")
    if iters < 0:
        raise ValueError(f"kmeans1d: iters must be >= 0, got {iters}")


def _run_starts(s: np.ndarray) -> np.ndarray:
    """bool ``(n,)``: True where sorted ``s`` starts a run of equal values (a distinct value)."""
    first = np.empty(s.size, dtype=bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    return first


def _init(s: np.ndarray, first: np.ndarray, k: int, init: Init, seed: int) -> np.ndarray:
    if init == "linear":
        return np.linspace(s[0], s[-1], k)
    if init == "density":
        return s[((np.arange(k) + 0.5) / k * s.size).astype(np.int64)]
    unique = s[first]
    rng = np.random.default_rng(seed)
    return np.sort(unique[rng.choice(unique.size, size=k, replace=False)])


def _lloyd(native: np.ndarray, s: np.ndarray, c: np.ndarray, iters: int) -> np.ndarray:
    """Lloyd updates of the sorted centroids ``c`` on the sorted data (``s`` = float64 copy)."""
    n = s.size
    prefix = np.concatenate(([0.0], np.cumsum(s)))  # prefix[i] = s[:i].sum()
    edges = np.empty(c.size + 1, dtype=np.int64)  # cluster j is s[edges[j]:edges[j + 1]]
    edges[0], edges[-1] = 0, n
    for step in range(iters):
        bounds = _round_down((c[:-1] + c[1:]) / 2, native.dtype)  # x <= b exact in x's dtype
        split = np.searchsorted(native, bounds, side="right")  # (k - 1,): #values <= bound
        if step > 0 and np.array_equal(split, edges[1:-1]):
            break  # fixed point: no boundary moved
        edges[1:-1] = split
        counts = np.diff(edges)
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        c.sort()  # a no-op up to rounding: cluster means stay ordered
    return c


def assign_intervals(x: np.ndarray, bounds: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``searchsorted(bounds, x, side="left")`` (the number of bounds below each value), fast.

    A binary search of n unsorted values is slow (cache misses). Instead [lo, hi] is cut into
    cells; a cell (widened by a quarter on each side against rounding) that holds no bound
    gives its cluster directly, one that holds a single bound needs one comparison, and the
    rare values in cells with several bounds are searched exactly.

    Args:
        x: float32 or float64 values in [lo, hi], 1-D.
        bounds: sorted float64 bounds, (m,).
    """
    if bounds.size == 0 or hi <= lo:
        return np.asarray(np.searchsorted(bounds, x.astype(np.float64), side="left"), np.int64)
    cells = min(max(1024, 8 * bounds.size), 1 << 16)
    width = (hi - lo) / cells
    left = lo + np.arange(cells) * width
    first = np.searchsorted(bounds, left - width / 4, side="left")  # (cells,) cluster at left
    last = np.searchsorted(bounds, left + width * 1.25, side="left")
    single = last - first == 1
    threshold = np.full(cells, np.inf)
    threshold[single] = bounds[first[single]]
    threshold = _round_down(threshold, x.dtype)  # x > t in x's dtype iff x > t in float64
    kind = x.dtype.type
    cell = ((x - kind(lo)) * kind(1 / width)).astype(np.int32)  # x >= lo, so cell >= 0
    np.minimum(cell, cells - 1, out=cell)
    out: np.ndarray = first[cell].astype(np.int64)
    out += x > threshold[cell]
    several = last - first >= 2
    if several.any():
        idx = np.flatnonzero(several[cell])
        out[idx] = np.searchsorted(bounds, x[idx].astype(np.float64), side="left")
    return out


def _round_down(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """``values`` (float64) in ``dtype``, rounded toward -inf so that comparisons stay exact."""
    out: np.ndarray = values.astype(dtype)
    up = out.astype(np.float64) > values
    out[up] = np.nextafter(out[up], dtype.type(-np.inf))
    return out


class WeightShare(nn.Module):
    """Parametrization ``weight = cat(centroids, [0])[assignment]`` (Deep Compression Sec. 3).

    ``original`` (the tensor this parametrization receives) is the ``(K,)`` centroid vector;
    ``assignment`` is a fixed int64 buffer of the weight's shape with values in ``[0, K]``,
    where ``K`` marks a position that stores nothing (pruned or zero): it reads the appended 0.
    """

    def __init__(self, assignment: torch.Tensor, num_centroids: int, bits: int, pruned: bool):
        super().__init__()
        self.register_buffer("assignment", assignment)
        self.num_centroids = num_centroids  # K
        self.bits = bits  # index width: K <= 2**bits
        self.pruned = pruned  # whether the zeros came from a prune mask (kept by remove_...)

    def forward(self, centroids: torch.Tensor) -> torch.Tensor:
        table = torch.cat((centroids, centroids.new_zeros(1)))  # (K + 1,)
        return table[cast(torch.Tensor, self.assignment)]

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """Least-squares centroids for the fixed assignment: each cluster's mean (0 if empty)."""
        index = cast(torch.Tensor, self.assignment).flatten()
        sums = weight.new_zeros(self.num_centroids + 1).index_add_(0, index, weight.flatten())
        counts = torch.bincount(index, minlength=self.num_centroids + 1).to(weight.dtype)
        return (sums / counts.clamp(min=1))[: self.num_centroids]

    @property
    def mask(self) -> torch.Tensor:
        """Positions that store a weight (bool, weight-shaped)."""
        return cast(torch.Tensor, self.assignment) < self.num_centroids

    @property
    def prune_mask(self) -> torch.Tensor | None:
        return self.mask if self.pruned else None


@dataclass(frozen=True)
class LayerQuantization:
    """One row of a :class:`QuantizeReport`."""

    name: str  # state-dict prefix of the layer
    bits: int  # index width
    clusters: int  # codebook size K (<= 2**bits; fewer when the layer had few distinct values)
    stored: int  # weights that hold a code (the non-zero / unpruned ones)
    rmse: float  # root-mean-square change of the stored weights caused by sharing


@dataclass(frozen=True)
class QuantizeReport:
    """Per-layer result of :func:`quantize_` (only the layers that were quantized)."""

    layers: tuple[LayerQuantization, ...]

    def by_name(self) -> dict[str, LayerQuantization]:
        return {layer.name: layer for layer in self.layers}


def weight_share_of(module: nn.Module) -> WeightShare | None:
    """The :class:`WeightShare` parametrization of ``module.weight``, if any."""
    found = [p for p in weight_parametrizations(module) if isinstance(p, WeightShare)]
    return found[0] if found else None


def centroids_of(module: nn.Module) -> nn.Parameter:
    """The ``(K,)`` centroid parameter of a weight-shared layer."""
    plist = cast(nn.ModuleDict, module.parametrizations)["weight"]
    return cast(nn.Parameter, plist.original)


def bits_for(bits: BitsSpec, name: str, names: tuple[str, ...], module: nn.Module) -> int | None:
    if isinstance(bits, Mapping):
        for pattern, value in bits.items():
            if any(fnmatchcase(n, pattern) for n in names):
                return value
        return None
    if callable(bits):
        return bits(name, module)
    return bits


def quantize_(
    model: nn.Module,
    bits: BitsSpec = 8,
    *,
    init: Init = "linear",
    layers: Sequence[str] | None = None,
    iters: int = 300,
    seed: int = 0,
) -> QuantizeReport:
    """Share weights in place: per layer, k-means (k = 2**bits) over its non-zero weights.

    Works on plain and on pruned layers (the prune mask is folded into the assignment, so pruned
    weights stay zero and are not a cluster). Layers already weight-shared are an error.

    Args:
        model: any module with conv/linear layers.
        bits: one width for every layer; or ``{fnmatch pattern: bits}`` (first match wins,
            patterns match state-dict prefixes or Table 1 names like ``fire2.expand3x3``); or
            ``f(name, module) -> bits | None``. Unmatched layers (None) stay float.
        init: k-means initialisation, see :func:`kmeans1d` (the paper uses ``"linear"``).
        layers: optional fnmatch patterns restricting which layers are considered.
        iters: maximum Lloyd iterations per layer.
        seed: for ``init="random"``.
    """
    rows = []
    for name, names, module in layer_names(model):
        if layers is not None and not any(fnmatchcase(n, p) for n in names for p in layers):
            continue
        width = bits_for(bits, name, names, module)
        if width is None:
            continue
        width = check_bits(width, f"quantize_: bits for {name}")
        rows.append(_quantize_layer(name, module, width, init, iters, seed))
    if not rows:
        logger.warning("quantize_: no layer of %s matched %r", type(model).__name__, bits)
    return QuantizeReport(tuple(rows))


def _quantize_layer(
    name: str, module: nn.Module, bits: int, init: Init, iters: int, seed: int
) -> LayerQuantization:
    weight = shareable_weight(name, module)
    prune = prune_mask_of(module)
    keep = prune.prune_mask if prune is not None else weight != 0
    values = weight[keep].cpu().numpy()
    centroids, codes = kmeans1d(values, 2**bits, init=init, iters=iters, seed=seed)
    k = centroids.size
    assignment = torch.full(weight.shape, k, dtype=torch.int64, device=weight.device)
    assignment[keep] = torch.from_numpy(codes).to(weight.device)
    return share_layer_(name, module, centroids, assignment, bits)


def shareable_weight(name: str, module: nn.Module) -> torch.Tensor:
    """``module``'s (detached) weight, checked: not shared yet, every value finite.

    Raises:
        ValueError: already weight-shared (a caller's bug).
        InputError: NaN or inf in the weights (a damaged file or a diverged training).
    """
    if weight_share_of(module) is not None:
        raise ValueError(f"{name} is already weight-shared; call remove_quantization_ first")
    weight = cast(torch.Tensor, module.weight).detach()
    if not torch.isfinite(weight).all():
        raise InputError(
            f"{name}: the weights hold NaN or inf, which cannot be clustered; the model file is "
            "damaged or its training diverged"
        )
    return weight


def share_layer_(
    name: str, module: nn.Module, centroids: np.ndarray, assignment: torch.Tensor, bits: int
) -> LayerQuantization:
    """Make ``module.weight`` shared: ``weight = cat(centroids, [0])[assignment]``, in place.

    Args:
        name: the layer's state-dict prefix (for the report).
        module: a conv / linear layer, plain or pruned (a prune mask is folded in: the result
            is marked pruned, so :func:`remove_quantization_` keeps its zeros as a mask).
        centroids: ``(K,)`` the shared values, ascending.
        assignment: int64 of the weight's shape, in ``[0, K]``; ``K`` is a zero (absent) weight.
        bits: the index width recorded for export, ``K <= 2**bits``.
    """
    weight = cast(torch.Tensor, module.weight).detach().clone()
    prune = prune_mask_of(module)
    k = centroids.size
    if prune is not None:
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    share = WeightShare(assignment, k, bits, pruned=prune is not None)
    parametrize.register_parametrization(module, "weight", share, unsafe=True)
    original = centroids_of(module)
    with torch.no_grad():
        original.copy_(torch.from_numpy(np.asarray(centroids)).to(original))
    keep = assignment < k
    error = (cast(torch.Tensor, module.weight).detach()[keep] - weight[keep]).double()
    rmse = float(error.square().mean().sqrt()) if error.numel() else 0.0
    return LayerQuantization(name, bits, k, int(keep.sum()), rmse)


def centroid_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The ``(K,)`` centroid parameters of every weight-shared layer, by layer prefix.

    Pass ``centroid_parameters(model).values()`` to an optimiser to fine-tune only them.
    """
    out: dict[str, nn.Parameter] = {}
    for name, module in weight_layers(model):
        if weight_share_of(module) is not None:
            out[name] = centroids_of(module)
    return out


def remove_quantization_(model: nn.Module, *, keep_pruning: bool = True) -> QuantizeReport:
    """Bake the shared weights in as plain parameters (state-dict keys become the plain ones).

    Args:
        keep_pruning: re-attach the prune masks of layers that were pruned before sharing, so
            further training still keeps their zeros (call ``remove_pruning_`` to drop them).
    """
    rows = []
    for name, module in weight_layers(model):
        share = weight_share_of(module)
        if share is None:
            continue
        if len(weight_parametrizations(module)) != 1:
            raise ValueError(f"{name} has parametrizations besides weight sharing; remove them")
        mask = share.mask
        rows.append(LayerQuantization(name, share.bits, share.num_centroids, int(mask.sum()), 0.0))
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        if keep_pruning and share.pruned:
            register_mask_(module, mask)
    return QuantizeReport(tuple(rows))
