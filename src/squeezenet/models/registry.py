"""Model registry: names -> (config, builder, published facts); `create_model`, `list_models`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.models.alexnet import AlexNet, AlexNetConfig
from squeezenet.models.facts import FACTS, ModelFacts
from squeezenet.models.fire import Bypass
from squeezenet.models.squeezenet import SqueezeNet, SqueezeNetConfig, Stem

ModelConfig = SqueezeNetConfig | AlexNetConfig


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str  # registry key, e.g. "squeezenet1_0"
    config: ModelConfig  # the defaults that `create_model(name)` builds
    description: str  # one line for `list_models` tables
    facts: ModelFacts  # parameters, MACs, input sizes, preset, published accuracy (facts.py)

    @property
    def input_size(self) -> int:
        """Natural square input size in pixels (224 for ImageNet models)."""
        return self.facts.input_size

    def build(self, config: ModelConfig, *, seed: int | None = None) -> nn.Module:
        if isinstance(config, SqueezeNetConfig):
            return SqueezeNet(config, seed=seed)
        return AlexNet(config, seed=seed)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry; registering a name twice is an error (a bug, not input)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered; pick another name")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


class UnknownModelError(ConfigError):
    """A model name that is not in the registry (the message lists the known ones)."""


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; ``UnknownModelError`` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def resolve_config(name: str, **overrides: Any) -> ModelConfig:
    """The config of ``name`` with ``overrides`` applied (validated by the config itself).

    Raises:
        UnknownModelError: ``name`` is not registered.
        ConfigError: an override names no field of the config, or has a value it rejects.
    """
    spec = get_spec(name)
    fields = {f.name for f in dataclasses.fields(spec.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(
            f"{name} has no option {', '.join(unknown)}; valid options: {', '.join(sorted(fields))}"
        )
    return dataclasses.replace(spec.config, **overrides)


def create_model(name: str, *, seed: int | None = None, **overrides: Any) -> nn.Module:
    """Build a registered model, e.g. ``create_model("squeezenet1_0", num_classes=10, seed=0)``.

    Args:
        name: a name from :func:`list_models`.
        seed: seeds the initialisation (same seed, same weights); ``None`` uses torch's RNG.
        **overrides: config fields to change (``squeeze_ratio=0.25``, ``bypass="simple"``...).
    """
    spec = get_spec(name)
    return spec.build(resolve_config(name, **overrides), seed=seed)


def _register_defaults() -> None:
    versions: tuple[tuple[str, Stem], ...] = (("1_0", "v1.0"), ("1_1", "v1.1"))
    bypasses: tuple[Bypass, ...] = ("simple", "complex")
    for version, stem in versions:
        base = SqueezeNetConfig(stem=stem)
        title = f"SqueezeNet v{version[0]}.{version[2]}"
        name = f"squeezenet{version}"
        register_model(ModelSpec(name, base, title, FACTS[name]))
        for bypass in bypasses:
            register_model(
                ModelSpec(
                    f"{name}_{bypass}_bypass",
                    dataclasses.replace(base, bypass=bypass),
                    f"{title} with {bypass} bypass (Sec. 6)",
                    FACTS[f"{name}_{bypass}_bypass"],
                )
            )
    register_model(
        ModelSpec(
            "squeezenet_small",
            SqueezeNetConfig(stem="small", num_classes=10, batch_norm=True),
            "SqueezeNet with batch norm for 28-32 px images (in_channels=1: Fashion-MNIST)",
            FACTS["squeezenet_small"],
        )
    )
    register_model(
        ModelSpec(
            "alexnet", AlexNetConfig(), "AlexNet (torchvision), the size baseline", FACTS["alexnet"]
        )
    )


_register_defaults()
