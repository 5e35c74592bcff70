"""SqueezeNet built from the paper's metaparameters (SqueezeNet Sec. 5.1), v1.0 by default."""

from __future__ import annotations

import math

import torch
from torch import nn

from squeezenet.arch.config import STEM_LAYOUT, SqueezeNetConfig
from squeezenet.arch.layers import fire_bypass
from squeezenet.models.fire import Fire


class SqueezeNet(nn.Module):
    """SqueezeNet from a :class:`SqueezeNetConfig` (torchvision-compatible state dict).

    Layout (``features`` then ``classifier``, indices as torchvision's ``squeezenet1_0/1_1``):
    conv1 + ReLU, max-pool (3x3/2, ceil mode) after conv1 (v1.0, v1.1) and after the Fire
    modules the stem names, fire2..fire9, then dropout, conv10 (1x1, ``num_classes``), ReLU
    and global average pooling.

    Bypass (SqueezeNet Sec. 6):
        * ``simple``: identity shortcuts around fire3, fire5, fire7 and fire9 (where input
          and output channels are equal, which the default metaparameters guarantee);
        * ``complex``: the simple shortcuts plus a 1x1 convolution shortcut (with bias) on
          every other Fire module (fire2, fire4, fire6, fire8 by default). For v1.0 that adds
          341,248 parameters: 1,589,672 in all, 6,358,688 bytes (6.06 MiB) at 32 bits, against
          the paper's 7.7 MB, which no plain layout reproduces (see docs/MODELS.md).

    Shapes: input ``(N, in_channels, H, W)`` -> logits ``(N, num_classes)``; after conv10's
    ReLU the logits are non-negative, as in the paper.
    """

    def __init__(self, config: SqueezeNetConfig | None = None, *, seed: int | None = None) -> None:
        super().__init__()
        self.config = config = config or SqueezeNetConfig()
        filters, kernel, stride, padding, pool_after = STEM_LAYOUT[config.stem]
        pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # ceil mode, as in Caffe
        layers: list[nn.Module] = [
            nn.Conv2d(config.in_channels, filters, kernel, stride=stride, padding=padding)
        ]
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(filters))
        layers += [nn.ReLU(inplace=True), pool]
        channels = filters
        for i, (s, e1, e3) in enumerate(config.fire_channels()):
            number = i + 2
            bypass = fire_bypass(config, number, channels, e1 + e3)
            layers.append(Fire(channels, s, e1, e3, bypass=bypass, batch_norm=config.batch_norm))
            channels = e1 + e3
            if number in pool_after:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(p=config.dropout),
            nn.Conv2d(
                channels, config.num_classes, kernel_size=1, padding=config.final_conv_padding
            ),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        init_weights_(self, seed=seed)

    @property
    def final_conv(self) -> nn.Conv2d:
        """conv10, the 1x1 convolution to the classes (``classifier.1``)."""
        conv = self.classifier[1]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.classifier(x)
        return torch.flatten(x, 1)  # (N, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """The rows of the paper's Table 1: (name, module); applied in order they equal forward."""
        rows: list[tuple[str, nn.Module]] = []
        last = 1
        children = list(self.features)
        i = 0
        while i < len(children):
            module = children[i]
            if isinstance(module, nn.Conv2d):
                end = i + 3 if self.config.batch_norm else i + 2  # conv1 [+ BN] + ReLU
                rows.append(("conv1", nn.Sequential(*children[i:end])))
                i = end
                continue
            if isinstance(module, Fire):
                last = len([r for r in rows if r[0].startswith("fire")]) + 2
                rows.append((f"fire{last}", module))
            elif isinstance(module, nn.MaxPool2d):
                rows.append((f"maxpool{last}", module))
            i += 1
        dropout, conv, relu, avgpool = self.classifier
        rows.append(("conv10", nn.Sequential(dropout, conv, relu)))
        rows.append(("avgpool10", nn.Sequential(avgpool, nn.Flatten(1))))
        return rows


def init_weights_(model: nn.Module, *, seed: int | None = None) -> None:
    """Initialise as the Caffe release does, in place; reproducible when ``seed`` is given.

    Convolutions and linear layers: Caffe's ``xavier`` filler, U(-a, a) with
    a = sqrt(3 / fan_in); the final convolution (``model.final_conv`` if present): N(0, 0.01);
    all biases 0.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    final = getattr(model, "final_conv", None)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            weight = module.weight
            if module is final:
                weight.normal_(0.0, 0.01, generator=generator)
            else:
                fan_in = weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                weight.uniform_(-bound, bound, generator=generator)
            if module.bias is not None:
                module.bias.zero_()
