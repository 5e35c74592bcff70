"""SqueezeNet (Iandola et al., 2016): models, Deep Compression, experiments, deployment.

The torch-free layers (``squeezenet.formats``, ``squeezenet.arch``) import without torch. The
names below that need torch (``create_model``, ``SqueezeNet``, ``load_pretrained``...) are
imported from their layer on first use, so ``import squeezenet.formats`` never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.registry import list_models

if TYPE_CHECKING:
    from squeezenet.models import Fire, SqueezeNet, create_model
    from squeezenet.workflows.load import load_pretrained

# The torch names this package re-exports: name -> the module that defines it.
_TORCH_NAMES = {
    "Fire": "squeezenet.models",
    "SqueezeNet": "squeezenet.models",
    "create_model": "squeezenet.models",
    "load_pretrained": "squeezenet.workflows.load",
}

__all__ = [
    "Fire",
    "SqueezeNet",
    "SqueezeNetConfig",
    "create_model",
    "list_models",
    "load_pretrained",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'squeezenet' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
