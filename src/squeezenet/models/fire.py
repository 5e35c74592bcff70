"""The Fire module (SqueezeNet Sec. 3.2): squeeze 1x1 -> expand 1x1 || expand 3x3, concatenated."""

from __future__ import annotations

import torch
from torch import nn

from squeezenet.arch.config import BYPASSES, Bypass


class Fire(nn.Module):
    """A Fire module, optionally with a bypass (SqueezeNet Sec. 6).

    Attribute names match torchvision's ``Fire`` so that state dicts move both ways.

    Args:
        inplanes: input channels.
        squeeze_planes: s1x1, the number of 1x1 squeeze filters.
        expand1x1_planes: e1x1, the number of 1x1 expand filters.
        expand3x3_planes: e3x3, the number of 3x3 expand filters (padding 1, so the spatial
            size is kept).
        bypass: ``"none"``; ``"simple"`` adds the input to the output (an identity shortcut;
            needs ``inplanes == e1x1 + e3x3``); ``"complex"`` adds a 1x1 convolution of the
            input (with bias), stored as ``shortcut``.
        batch_norm: batch normalisation between each convolution and its ReLU (not in the
            paper; ``squeeze_bn``/``expand1x1_bn``/``expand3x3_bn``, absent when False so the
            state dict stays torchvision's). A complex bypass then normalises its shortcut too
            (``shortcut_bn``, as ResNet's projection shortcuts): without it the un-normalised
            shortcuts compound through the network and the model collapses (docs/MODELS.md).

    Raises:
        ValueError: an unknown ``bypass``, or a simple bypass whose channels differ (a bug in
            the caller: ``SqueezeNet`` only asks for one where they match).

    Shapes:
        input ``(N, inplanes, H, W)`` -> output ``(N, e1x1 + e3x3, H, W)``, channels ordered
        [expand 1x1, expand 3x3].
    """

    def __init__(
        self,
        inplanes: int,
        squeeze_planes: int,
        expand1x1_planes: int,
        expand3x3_planes: int,
        *,
        bypass: Bypass = "none",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        out_planes = expand1x1_planes + expand3x3_planes
        if bypass not in BYPASSES:
            raise ValueError(f"bypass must be one of {', '.join(BYPASSES)}, got {bypass!r}")
        if bypass == "simple" and inplanes != out_planes:
            raise ValueError(
                f"a simple bypass needs inplanes == e1x1 + e3x3, got {inplanes} != {out_planes}"
            )
        self.inplanes = inplanes
        self.bypass: Bypass = bypass
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.squeeze_bn = nn.BatchNorm2d(squeeze_planes) if batch_norm else None
        self.expand1x1_bn = nn.BatchNorm2d(expand1x1_planes) if batch_norm else None
        self.expand3x3_bn = nn.BatchNorm2d(expand3x3_planes) if batch_norm else None
        # Only the complex bypass has parameters; the others add no state-dict keys.
        self.shortcut: nn.Conv2d | None = (
            nn.Conv2d(inplanes, out_planes, kernel_size=1) if bypass == "complex" else None
        )
        self.shortcut_bn = (
            nn.BatchNorm2d(out_planes) if batch_norm and bypass == "complex" else None
        )

    @property
    def out_channels(self) -> int:
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        if self.squeeze_bn is not None:
            s = self.squeeze_bn(s)
        s = self.squeeze_activation(s)  # (N, s1x1, H, W)
        e1, e3 = self.expand1x1(s), self.expand3x3(s)
        if self.expand1x1_bn is not None and self.expand3x3_bn is not None:
            e1, e3 = self.expand1x1_bn(e1), self.expand3x3_bn(e3)
        out = torch.cat(
            [self.expand1x1_activation(e1), self.expand3x3_activation(e3)], 1
        )  # (N, e1x1 + e3x3, H, W)
        if self.bypass == "simple":
            out = out + x
        elif self.shortcut is not None:
            shortcut = self.shortcut(x)
            if self.shortcut_bn is not None:
                shortcut = self.shortcut_bn(shortcut)
            out = out + shortcut
        return out
