"""Preprocessing presets: how a model wants its pixels (resize, crop, channel order, mean/std)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from squeezenet.errors import ConfigError
from squeezenet.formats.caffe_dc import CAFFE_PREPROCESS

ChannelOrder = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class Preprocess:
    """A model's input pipeline; travels inside its weights file so inference needs nothing else.

    The pipeline is: decode -> convert to ``channels`` colour mode -> resize the short side to
    ``resize`` (skipped when 0) -> centre crop ``crop`` -> float tensor of values in
    0..``value_scale`` -> reorder to ``channel_order`` -> ``(x - mean) / std`` per channel.
    """

    name: str  # preset name: "imagenet", "caffe", "small", or "custom"
    resize: int  # short side after resizing, in pixels (0: no resize)
    crop: int  # centre-crop size in pixels (the model's input size)
    mean: tuple[float, ...]  # per channel, in ``channel_order``, in the 0..value_scale range
    std: tuple[float, ...]  # per channel; (1, 1, 1) means no division (Caffe)
    channel_order: ChannelOrder = "RGB"  # BGR for Caffe-trained weights
    value_scale: float = 1.0  # 1.0: pixels in 0..1 (torchvision); 255.0: 0..255 (Caffe)
    channels: int = 3  # 3 for colour, 1 for grey images
    interpolation: str = "bilinear"  # resize filter: "bilinear" or "bicubic"

    def __post_init__(self) -> None:
        if self.resize < 0:
            raise ConfigError(f"Preprocess.resize: expected >= 0 pixels, got {self.resize}")
        if self.crop < 1:
            raise ConfigError(f"Preprocess.crop: expected >= 1 pixel, got {self.crop}")
        if self.channels not in (1, 3):
            raise ConfigError(f"Preprocess.channels: expected 1 or 3, got {self.channels}")
        for field in ("mean", "std"):
            if len(getattr(self, field)) != self.channels:
                raise ConfigError(
                    f"Preprocess.{field}: expected {self.channels} values, "
                    f"got {getattr(self, field)}"
                )
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"Preprocess.std: expected positive values, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(
                f"Preprocess.channel_order: expected RGB or BGR, got {self.channel_order!r}"
            )
        if self.value_scale not in (1.0, 255.0):
            raise ConfigError(
                f"Preprocess.value_scale: expected 1.0 or 255.0, got {self.value_scale}"
            )
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ConfigError(
                "Preprocess.interpolation: expected bilinear or bicubic, "
                f"got {self.interpolation!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise :class:`ConfigError`."""
        fields = set(cls.__dataclass_fields__)
        unknown = set(data) - fields
        if unknown:
            raise ConfigError(
                f"unknown preprocessing fields {sorted(unknown)}; expected {sorted(fields)}"
            )
        values = dict(data)
        for key in ("mean", "std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"incomplete preprocessing record: {exc}") from None


IMAGENET = Preprocess(
    name="imagenet",
    resize=256,
    crop=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)
# The released Caffe SqueezeNet: BGR, 0..255 minus the per-channel mean, no std, 227 crops.
CAFFE = Preprocess.from_dict(CAFFE_PREPROCESS)
CIFAR10 = Preprocess(
    name="small",
    resize=0,
    crop=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
)
FASHION_MNIST = Preprocess(
    name="small", resize=0, crop=28, mean=(0.2860,), std=(0.3530,), channels=1
)
PRESETS: dict[str, Preprocess] = {
    "imagenet": IMAGENET,
    "caffe": CAFFE,
    "cifar10": CIFAR10,
    "fashion-mnist": FASHION_MNIST,
}
