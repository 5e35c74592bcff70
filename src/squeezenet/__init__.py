"""SqueezeNet (Iandola et al., 2016): models, Deep Compression, experiments, deployment."""

from squeezenet.models import (
    Fire,
    SqueezeNet,
    SqueezeNetConfig,
    create_model,
    list_models,
)

__all__ = ["Fire", "SqueezeNet", "SqueezeNetConfig", "create_model", "list_models"]
__version__ = "0.1.0"
