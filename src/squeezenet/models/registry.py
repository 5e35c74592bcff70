"""Build a registered model: `create_model` turns a name from the registry into an ``nn.Module``."""

from __future__ import annotations

from typing import Any

from torch import nn

from squeezenet.arch.config import ModelConfig, SqueezeNetConfig
from squeezenet.arch.registry import resolve_config
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.squeezenet import SqueezeNet


def build_model(config: ModelConfig, *, seed: int | None = None) -> nn.Module:
    """The network a config describes (SqueezeNet or AlexNet), initialised from ``seed``."""
    if isinstance(config, SqueezeNetConfig):
        return SqueezeNet(config, seed=seed)
    return AlexNet(config, seed=seed)


def create_model(name: str, *, seed: int | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model, e.g. ``create_model("squeezenet1_0", num_classes=10, seed=0)``.

    Args:
        name: a name from :func:`list_models`.
        seed: seeds the initialisation (same seed, same weights); ``None`` uses torch's RNG.
        **overrides: config fields to change (``squeeze_ratio=0.25``, ``bypass="simple"``...).
    """
    return build_model(resolve_config(name, **overrides), seed=seed)
