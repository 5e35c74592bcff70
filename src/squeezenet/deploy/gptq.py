"""GPTQ rounding of conv / linear weights onto per-output-channel integer grids.

Rounding each weight to its nearest grid level ignores that a layer's output error is
``(Q - W) x``: errors in weights that see correlated inputs add up or cancel. GPTQ (Frantar et
al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", ICLR
2023, after Optimal Brain Quantization) rounds one input column at a time and spreads each
column's rounding error over the columns not yet rounded, weighted by the inverse of the
layer's input second-moment matrix ``H = E[x x^T]`` (for a convolution, ``x`` is one im2col
patch). The result is a grid point for every weight whose output error ``tr((Q-W) H (Q-W)^T)``
is far below nearest rounding's, at the same grid, so the same integer kernels run it.

The grid is symmetric per output channel: ``step = max|w| / qmax`` over the channel's original
weights (``qmax = 127`` for int8), levels ``-qmax..qmax``, the scheme of ONNX Runtime's
per-channel int8 weights. ``H`` is measured on proxy images, never on evaluation images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.prune import layer_names


@dataclass(frozen=True)
class GptqConfig:
    """How :func:`gptq_` rounds."""

    qmax: int = 127  # levels -qmax..qmax per output channel (127: int8)
    damp: float = 0.01  # added to H's diagonal, as a fraction of its mean (numerical stability)

    def __post_init__(self) -> None:
        if self.qmax < 1:
            raise ValueError(f"GptqConfig.qmax: expected >= 1, got {self.qmax}")
        if self.damp <= 0:
            raise ValueError(f"GptqConfig.damp: expected > 0, got {self.damp}")


@dataclass(frozen=True)
class GptqLayer:
    """One layer of :func:`gptq_`: its steps and its output error against nearest rounding."""

    name: str
    step: torch.Tensor  # (out,) float32: weight = level * step
    error: float  # tr((Q-W) H (Q-W)^T) / tr(W H W^T) after GPTQ
    nearest_error: float  # the same for nearest rounding on the same grid


@torch.no_grad()
def input_covariances(model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per conv / linear layer prefix, ``E[x x^T]`` of its im2col input patches (float64
    ``(d, d)``, ``d`` = in x kh x kw in :func:`torch.nn.functional.unfold`'s order) over
    ``batches`` run through ``model`` (eval mode)."""
    model.eval()
    sums: dict[str, list[Any]] = {}

    def hook(name: str, module: nn.Module) -> Any:
        def record(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = _patches(module, args[0].detach()).double()
            entry = sums.setdefault(name, [0.0, 0])
            entry[0] = entry[0] + x.T @ x
            entry[1] += len(x)

        return record

    handles = [m.register_forward_pre_hook(hook(n, m)) for n, _, m in layer_names(model)]
    try:
        for x in batches:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: total / count for name, (total, count) in sums.items()}


def _patches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(positions, d)`` rows, one per output position (conv) or sample (linear)."""
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise ValueError("gptq: grouped convolutions are not supported")
        cols = F.unfold(
            x, module.kernel_size, module.dilation, cast(Any, module.padding), module.stride
        )  # (N, d, L)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


@torch.no_grad()
def gptq_(
    model: nn.Module, covariances: Mapping[str, torch.Tensor], config: GptqConfig = GptqConfig()
) -> list[GptqLayer]:
    """Round every conv / linear weight of ``model`` that has a covariance onto its
    per-output-channel grid with GPTQ, in place; the weights then equal ``level * step`` with
    integer ``|level| <= qmax`` (up to float32 rounding of the product)."""
    rows = []
    for name, _, module in layer_names(model):
        if name not in covariances:
            continue
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"gptq_: {name}.weight is parametrized; remove it first")
        weight = cast(torch.Tensor, module.weight)
        w = weight.detach().double().reshape(weight.shape[0], -1)
        h = covariances[name].to(w)
        step = (w.abs().amax(1) / config.qmax).clamp_min(1e-12)  # (out,)
        levels = _gptq_levels(w, h, step, config)
        q = levels * step[:, None]
        weight.copy_((levels.float() * step.float()[:, None]).reshape(weight.shape))
        nearest = (w / step[:, None]).round().clamp(-config.qmax, config.qmax) * step[:, None]
        rows.append(
            GptqLayer(name, step.float(), _relative(q - w, w, h), _relative(nearest - w, w, h))
        )
    return rows


def _relative(delta: torch.Tensor, w: torch.Tensor, h: torch.Tensor) -> float:
    return float(torch.einsum("oi,ij,oj->", delta, h, delta) / torch.einsum("oi,ij,oj->", w, h, w))


def _gptq_levels(
    w: torch.Tensor, h: torch.Tensor, step: torch.Tensor, config: GptqConfig
) -> torch.Tensor:
    """Integer levels ``(out, d)`` (float64) of ``w`` by GPTQ with input covariance ``h``."""
    w = w.clone()
    h = h.clone()
    dead = torch.diag(h) == 0  # inputs that are always zero: their weights do not matter
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += torch.eye(len(h), dtype=h.dtype) * config.damp * float(torch.diag(h).mean())
    # the upper Cholesky factor of H^-1: row i holds how column i's error moves columns > i
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    levels = torch.empty_like(w)
    for i in range(w.shape[1]):
        column = w[:, i]
        level = (column / step).round().clamp(-config.qmax, config.qmax)
        levels[:, i] = level
        error = (column - level * step) / u[i, i]
        w[:, i:] -= error[:, None] * u[i, i:][None, :]
    return levels
