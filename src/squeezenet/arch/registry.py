"""The model registry as plain data: name -> config, description and published facts.

Nothing here imports torch; ``squeezenet.models.create_model`` builds a registered name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from squeezenet.arch.config import AlexNetConfig, Bypass, ModelConfig, SqueezeNetConfig, Stem
from squeezenet.arch.facts import FACTS, ModelFacts
from squeezenet.errors import ConfigError


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
