"""SqueezeNet model family as ``nn.Module``: Fire, SqueezeNet (v1.0, v1.1, bypass, generator),
AlexNet, ``create_model``. The configs and the registry of names are plain data in
``squeezenet.arch`` and are re-exported here.
"""

from squeezenet.arch.config import AlexNetConfig, Bypass, SqueezeNetConfig
from squeezenet.arch.facts import Accuracy, ModelFacts
from squeezenet.arch.registry import (
    ModelSpec,
    UnknownModelError,
    get_spec,
    list_models,
    register_model,
    resolve_config,
)
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.fire import Fire
from squeezenet.models.registry import build_model, create_model
from squeezenet.models.squeezenet import SqueezeNet, init_weights_

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
    "build_model",
    "create_model",
    "get_spec",
    "init_weights_",
    "list_models",
    "register_model",
    "resolve_config",
]
