"""The model description as plain data, without torch: configs, the registry of names, published
facts and preprocessing presets. Enough to know what a file's network is and how it wants its
pixels; ``squeezenet.models`` builds the ``nn.Module``.
"""

from squeezenet.arch.config import (
    BYPASSES,
    STEMS,
    AlexNetConfig,
    Bypass,
    ModelConfig,
    SqueezeNetConfig,
    Stem,
)
from squeezenet.arch.facts import FACTS, Accuracy, ModelFacts
from squeezenet.arch.preprocess import CAFFE, CIFAR10, FASHION_MNIST, IMAGENET, PRESETS, Preprocess
from squeezenet.arch.registry import (
    ModelSpec,
    UnknownModelError,
    get_spec,
    list_models,
    register_model,
    resolve_config,
)

__all__ = [
    "BYPASSES",
    "CAFFE",
    "CIFAR10",
    "FACTS",
    "FASHION_MNIST",
    "IMAGENET",
    "PRESETS",
    "STEMS",
    "Accuracy",
    "AlexNetConfig",
    "Bypass",
    "ModelConfig",
    "ModelFacts",
    "ModelSpec",
    "Preprocess",
    "SqueezeNetConfig",
    "Stem",
    "UnknownModelError",
    "get_spec",
    "list_models",
    "register_model",
    "resolve_config",
]
