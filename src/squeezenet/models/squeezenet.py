"""SqueezeNet built from the paper's metaparameters (SqueezeNet Sec. 5.1), v1.0 by default."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.models.fire import BYPASSES, Bypass, Fire

Stem = Literal["v1.0", "v1.1", "small"]

NUM_FIRE = 8  # fire2..fire9 in every SqueezeNet of the paper
STEMS: tuple[Stem, ...] = get_args(Stem)

# Per stem: (conv1 filters, kernel, stride, padding, fire modules followed by a max-pool).
# v1.0 is Table 1 of the paper; v1.1 is the authors' repository; "small" is v1.1's layout with
# a stride-1 padded conv1, for 28-32 px inputs (32 -> 16 -> 8 -> 4).
_STEM_LAYOUT: dict[str, tuple[int, int, int, int, tuple[int, ...]]] = {
    "v1.0": (96, 7, 2, 0, (4, 8)),
    "v1.1": (64, 3, 2, 0, (3, 5)),
    "small": (64, 3, 1, 1, (3, 5)),
}
SIMPLE_BYPASS_FIRES = (3, 5, 7, 9)  # SqueezeNet Sec. 6: identity bypass around odd modules

# Integer fields and their least value; number fields and the interval each accepts,
# as (low, high, high included, how the message says it).
_INT_FIELDS = (("base_e", 1), ("incr_e", 0), ("freq", 1), ("num_classes", 1), ("in_channels", 1))
_RANGE_FIELDS = (
    ("pct_3x3", 0.0, 1.0, False, "a fraction strictly between 0 and 1"),
    ("squeeze_ratio", 0.0, 4.0, True, "a number in (0, 4]"),
)


@dataclass(frozen=True)
class SqueezeNetConfig:
    """Architecture of a SqueezeNet; the defaults are v1.0 exactly (1,248,424 parameters).

    Raises:
        ConfigError: a field outside what it accepts (the message names the field, what was
            expected and what arrived); users reach these through ``--set`` and the CLI options.
    """

    base_e: int = 128  # expand filters of the first Fire module (Sec. 5.1)
    incr_e: int = 128  # expand filters added every `freq` modules
    freq: int = 2  # how many Fire modules share one expand width
    pct_3x3: float = 0.5  # share of 3x3 filters in the expand layer (Fig. 3b sweeps it)
    squeeze_ratio: float = 0.125  # s1x1 / (e1x1 + e3x3) (Fig. 3a sweeps it)
    stem: Stem = "v1.0"  # conv1 and pool layout: "v1.0", "v1.1" or "small" (28-32 px)
    bypass: Bypass = "none"  # Sec. 6: "simple" identity shortcuts, "complex" adds 1x1 convs
    num_classes: int = 1000  # outputs of conv10
    in_channels: int = 3  # 3 for RGB/BGR, 1 for grey images such as Fashion-MNIST
    dropout: float = 0.5  # dropout before conv10, as after fire9 in the paper
    final_conv_padding: int = 0  # 1 reproduces the released Caffe model (15x15 conv10 map)
    batch_norm: bool = False  # not in the paper: BN after conv1 and every Fire convolution

    def __post_init__(self) -> None:
        for name, least in _INT_FIELDS:
            if not _is_int_at_least(getattr(self, name), least):
                raise _bad(name, f"an integer >= {least}", getattr(self, name))
        for name, low, high, high_ok, expected in _RANGE_FIELDS:
            value = getattr(self, name)
            if not _is_number(value) or not (low < value < high or (high_ok and value == high)):
                raise _bad(name, expected, value)
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise _bad("dropout", "a probability in [0, 1)", self.dropout)
        for name, choices in (("stem", STEMS), ("bypass", BYPASSES)):
            if getattr(self, name) not in choices:
                raise _bad(name, f"one of {', '.join(choices)}", getattr(self, name))
        if self.final_conv_padding not in (0, 1):
            raise _bad("final_conv_padding", "0 or 1", self.final_conv_padding)
        self._check_every_fire_has_filters()

    def _check_every_fire_has_filters(self) -> None:
        for i, (s, e1, e3) in enumerate(self.fire_channels()):
            if min(s, e1, e3) < 1:
                raise _bad(
                    "pct_3x3" if min(e1, e3) < 1 else "squeeze_ratio",
                    f"at least one filter of each kind in fire{i + 2}",
                    f"(s1x1, e1x1, e3x3) = {(s, e1, e3)}",
                )

    def fire_channels(self) -> list[tuple[int, int, int]]:
        """(s1x1, e1x1, e3x3) of fire2..fire9 from the metaparameters (Sec. 5.1).

        e_i = base_e + incr_e * floor(i / freq); e3x3_i = pct_3x3 * e_i; e1x1_i = e_i - e3x3_i;
        s1x1_i = squeeze_ratio * e_i; fractional counts are rounded half up.
        """
        out = []
        for i in range(NUM_FIRE):
            e = self.base_e + self.incr_e * (i // self.freq)
            e3 = _round_half_up(self.pct_3x3 * e)
            out.append((_round_half_up(self.squeeze_ratio * e), e - e3, e3))
        return out

    @property
    def stem_channels(self) -> int:
        return _STEM_LAYOUT[self.stem][0]


def _bad(field: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"SqueezeNetConfig.{field}: expected {expected}, got {got!r}")


def _is_int_at_least(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


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
        filters, kernel, stride, padding, pool_after = _STEM_LAYOUT[config.stem]
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
            bypass = _fire_bypass(config, number, channels, e1 + e3)
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


def _fire_bypass(config: SqueezeNetConfig, number: int, inplanes: int, outplanes: int) -> Bypass:
    """The bypass of fire``number``: simple where channels match (fire3/5/7/9), else complex."""
    if config.bypass == "none":
        return "none"
    if number in SIMPLE_BYPASS_FIRES and inplanes == outplanes:
        return "simple"
    return "complex" if config.bypass == "complex" else "none"


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
