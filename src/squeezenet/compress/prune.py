"""Magnitude pruning with masks that survive training (Deep Compression Sec. 2).

A pruned layer's ``weight`` becomes ``original * mask`` through
:mod:`torch.nn.utils.parametrize`: the optimiser updates ``original`` (momentum and weight decay
included) but the weight the layer uses is zero wherever the mask is, so a plain training loop
keeps pruned weights at exactly zero without knowing about pruning. Biases stay dense.

Layers are named by their state-dict prefix (``features.3.expand3x3``); on a
:class:`~squeezenet.models.SqueezeNet` policies may also use the paper's Table 1 names
(``conv1``, ``fire2.squeeze`` ... ``fire9.expand3x3``, ``conv10``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.formats.policy import Method, PrunePolicy
from squeezenet.models import Fire, SqueezeNet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerPruning:
    """One row of a :class:`PruneReport`."""

    name: str  # state-dict prefix of the layer
    numel: int  # weights in the layer
    kept: int  # weights the mask keeps (numel for unmasked layers)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / max(self.numel, 1)


@dataclass(frozen=True)
class PruneReport:
    """Per-layer result of :func:`prune_` (every conv/linear layer, pruned or not)."""

    layers: tuple[LayerPruning, ...]

    @property
    def numel(self) -> int:
        return sum(layer.numel for layer in self.layers)

    @property
    def kept(self) -> int:
        return sum(layer.kept for layer in self.layers)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / max(self.numel, 1)

    def by_name(self) -> dict[str, LayerPruning]:
        return {layer.name: layer for layer in self.layers}


class PruneMask(nn.Module):
    """Parametrization ``weight = original * mask``; ``mask`` is a buffer of 0s and 1s."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * cast(torch.Tensor, self.mask)

    @property
    def prune_mask(self) -> torch.Tensor:
        """The kept positions as a bool tensor of the weight's shape."""
        return cast(torch.Tensor, self.mask) != 0


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of ``model`` as (state-dict prefix, module), in order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def layer_aliases(model: nn.Module) -> dict[str, str]:
    """Prefix -> Table 1 name (``conv1``, ``fire2.squeeze``, ``conv10``) on SqueezeNets."""
    if not isinstance(model, SqueezeNet):
        return {}
    prefix = {id(m): n for n, m in model.named_modules()}
    aliases: dict[str, str] = {}
    fire = 2
    for module in model.features:
        if isinstance(module, nn.Conv2d) and not aliases:
            aliases[prefix[id(module)]] = "conv1"
        elif isinstance(module, Fire):
            for child, sub in module.named_children():
                if isinstance(sub, nn.Conv2d):
                    aliases[prefix[id(sub)]] = f"fire{fire}.{child}"
            fire += 1
    aliases[prefix[id(model.final_conv)]] = "conv10"
    return aliases


def layer_names(model: nn.Module) -> list[tuple[str, tuple[str, ...], nn.Module]]:
    """(prefix, names a pattern may match, module) for every weight layer."""
    aliases = layer_aliases(model)
    return [(n, (n, aliases[n]) if n in aliases else (n,), m) for n, m in weight_layers(model)]


def weight_parametrizations(module: nn.Module) -> list[nn.Module]:
    """The parametrizations registered on ``module.weight`` (empty when it is plain)."""
    if not parametrize.is_parametrized(module, "weight"):
        return []
    plist = cast(nn.ModuleList, cast(nn.ModuleDict, module.parametrizations)["weight"])
    return list(plist)


def prune_mask_of(module: nn.Module) -> PruneMask | None:
    """The :class:`PruneMask` parametrization of ``module.weight``, if any."""
    found = [p for p in weight_parametrizations(module) if isinstance(p, PruneMask)]
    return found[0] if found else None


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Bool keep-masks (weight-shaped) of every pruned layer, by state-dict prefix.

    Layers pruned and then weight-shared (:func:`squeezenet.compress.quantize_`) are included.
    """
    masks: dict[str, torch.Tensor] = {}
    for name, module in weight_layers(model):
        for p in weight_parametrizations(module):
            mask = getattr(p, "prune_mask", None)
            if isinstance(mask, torch.Tensor):
                masks[name] = mask.detach().clone()
    return masks


def magnitude_mask(
    weight: torch.Tensor, amount: float, method: Method = "sparsity"
) -> torch.Tensor:
    """Keep-mask (bool, weight-shaped) from the magnitudes of the effective weight."""
    magnitude = weight.detach().abs().flatten()
    if method == "sparsity":
        n_prune = round(amount * magnitude.numel())
        keep = torch.ones_like(magnitude, dtype=torch.bool)
        keep[torch.argsort(magnitude, stable=True)[:n_prune]] = False
    else:
        kept = weight.detach().flatten()[magnitude != 0]  # the std of the surviving weights
        std = kept.std() if kept.numel() > 1 else magnitude.new_zeros(())
        keep = magnitude >= amount * std
    return keep.view_as(weight)


def register_mask_(module: nn.Module, keep: torch.Tensor) -> None:
    """Put ``module.weight`` under the bool keep-mask ``keep`` (combined with any mask it has)."""
    weight = cast(torch.Tensor, module.weight)
    existing = prune_mask_of(module)
    if existing is not None:
        mask = cast(torch.Tensor, existing.mask)
        mask.mul_(keep.to(mask.dtype))
        return
    if parametrize.is_parametrized(module, "weight"):
        raise ValueError(
            "this layer's weight is already parametrized (weight-shared?); prune before "
            "quantize_, or call remove_quantization_ first"
        )
    mask = keep.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        weight.mul_(mask)  # the stored original is clean too, not only the effective weight
    parametrize.register_parametrization(module, "weight", PruneMask(mask))


def prune_(model: nn.Module, policy: PrunePolicy) -> PruneReport:
    """Prune ``model`` in place, layer by layer (Deep Compression Sec. 2).

    Each matched conv/linear layer gets a keep-mask from the magnitudes of its current weight:
    the ``round(sparsity * numel)`` smallest are zeroed (``method="sparsity"``), or those with
    ``|w| < q * std`` of the layer's kept weights (``method="std"``, Han et al. 2015). Pruning a
    pruned layer again combines the masks (pruned weights never come back), so iterative pruning
    works. Biases are not pruned.

    Returns:
        A report over every weight layer: numel, kept, sparsity.
    """
    rows = []
    matched = False
    for name, names, module in layer_names(model):
        amount = policy.amount_for(names)
        weight = cast(torch.Tensor, module.weight)
        if amount is not None:
            matched = True
            if policy.method == "std" or amount > 0:
                register_mask_(module, magnitude_mask(weight, amount, policy.method))
        rows.append(_row(name, module))
    if not matched:
        logger.warning("prune policy %s matched no layer of %s", policy, type(model).__name__)
    return PruneReport(tuple(rows))


def _row(name: str, module: nn.Module) -> LayerPruning:
    weight = cast(torch.Tensor, module.weight)
    existing = prune_mask_of(module)
    kept = int(existing.prune_mask.sum()) if existing is not None else weight.numel()
    return LayerPruning(name, weight.numel(), kept)


def pruning_report(model: nn.Module) -> PruneReport:
    """The current masks of ``model`` as a report (unmasked layers count as dense)."""
    return PruneReport(tuple(_row(name, module) for name, module in weight_layers(model)))


def remove_pruning_(model: nn.Module) -> PruneReport:
    """Bake the masks in: weights become plain parameters with zeros, state-dict keys plain.

    Returns:
        The report of the masks that were removed (the zeros stay, but no longer pinned).
    """
    report = pruning_report(model)
    for _, module in weight_layers(model):
        if prune_mask_of(module) is None:
            continue
        if len(weight_parametrizations(module)) != 1:
            raise ValueError(
                "this layer has parametrizations besides its prune mask; remove those first"
            )
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return report
