"""SqueezeNet model family: Fire, SqueezeNet (v1.0, v1.1, bypass, generator), AlexNet, registry."""

from squeezenet.models.alexnet import AlexNet, AlexNetConfig
from squeezenet.models.facts import Accuracy, ModelFacts
from squeezenet.models.fire import Bypass, Fire
from squeezenet.models.registry import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    list_models,
    register_model,
    resolve_config,
)
from squeezenet.models.squeezenet import SqueezeNet, SqueezeNetConfig, init_weights_

__all__ = [
    "Accuracy",
    "AlexNet",
    "AlexNetConfig",
    "Bypass",
    "Fire",
    "ModelFacts",
    "ModelSpec",
    "SqueezeNet",
    "SqueezeNetConfig",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "init_weights_",
    "list_models",
    "register_model",
    "resolve_config",
]
