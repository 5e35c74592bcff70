"""AlexNet, torchvision's layout: the paper's size baseline (Table 2, 61.1 M parameters)."""

from __future__ import annotations

import torch
from torch import nn

from squeezenet.arch.config import AlexNetConfig
from squeezenet.models.squeezenet import init_weights_


class AlexNet(nn.Module):
    """AlexNet with torchvision's state-dict keys (``features``, ``avgpool``, ``classifier``).

    Shapes: input ``(N, in_channels, 224, 224)`` (any size >= 63, as in
    ``arch/facts.py``) -> logits ``(N, num_classes)``.
    """

    def __init__(self, config: AlexNetConfig | None = None, *, seed: int | None = None) -> None:
        super().__init__()
        self.config = config = config or AlexNetConfig()
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=config.dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=config.dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, config.num_classes),
        )
        init_weights_(self, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        logits: torch.Tensor = self.classifier(x)
        return logits  # (N, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        """Named rows for the summary; applied in order they equal ``forward``."""
        f, c = self.features, self.classifier
        return [
            ("conv1", nn.Sequential(f[0], f[1])),
            ("maxpool1", f[2]),
            ("conv2", nn.Sequential(f[3], f[4])),
            ("maxpool2", f[5]),
            ("conv3", nn.Sequential(f[6], f[7])),
            ("conv4", nn.Sequential(f[8], f[9])),
            ("conv5", nn.Sequential(f[10], f[11])),
            ("maxpool5", f[12]),
            ("avgpool", nn.Sequential(self.avgpool, nn.Flatten(1))),
            ("fc6", nn.Sequential(c[0], c[1], c[2])),
            ("fc7", nn.Sequential(c[3], c[4], c[5])),
            ("fc8", c[6]),
        ]
