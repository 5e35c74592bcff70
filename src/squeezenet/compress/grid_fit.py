"""Refit a grid layer's step and bias to the teacher's outputs; the levels never change.

A trellis-coded layer (:mod:`squeezenet.compress.trellis`) stores integer levels and one step, so
its weights are ``m * step``. Rate-distortion quantization shrinks weights towards zero (a
smaller level is cheaper), which scales the layer's output down; and the quantization error
shifts its mean. Both are undone for free: the step is stored anyway, and the biases are stored
per output channel. For fixed levels the layer's output ``s * (W0 x) + b`` is linear in the
scale ``s`` of the step and the bias ``b``, so ``sum ||s * W0 x_s + b - y_t||^2`` over the proxy
activations is a least-squares problem of ``1 + out`` unknowns, solved in closed form (bias and
scale correction, as in Nagel et al. 2019 and NNCodec's per-layer scaling, done layer by layer
on the student's own inputs so upstream error is compensated). The file size is unchanged: the
layer keeps its grid, with the new step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from squeezenet.compress.trellis import GRID_ATTRIBUTE
from squeezenet.compress.weight_sharing import centroids_of, weight_share_of
from squeezenet.formats.grid import GridCode


def grid_of(module: nn.Module) -> GridCode | None:
    """The layer's :class:`GridCode` (set by ``trellis_quantize_``), or None."""
    grid = getattr(module, GRID_ATTRIBUTE, None)
    return grid if isinstance(grid, GridCode) else None


@dataclass
class GridMoments:
    """Sums over all output positions r of one layer: y0 = W0 x (no bias), y = teacher output."""

    y0y0: float = 0.0  # sum y0^2 over positions and channels
    y0y: float = 0.0  # sum y0 * y
    y0: torch.Tensor | None = None  # (O,) float64: sum over positions of y0
    y: torch.Tensor | None = None  # (O,) float64: sum of y
    yy: torch.Tensor | None = None  # (O,) float64: sum of y^2
    rows: int = 0  # output positions seen (per channel)


def accumulate_grid(
    moments: dict[str, GridMoments], name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> None:
    """Add one batch: ``x`` the student layer's input, ``y`` the teacher layer's output."""
    weight = cast(torch.Tensor, module.weight)
    if isinstance(module, nn.Conv2d):
        y0 = F.conv2d(x, weight, None, module.stride, module.padding, module.dilation)
        y0, yt = y0.transpose(0, 1).flatten(1), y.transpose(0, 1).flatten(1)  # (O, n * P)
    else:
        y0, yt = F.linear(x, weight).reshape(-1, weight.shape[0]).T, y.reshape(-1, y.shape[-1]).T
    y0, yt = y0.double(), yt.double()
    m = moments.setdefault(name, GridMoments())
    m.y0y0 += float(y0.square().sum())
    m.y0y += float((y0 * yt).sum())
    for field, value in (("y0", y0.sum(1)), ("y", yt.sum(1)), ("yy", yt.square().sum(1))):
        current = getattr(m, field)
        setattr(m, field, value if current is None else current + value)
    m.rows += y0.shape[1]


def solve_grid_(module: nn.Module, m: GridMoments, ridge: float) -> tuple[float, float, float]:
    """Set the step scale and bias that minimise the squared output error; the layer keeps its
    grid (the step is rounded to binary32 and every weight rewritten as ``m * step``).

    Returns:
        ``(error before, error after, sum of the teacher's squared outputs)``.
    """
    grid = grid_of(module)
    share = weight_share_of(module)
    if grid is None or share is None or m.y0 is None or m.y is None or m.yy is None:
        raise ValueError("solve_grid_: the layer has no grid code or no activations were seen")
    bias = cast(torch.Tensor | None, getattr(module, "bias", None))
    b0 = bias.detach().double() if bias is not None else torch.zeros_like(m.y)
    # Unknowns u = [s, b]: error = u^T A u - 2 u^T r + sum y^2.
    o = len(m.y)
    a = torch.zeros(o + 1, o + 1, dtype=torch.float64)
    a[0, 0] = m.y0y0
    a[0, 1:] = a[1:, 0] = m.y0
    a[1:, 1:] = torch.eye(o, dtype=torch.float64) * m.rows
    r = torch.cat([torch.tensor([m.y0y], dtype=torch.float64), m.y])
    u0 = torch.cat([torch.ones(1, dtype=torch.float64), b0])
    free = o + 1 if bias is not None else 1
    sub, rhs = a[:free, :free], r[:free] - a[:free, free:] @ u0[free:]
    damp = ridge * sub.diagonal() + 1e-12 * float(sub.diagonal().max().clamp_min(1e-290))
    u = u0.clone()
    u[:free] = torch.linalg.solve(sub + torch.diag(damp), rhs + damp * u0[:free])
    total = float(m.yy.sum())

    def error(v: torch.Tensor) -> float:
        return float(v @ a @ v - 2 * v @ r) + total

    before, after = error(u0), error(u)
    if not (np.isfinite(after) and after <= before and float(u[0]) > 0):
        return before, before, total
    set_step_(module, grid, float(u[0]))
    if bias is not None:
        with torch.no_grad():
            bias.copy_(u[1:].to(bias.dtype))
    return before, after, total


def set_step_(module: nn.Module, grid: GridCode, scale: float) -> None:
    """Rescale the grid step by ``scale`` and rewrite the shared values on the new grid
    (the layer's shared values must be those of ``grid``)."""
    new = GridCode(grid.quantizer, float(np.float32(grid.step * scale)), grid.levels,
                   grid.period_log2)  # fmt: skip
    centroids = centroids_of(module)
    old_step = float(np.float32(grid.step))
    multiples = np.rint(centroids.detach().double().numpy() / old_step).astype(np.int64)
    values = (multiples.astype(np.float64) * float(np.float32(new.step))).astype(np.float32)
    with torch.no_grad():
        centroids.copy_(torch.from_numpy(values).to(centroids.dtype))
    setattr(module, GRID_ATTRIBUTE, new)


class StepScales:
    """Gradient descent on one step scale per grid layer (distillation with ``step+bias``).

    Autograd gives the shared values their gradient; :meth:`after_backward` turns it into the
    gradient of each layer's scale ``s`` (values = ``s * v0``), :meth:`after_step` writes the
    values back, and :meth:`finish` puts every layer on its rescaled grid.
    """

    def __init__(self, layers: list[tuple[nn.Module, nn.Parameter]]) -> None:
        self.layers = []
        for module, centroids in layers:
            grid = grid_of(module)
            if grid is None:
                raise ValueError("StepScales: every trained layer must be a grid layer")
            start = centroids.detach().clone()
            self.layers.append((module, grid, centroids, start, nn.Parameter(torch.ones(()))))

    @property
    def scales(self) -> list[nn.Parameter]:
        return [scale for *_, scale in self.layers]

    def after_backward(self) -> None:
        for _, _, centroids, start, scale in self.layers:
            grad = centroids.grad
            scale.grad = (grad * start).sum().reshape(()) if grad is not None else None
            centroids.grad = None

    @torch.no_grad()
    def after_step(self) -> None:
        for _, _, centroids, start, scale in self.layers:
            centroids.copy_(start * scale)

    @torch.no_grad()
    def finish(self) -> None:
        for module, grid, centroids, start, scale in self.layers:
            centroids.copy_(start)
            if float(scale) > 0:
                set_step_(module, grid, float(scale))
