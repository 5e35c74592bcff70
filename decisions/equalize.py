"""Activation equalisation across ReLUs before int8 quantization (cross-layer equalisation), as
a variant of ``bench_int8_calibration.py``: tried and rejected on the held-out proxies
(docs/RESULTS.md), so it is not part of the package.

int8 activations share one range per tensor. In the published SqueezeNet (no batch norm) the
channels of one activation differ in range (on CIFAR-10 calibration images, the largest is 2-7x
the median and the median 2-135x the smallest), so a per-tensor range leaves the small channels
few levels. ReLU is positively homogeneous, relu(x / s) =
relu(x) / s for s > 0, so dividing a producer convolution's output channel c (weights and
bias) by s_c and multiplying the input channel c of every consumer by s_c leaves the float
model's output unchanged while moving each channel's range. With s_c = (r_c / median r) ** a,
``a`` (the strength) in [0, 1], the ranges r_c measured on calibration images are pulled
towards their median (of the channels ever positive; the others keep their scale): a = 0
changes nothing, a = 1 makes them all equal (Nagel et al., 2019, "Data-Free Quantization",
applied to activation ranges; max pooling and concatenation commute with per-channel positive
scales).

Only SqueezeNets without batch norm and without bypass qualify: a shortcut adds an unscaled
input to the scaled branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.models.fire import Fire


@dataclass(frozen=True)
class _Link:
    """Producer convolutions whose ReLU'd outputs, concatenated, feed the consumers."""

    producers: tuple[nn.Conv2d, ...]
    consumers: tuple[nn.Conv2d, ...]


def equalize_(model: nn.Module, batches: Sequence[np.ndarray], strength: float = 0.5) -> int:
    """Equalise ``model``'s activation ranges in place; returns the number of links rescaled.

    Raises:
        ConfigError: ``strength`` outside [0, 1], or a model this cannot rescale exactly.
    """
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"equalisation strength must be in [0, 1], got {strength}")
    links = _links(model)
    ranges = _ranges(model, [p for link in links for p in link.producers], batches)
    with torch.no_grad():
        for link in links:
            r = torch.cat([ranges[p] for p in link.producers])
            alive = r > 0  # a channel never above zero on these images keeps its scale
            if not bool(alive.any()):
                continue
            # (C,): each producer channel is divided by it, each consumer input multiplied
            scale = torch.where(alive, (r / r[alive].median()) ** strength, torch.ones_like(r))
            start = 0
            for producer in link.producers:
                s = scale[start : start + producer.out_channels]
                producer.weight.div_(s[:, None, None, None])
                if producer.bias is not None:
                    producer.bias.div_(s)
                start += producer.out_channels
            for consumer in link.consumers:
                consumer.weight.mul_(scale[None, :, None, None])
    return len(links)


def _links(model: nn.Module) -> list[_Link]:
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    config = getattr(model, "config", None)
    if features is None or classifier is None or config is None:
        raise ConfigError("activation equalisation needs a SqueezeNet model")
    if config.batch_norm or config.bypass != "none":
        raise ConfigError(
            "activation equalisation needs a SqueezeNet without batch norm and without bypass; "
            "quantize this one without it"
        )
    convs: list[tuple[nn.Conv2d, ...]] = []  # each stage's output producers, in order
    links: list[_Link] = []
    for module in features:
        if isinstance(module, nn.Conv2d):
            convs.append((module,))
        elif isinstance(module, Fire):
            links.append(_Link(convs[-1], (module.squeeze,)))
            links.append(_Link((module.squeeze,), (module.expand1x1, module.expand3x3)))
            convs.append((module.expand1x1, module.expand3x3))
    final = next(m for m in classifier if isinstance(m, nn.Conv2d))
    links.append(_Link(convs[-1], (final,)))
    return links


def _ranges(
    model: nn.Module, convs: list[nn.Conv2d], batches: Sequence[np.ndarray]
) -> dict[nn.Conv2d, torch.Tensor]:
    """Per output channel, the largest ReLU'd output of each conv over the calibration images."""
    ranges: dict[nn.Conv2d, torch.Tensor] = {}

    def hook(conv: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        peak = out.clamp(min=0).amax(dim=(0, 2, 3))
        assert isinstance(conv, nn.Conv2d)
        ranges[conv] = torch.maximum(ranges[conv], peak) if conv in ranges else peak

    handles = [conv.register_forward_hook(hook) for conv in set(convs)]
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(torch.from_numpy(batch))
    finally:
        for handle in handles:
            handle.remove()
    return ranges
