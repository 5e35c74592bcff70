"""Model configurations as plain data: SqueezeNet's metaparameters (Sec. 5.1) and AlexNet's.

Nothing here imports torch: a config describes a network; ``squeezenet.models`` builds it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, get_args

from squeezenet.errors import ConfigError

# SqueezeNet Sec. 6's names, the one spelling of the package. Per Fire module: "simple" is an
# identity shortcut, "complex" a 1x1-convolution shortcut. Per network (`SqueezeNetConfig`):
# "simple" puts identity shortcuts where channels match, "complex" also adds 1x1 shortcuts
# everywhere else.
Bypass = Literal["none", "simple", "complex"]
BYPASSES: tuple[Bypass, ...] = get_args(Bypass)

Stem = Literal["v1.0", "v1.1", "small"]

NUM_FIRE = 8  # fire2..fire9 in every SqueezeNet of the paper
STEMS: tuple[Stem, ...] = get_args(Stem)

# Per stem: (conv1 filters, kernel, stride, padding, fire modules followed by a max-pool).
# v1.0 is Table 1 of the paper; v1.1 is the authors' repository; "small" is v1.1's layout with
# a stride-1 padded conv1, for 28-32 px inputs (32 -> 16 -> 8 -> 4).
STEM_LAYOUT: dict[str, tuple[int, int, int, int, tuple[int, ...]]] = {
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
        return STEM_LAYOUT[self.stem][0]


def _bad(field: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"SqueezeNetConfig.{field}: expected {expected}, got {got!r}")


def _is_int_at_least(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class AlexNetConfig:
    """AlexNet as in torchvision (single-tower, 64-192-384-256-256 filters).

    Raises:
        ConfigError: a field outside what it accepts (the message names the field).
    """

    num_classes: int = 1000  # outputs of the last fully connected layer
    in_channels: int = 3  # input image channels
    dropout: float = 0.5  # dropout before fc6 and fc7

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"AlexNetConfig.{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.dropout, numbers.Real) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"AlexNetConfig.dropout: expected a probability in [0, 1), got {self.dropout!r}"
            )


ModelConfig = SqueezeNetConfig | AlexNetConfig
