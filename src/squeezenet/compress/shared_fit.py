"""Refit a weight-shared layer's centroids and bias to the teacher's outputs; the assignments
and the pruned zeros never change.

The layer's output ``W(c) x + b`` is linear in the centroids ``c`` and the bias ``b``, so the
squared error against the teacher's output over the proxy activations is a least-squares problem
of K + out unknowns, solved in closed form from the second moments of the layer's input patches
and damped towards the current values. The counterpart of :mod:`squeezenet.compress.grid_fit`
for codebook layers; :func:`squeezenet.compress.reconstruct.reconstruct_` runs both.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from squeezenet.compress.weight_sharing import centroids_of, weight_share_of

logger = logging.getLogger(__name__)


@dataclass
class SharedMoments:
    """Sums over all output positions r: phi phi^T, phi y^T and y^2, phi = [input patch, 1]."""

    phi: torch.Tensor  # (D + 1, D + 1) float64
    cross: torch.Tensor  # (D + 1, O) float64
    yy: torch.Tensor  # (O,) float64
    rows: int = 0


def accumulate_shared(
    moments: dict[str, SharedMoments],
    name: str,
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
) -> None:
    """Add one batch: ``x`` the layer's input, ``y`` the teacher's output for it."""
    if isinstance(module, nn.Conv2d):
        d = x.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        positions = y.shape[2] * y.shape[3]
    else:
        d, positions = x.shape[-1], 1
    chunk = max(1, (1 << 23) // ((d + 1) * positions))  # images per float64 block (~64 MB)
    for start in range(0, len(x), chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        if isinstance(module, nn.Conv2d):
            padding = cast(tuple[int, int], module.padding)  # not "same": reconstruct_ checks it
            cols = F.unfold(xs, module.kernel_size, module.dilation, padding, module.stride)
            patches = cols.transpose(1, 2).reshape(-1, d)  # (n * P, D), P output positions
            targets = ys.permute(0, 2, 3, 1).reshape(-1, ys.shape[1])  # (n * P, O)
        else:
            patches, targets = xs.reshape(-1, d), ys.reshape(-1, ys.shape[-1])
        phi = torch.cat([patches, patches.new_ones(len(patches), 1)], 1).double()
        targets = targets.double()
        if name not in moments:
            moments[name] = SharedMoments(
                phi.new_zeros(d + 1, d + 1), phi.new_zeros(d + 1, targets.shape[1]),
                phi.new_zeros(targets.shape[1]),
            )  # fmt: skip
        m = moments[name]
        m.phi += phi.T @ phi
        m.cross += phi.T @ targets
        m.yy += targets.square().sum(0)
        m.rows += len(phi)


def solve_shared_(
    name: str, module: nn.Module, m: SharedMoments, ridge: float, *, train_bias: bool
) -> tuple[float, float, float]:
    """Solve the damped normal equations of one layer and write its centroids (and, with
    ``train_bias``, its bias); a solution that is not better keeps the layer as it was.

    Returns:
        ``(error before, error after, sum of the teacher's squared outputs)``.
    """
    share = weight_share_of(module)
    assert share is not None
    centroids = centroids_of(module)
    bias = getattr(module, "bias", None)
    k = share.num_centroids
    assignment = cast(torch.Tensor, share.assignment)
    a = assignment.reshape(assignment.shape[0], -1)  # (O, D), values in [0, k]
    z0 = centroids.detach().double()
    if isinstance(bias, torch.Tensor):
        z0 = torch.cat([z0, bias.detach().double()])
    big_a, r = _normal_equations(a, k, m, with_bias=isinstance(bias, torch.Tensor))
    free = z0.numel() if train_bias else k
    # Unknowns z[:free]; the rest (the bias, when not trained) stay at z0.
    rhs = r[:free] - big_a[:free, free:] @ z0[free:]
    sub = big_a[:free, :free]
    damp = ridge * sub.diagonal() + 1e-12 * float(sub.diagonal().max().clamp_min(1e-290))
    z = z0.clone()
    z[:free] = torch.linalg.solve(sub + torch.diag(damp), rhs + damp * z0[:free])

    def loss(v: torch.Tensor) -> float:
        return float(v @ big_a @ v - 2 * v @ r + m.yy.sum())

    before, after = loss(z0), loss(z)
    if not (math.isfinite(after) and after <= before):  # only rounding can get here
        scale = max(float(m.yy.sum()), 1e-300)
        logger.debug("reconstruct_: %s kept (%.3g -> %.3g)", name, before / scale, after / scale)
        z, after = z0, before
    with torch.no_grad():
        centroids.copy_(z[:k].to(centroids.dtype))
        if isinstance(bias, torch.Tensor):
            bias.copy_(z[k:].to(bias.dtype))
    return before, after, float(m.yy.sum())


def _normal_equations(
    a: torch.Tensor, k: int, m: SharedMoments, *, with_bias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, r)`` with squared error = z^T A z - 2 z^T r + sum y^2, z = [centroids; bias].

    Row o of the weight reads ``c[a[o, d]]`` (``a == k``: pruned, reads 0), so
    ``A_cc[i, j] = sum_o sum_{d: a=i} sum_{e: a=j} S[d, e]`` with S the input second moments;
    it is accumulated by scatter-adding S once per output row (O * D^2 additions).
    """
    o, d = a.shape
    s, s1, count = m.phi[:d, :d], m.phi[:d, d], m.phi[d, d]
    width = k + 1  # bin k collects the pruned positions and is dropped
    acc = s.new_zeros(width * width)
    step = max(1, (1 << 23) // (d * d))
    for start in range(0, o, step):
        rows = a[start : start + step]  # (o', D)
        index = rows[:, :, None] * width + rows[:, None, :]  # (o', D, D)
        acc.index_add_(0, index.flatten(), s.expand(len(rows), d, d).flatten())
    a_cc = acc.view(width, width)[:k, :k]
    r_c = s.new_zeros(width).index_add_(0, a.flatten(), m.cross[:d].T.flatten())[:k]
    if not with_bias:
        return a_cc, r_c
    outputs = torch.arange(o, device=a.device)[:, None]
    a_cb = s.new_zeros(width * o).index_add_(0, (a * o + outputs).flatten(), s1.repeat(o))
    a_cb = a_cb.view(width, o)[:k]
    a_bb = torch.diag(count.expand(o))
    big_a = torch.cat([torch.cat([a_cc, a_cb], 1), torch.cat([a_cb.T, a_bb], 1)], 0)
    return big_a, torch.cat([r_c, m.cross[d]])
