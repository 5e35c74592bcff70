"""Model registry: names -> (config, builder, natural input size); `create_model`, `list_models`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from squeezenet.models.alexnet import AlexNet, AlexNetConfig
from squeezenet.models.squeezenet import SqueezeNet, SqueezeNetConfig

ModelConfig = SqueezeNetConfig | AlexNetConfig


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str  # registry key, e.g. "squeezenet1_0"
    config: ModelConfig  # the defaults that `create_model(name)` builds
    input_size: int  # natural square input size in pixels (224 for ImageNet models)
    description: str  # one line for `list_models` tables

    def build(self, config: ModelConfig, *, seed: int | None = None) -> nn.Module:
        if isinstance(config, SqueezeNetConfig):
            return SqueezeNet(config, seed=seed)
        return AlexNet(config, seed=seed)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry; registering a name twice is an error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered; pick another name")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


class UnknownModelError(ValueError):
    """A model name that is not in the registry."""


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; ``UnknownModelError`` lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def resolve_config(name: str, **overrides: Any) -> ModelConfig:
    """The config of ``name`` with ``overrides`` applied (validated by the config itself)."""
    spec = get_spec(name)
    fields = {f.name for f in dataclasses.fields(spec.config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
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
    for version, stem in (("1_0", "v1.0"), ("1_1", "v1.1")):
        base = SqueezeNetConfig(stem=stem)  # type: ignore[arg-type]
        register_model(
            ModelSpec(f"squeezenet{version}", base, 224, f"SqueezeNet v{version[0]}.{version[2]}")
        )
        for bypass in ("simple", "complex"):
            register_model(
                ModelSpec(
                    f"squeezenet{version}_{bypass}_bypass",
                    dataclasses.replace(base, bypass=bypass),
                    224,
                    f"SqueezeNet v{version[0]}.{version[2]} with {bypass} bypass (Sec. 6)",
                )
            )
    register_model(
        ModelSpec(
            "squeezenet_small",
            SqueezeNetConfig(stem="small", num_classes=10, batch_norm=True),
            32,
            "SqueezeNet with batch norm for 28-32 px images (in_channels=1: Fashion-MNIST)",
        )
    )
    register_model(
        ModelSpec("alexnet", AlexNetConfig(), 224, "AlexNet (torchvision), the size baseline")
    )


_register_defaults()
