"""Each SqueezeNet's layer list as plain data: what an inference engine without torch runs.

The list is the network at inference (dropout is the identity there), in order, with the
state-dict name of every convolution and batch norm, so the weights of a decoded ``.sqz``
(``CompressedModel``) or a weights file find their layer by name. ``squeezenet.models.SqueezeNet``
builds the same network as an ``nn.Module``; ``tests/arch/test_layer_list.py`` ties the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezenet.arch.config import (
    SIMPLE_BYPASS_FIRES,
    STEM_LAYOUT,
    AlexNetConfig,
    Bypass,
    ModelConfig,
    SqueezeNetConfig,
)
from squeezenet.errors import ConfigError


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution with bias (weights at ``name + ".weight"``, OIHW), then an optional
    batch norm (inference statistics, at ``batch_norm + ".running_mean"`` ...), then ReLU."""

    name: str  # state-dict prefix, e.g. "features.0" or "features.3.squeeze"
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    batch_norm: str | None = None  # state-dict prefix of the batch norm after it, or None
    relu: bool = True


@dataclass(frozen=True)
class MaxPool:
    """Max pooling, 3x3 stride 2 with Caffe's ceil mode (the output covers every input pixel)."""

    kernel: int = 3
    stride: int = 2
    ceil_mode: bool = True


@dataclass(frozen=True)
class Fire:
    """A Fire module (Sec. 3.2): squeeze, then [expand 1x1, expand 3x3] concatenated along the
    channels, plus the bypass (Sec. 6) added after the expand ReLUs: the input itself
    (``"simple"``) or ``shortcut`` of it (``"complex"``, no ReLU)."""

    name: str  # state-dict prefix, e.g. "features.3"
    squeeze: Conv
    expand1x1: Conv
    expand3x3: Conv
    bypass: Bypass = "none"
    shortcut: Conv | None = None

    @property
    def out_channels(self) -> int:
        return self.expand1x1.out_channels + self.expand3x3.out_channels


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean over each channel's map: ``(N, C, H, W) -> (N, C)``, the logits."""


Layer = Conv | MaxPool | Fire | GlobalAvgPool


def layer_list(config: ModelConfig) -> tuple[Layer, ...]:
    """The layers of a SqueezeNet ``config`` at inference, in order.

    Raises:
        ConfigError: ``config`` is not a SqueezeNet (AlexNet has no layer list here).
    """
    if isinstance(config, AlexNetConfig) or not isinstance(config, SqueezeNetConfig):
        raise ConfigError(f"no layer list for {type(config).__name__}: only SqueezeNets have one")
    filters, kernel, stride, padding, pool_after = STEM_LAYOUT[config.stem]
    bn = config.batch_norm
    layers: list[Layer] = [
        Conv(
            "features.0",
            config.in_channels,
            filters,
            kernel,
            stride,
            padding,
            batch_norm="features.1" if bn else None,
        ),
        MaxPool(),
    ]
    index = 4 if bn else 3  # conv1 [, bn], relu, pool
    channels = filters
    for i, (s, e1, e3) in enumerate(config.fire_channels()):
        number = i + 2
        layers.append(_fire(f"features.{index}", config, number, channels, (s, e1, e3)))
        channels, index = e1 + e3, index + 1
        if number in pool_after:
            layers.append(MaxPool())
            index += 1
    pad = config.final_conv_padding
    layers += [
        Conv("classifier.1", channels, config.num_classes, 1, padding=pad),
        GlobalAvgPool(),
    ]
    return tuple(layers)


def _fire(
    name: str, config: SqueezeNetConfig, number: int, inplanes: int, planes: tuple[int, int, int]
) -> Fire:
    s, e1, e3 = planes
    bn = config.batch_norm

    def conv(part: str, cin: int, cout: int, kernel: int, relu: bool = True) -> Conv:
        norm = f"{name}.{part}_bn" if bn else None
        return Conv(
            f"{name}.{part}", cin, cout, kernel, padding=kernel // 2, batch_norm=norm, relu=relu
        )

    bypass = fire_bypass(config, number, inplanes, e1 + e3)
    shortcut = conv("shortcut", inplanes, e1 + e3, 1, relu=False) if bypass == "complex" else None
    return Fire(
        name,
        conv("squeeze", inplanes, s, 1),
        conv("expand1x1", s, e1, 1),
        conv("expand3x3", s, e3, 3),
        bypass,
        shortcut,
    )


def fire_bypass(config: SqueezeNetConfig, number: int, inplanes: int, outplanes: int) -> Bypass:
    """The bypass of fire``number`` (Sec. 6): identity where the stem's simple layout puts one
    and the channels match, a 1x1 shortcut elsewhere under ``"complex"``, else none."""
    if config.bypass == "none":
        return "none"
    if number in SIMPLE_BYPASS_FIRES and inplanes == outplanes:
        return "simple"
    return "complex" if config.bypass == "complex" else "none"
