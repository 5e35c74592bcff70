"""SqueezeNet (Iandola et al., 2016): models, Deep Compression, experiments, deployment.

Members are imported on first use, so light submodules never load torch through here.
"""

from typing import TYPE_CHECKING

from squeezenet._lazy import lazy_exports

if TYPE_CHECKING:
    from squeezenet.jobs.load import load_pretrained
    from squeezenet.models import (
        Fire,
        SqueezeNet,
        SqueezeNetConfig,
        create_model,
        list_models,
    )

_MEMBERS = {
    "Fire": "models",
    "SqueezeNet": "models",
    "SqueezeNetConfig": "models",
    "create_model": "models",
    "list_models": "models",
    "load_pretrained": "jobs.load",
}
__getattr__, __dir__ = lazy_exports(__name__, _MEMBERS)
__all__ = [
    "Fire",
    "SqueezeNet",
    "SqueezeNetConfig",
    "create_model",
    "list_models",
    "load_pretrained",
]

__version__ = "0.1.0"
