"""Where bits matter: each layer's output sensitivity to weight error, measured on proxy images.

Entropy-constrained quantization (:mod:`squeezenet.compress.ecsq`) trades squared weight error
against bits with one ``lambda``; but a unit of squared error costs more in some layers than in
others. Near the uncompressed model the KL(teacher || perturbed) grows quadratically with a small
perturbation, so each layer gets a scale: the proxy KL per unit of squared weight error, measured
by adding seeded Gaussian noise of a known size to its stored (non-zero) weights. A layer's own
lambda is then ``lambda / scale``: equal marginal KL per bit across layers, the classic optimal
bit allocation. Only proxy images are used, never evaluation images.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.proxy import ProxySampler
from squeezenet.compress.prune import layer_names
from squeezenet.compress.student import kd_loss
from squeezenet.errors import ConfigError


@dataclass(frozen=True)
class ScalesConfig:
    """How the per-layer scales are measured."""

    images: int = 128  # fixed proxy images (the same for every layer)
    noise: float = 0.05  # noise std as a fraction of the layer's RMS stored weight
    repeats: int = 2  # noise draws per layer, averaged
    seed: int = 0  # proxy images and noise
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.images < 1 or self.repeats < 1 or self.batch_size < 1:
            raise ConfigError("ScalesConfig: images, repeats and batch_size must be >= 1")
        if not 0 < self.noise < 1:
            raise ConfigError(f"ScalesConfig.noise: expected a fraction in (0, 1): {self.noise}")


@torch.no_grad()
def layer_scales(
    model: nn.Module, sampler: ProxySampler, config: ScalesConfig = ScalesConfig()
) -> dict[str, float]:
    """Proxy KL per unit of squared weight error, per layer prefix (every conv / linear layer).

    The model is restored bit for bit after each probe and left in eval mode.
    """
    model.eval()
    inputs = list(sampler.batches(config.images, config.batch_size, config.seed))
    teacher = [model(x) for x in inputs]
    scales: dict[str, float] = {}
    for index, (name, _, module) in enumerate(layer_names(model)):
        if parametrize.is_parametrized(module):
            raise ValueError(f"layer_scales: {name} is pruned or shared; measure the plain model")
        weight = cast(torch.Tensor, module.weight)
        stored = weight != 0
        count = int(stored.sum())
        if count == 0:
            continue
        rms = float(weight[stored].double().square().mean().sqrt())
        sigma = config.noise * rms
        total = 0.0
        for repeat in range(config.repeats):
            generator = torch.Generator().manual_seed(config.seed * 7919 + index * 31 + repeat)
            noise = torch.randn(weight.shape, generator=generator) * sigma * stored
            with _perturbed(weight, noise):
                kl = sum(
                    float(kd_loss(model(x), t, 1.0, "kl")) * len(x)
                    for x, t in zip(inputs, teacher, strict=True)
                )
            total += kl / config.images / float(noise.double().square().sum())
        scales[name] = max(total / config.repeats, 1e-12)
    return scales


@contextmanager
def _perturbed(weight: torch.Tensor, noise: torch.Tensor) -> Iterator[None]:
    saved = weight.detach().clone()
    weight.add_(noise.to(weight))
    try:
        yield
    finally:
        weight.copy_(saved)
