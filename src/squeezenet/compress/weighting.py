"""Where bits matter: each layer's output sensitivity to weight error, measured on proxy images.

Two measures, both from proxy images only, never evaluation images:

* :func:`weight_importance` (the default of ``--calib`` with the trellis quantizer): within each
  layer, a weight's error costs in proportion to the RMS activation of the input channel it
  multiplies (activation-aware weighting, as AWQ/GPTQ use input statistics). The error of
  ``W x`` is ``(dW) x``; its expected square per output is ``sum_i dW_i^2 E[x_i^2]``, and the
  square root damps what proxy statistics would over-state. Each layer's importance has mean 1
  over its stored weights, so layers are still traded at one lambda, as NNCodec's single qp.
* :func:`layer_scales`: one scale per layer, described below.
* :func:`output_fisher`: per output channel of each layer, how much the model's prediction
  moves per unit of squared error in that channel (the diagonal of the Fisher information of
  the layer's output): the weight of a row's error when the rows of one layer are traded.

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
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.finetune_common import kd_loss
from squeezenet.compress.proxy_sampler import ProxySampler
from squeezenet.compress.prune import layer_names
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


@dataclass(frozen=True)
class ImportanceConfig:
    """How :func:`weight_importance` measures the input activations."""

    images: int = 512  # proxy images (one pass)
    batch_size: int = 64
    # Importance = E[x_i^2] ** power per input channel i. 0.5 (the RMS) was chosen on held-out
    # proxy KL among 0.5, 1 and 1.5 (CIFAR-10 test images and natural photographs, docs/RESULTS.md).
    power: float = 0.5
    seed: int = 0  # proxy images

    def __post_init__(self) -> None:
        if self.images < 1 or self.batch_size < 1:
            raise ConfigError("ImportanceConfig: images and batch_size must be >= 1")
        if not 0 <= self.power <= 4:
            raise ConfigError(f"ImportanceConfig.power: expected 0..4, got {self.power}")


@dataclass(frozen=True)
class InputStats:
    """Per layer prefix, the first two moments of each input channel over the proxy images
    (float64 ``(in,)`` tensors; for convolutions averaged over every position too)."""

    mean: dict[str, torch.Tensor]
    mean_square: dict[str, torch.Tensor]
    images: int


@torch.no_grad()
def input_statistics(
    model: nn.Module, sampler: ProxySampler, config: ImportanceConfig = ImportanceConfig()
) -> InputStats:
    """One pass of ``config.images`` proxy images: the mean and mean square of every conv /
    linear layer's input channels (layers off the forward path are left out)."""
    model.eval()
    sums: dict[str, list[torch.Tensor]] = {}

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().double()
            dims = [0, *range(2, x.ndim)] if isinstance(module, nn.Conv2d) else [*range(x.ndim - 1)]
            moments = [x.mean(dim=dims) * len(x), x.square().mean(dim=dims) * len(x)]
            if name in sums:
                moments = [a + b for a, b in zip(sums[name], moments, strict=True)]
            sums[name] = moments

        return record

    seen = _run_hooked(model, hook, sampler, config.images, config.batch_size, config.seed)
    return InputStats(
        {name: first / seen for name, (first, _) in sums.items()},
        {name: second / seen for name, (_, second) in sums.items()},
        seen,
    )


def importance_from(
    model: nn.Module, stats: InputStats, power: float = ImportanceConfig.power
) -> dict[str, np.ndarray]:
    """Per layer prefix, a float64 array of the weight's shape: ``E[x_i^2] ** power`` of the input
    channel ``i`` each weight multiplies, scaled to mean 1 over the layer's stored (non-zero)
    weights (all weights when none is stored)."""
    out = {}
    for name, _, module in layer_names(model):
        if name not in stats.mean_square:
            continue  # not on the forward path
        weight = cast(torch.Tensor, module.weight).detach()
        per_input = stats.mean_square[name].clamp_min(1e-30) ** power
        view = (1, -1) + (1,) * (weight.ndim - 2)
        h = per_input.reshape(view).expand(weight.shape).cpu().numpy().copy()
        stored = weight.cpu().numpy() != 0
        mean = float(h[stored].mean()) if stored.any() else float(h.mean())
        out[name] = h / mean
    return out


def weight_importance(
    model: nn.Module, sampler: ProxySampler, config: ImportanceConfig = ImportanceConfig()
) -> dict[str, np.ndarray]:
    """:func:`importance_from` the :func:`input_statistics` of ``model`` on ``sampler``."""
    return importance_from(model, input_statistics(model, sampler, config), config.power)


@dataclass(frozen=True)
class HessianConfig:
    """How :func:`input_hessians` measures each layer's input covariance."""

    images: int = 256  # proxy images (one pass)
    batch_size: int = 32
    positions: int = 512  # output positions sampled per image and layer (all where fewer)
    # Added to the diagonal, as a fraction of its mean, before inverting (GPTQ's dampening):
    # how far the proxy images' correlations are trusted. Chosen on held-out proxies.
    damping: float = 0.1
    seed: int = 0  # proxy images and sampled positions
    # Fraction of the images that are dead leaves (ProxyConfig.leaves) instead of CIFAR-style
    # crops and mosaics: inputs with photographs' sharp edges at every scale.
    leaves: float = 0.0

    def __post_init__(self) -> None:
        if min(self.images, self.batch_size, self.positions) < 1:
            raise ConfigError("HessianConfig: images, batch_size and positions must be >= 1")
        if not 0 < self.damping <= 100:
            raise ConfigError(f"HessianConfig.damping: expected (0, 100], got {self.damping}")
        if not 0 <= self.leaves <= 1:
            raise ConfigError(f"HessianConfig.leaves: expected [0, 1], got {self.leaves}")


@torch.no_grad()
def input_hessians(
    model: nn.Module, sampler: ProxySampler, config: HessianConfig = HessianConfig()
) -> dict[str, np.ndarray]:
    """Per conv / linear layer prefix, the mean ``x x^T`` of its input vectors over proxy images
    (float64 ``(K, K)``): a convolution's im2col patches in the weight's (C, KH, KW) order, at
    ``config.positions`` sampled output positions per image. The output error of a weight error
    ``dW`` (one row per output) is ``sum_o dW_o H dW_o^T``: what error feedback
    (:func:`squeezenet.compress.trellis.feedback_factor`) needs."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(config.seed)

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach()
            (rows,) = input_vectors(module, [x], config.positions, generator)
            # mean over the sampled positions of each image, summed over images
            part = rows.T @ rows * (len(x) / len(rows))
            sums[name] = sums[name] + part if name in sums else part

        return record

    seen = _run_hooked(model, hook, sampler, config.images, config.batch_size, config.seed)
    return {name: (total / seen).numpy() for name, total in sums.items()}


def input_vectors(
    module: nn.Module, inputs: list[torch.Tensor], positions: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """The layer's input vectors, float64 ``(vectors, K)`` for each tensor of ``inputs`` (inputs
    of the same shape): a convolution's im2col patches in the weight's (C, KH, KW) order at the
    same ``positions`` output positions drawn per call (all where fewer), a linear layer's rows.
    """
    if not isinstance(module, nn.Conv2d):
        return [x.reshape(-1, x.shape[-1]).double() for x in inputs]
    if isinstance(module.padding, str):  # "same" / "valid": not in SqueezeNets
        raise ValueError(f"input_vectors: padding {module.padding!r} is not supported")
    shape = (module.kernel_size, module.dilation, module.padding, module.stride)
    cols = [torch.nn.functional.unfold(x, *shape) for x in inputs]  # (N, K, L)
    count = cols[0].shape[2]
    if count > positions:
        pick = torch.randperm(count, generator=generator)[:positions]
        cols = [c[:, :, pick] for c in cols]
    return [c.transpose(1, 2).reshape(-1, c.shape[1]).double() for c in cols]


def _run_hooked(
    model: nn.Module, hook: Any, sampler: ProxySampler, images: int, batch_size: int, seed: int
) -> int:
    """One pass of ``images`` proxy images with ``hook(name)`` as every weight layer's forward
    pre-hook (removed afterwards); returns the images seen."""
    handles = [m.register_forward_pre_hook(hook(name)) for name, _, m in layer_names(model)]
    seen = 0
    try:
        for x in sampler.batches(images, batch_size, seed):
            model(x)
            seen += len(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


@dataclass(frozen=True)
class FisherConfig:
    """How :func:`output_fisher` samples."""

    images: int = 256
    batch_size: int = 32
    labels: int = 2  # labels drawn per image from the model's own prediction
    seed: int = 0  # proxy images and labels

    def __post_init__(self) -> None:
        if min(self.images, self.batch_size, self.labels) < 1:
            raise ConfigError("FisherConfig: images, batch_size and labels must be >= 1")


@torch.enable_grad()
def output_fisher(
    model: nn.Module, sampler: ProxySampler, config: FisherConfig = FisherConfig()
) -> dict[str, np.ndarray]:
    """Per conv / linear layer, per output channel ``c``: ``E[(d log p(y | x) / d z_c)^2]``,
    ``z`` the layer's output at one position (before its ReLU), ``y`` drawn from the model's
    own softmax, averaged over images, draws and positions (float64, shape ``(channels,)``).

    Near the model, the KL between its prediction and a perturbed one is about half the sum
    over positions of ``F_c * dz_c^2`` when the gradients and the errors are independent (the
    diagonal Fisher, as BRECQ weighs block outputs): a quantization error in a channel with a
    large ``F_c`` costs more. Only the sampler's proxy images are used."""
    layers = layer_names(model)
    outputs: dict[str, torch.Tensor] = {}
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def keep(name: str) -> Any:
        def hook(_module: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor:
            out.retain_grad()
            outputs[name] = out
            return out.clone()  # an in-place ReLU changes the copy: out keeps its own gradient

        return hook

    handles = [m.register_forward_hook(keep(name)) for name, _, m in layers]
    generator = torch.Generator().manual_seed(config.seed)
    was_training = model.training
    model.eval()
    try:
        for x in sampler.batches(config.images, config.batch_size, config.seed):
            x.requires_grad_(True)  # outputs carry gradients even where weights are frozen
            for _ in range(config.labels):
                model.zero_grad(set_to_none=True)
                logits = model(x)
                probs = torch.softmax(logits.detach().double(), dim=1)
                y = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
                loss.backward()  # type: ignore[no-untyped-call]
                for name, out in outputs.items():
                    g = cast(torch.Tensor, out.grad).double()
                    g = g.transpose(0, 1).reshape(g.shape[1], -1)  # (channels, positions)
                    sums[name] = sums.get(name, 0) + (g * g).sum(1)
                    counts[name] = counts.get(name, 0) + g.shape[1]
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {name: (total / counts[name]).numpy() for name, total in sums.items()}
