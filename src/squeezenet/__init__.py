"""SqueezeNet (Iandola et al., 2016): models, Deep Compression, experiments, deployment.

What each install gives:

- every install (``pip install squeezenet-dc``, no torch): ``squeezenet.load(name_or_path)``
  returns a :class:`~squeezenet.runtime.Classifier` that runs a ``.sqz`` or weights file in numpy
  (``predict`` for images, ``logits`` for batches); ``SqueezeNetConfig`` and ``list_models``.
- with torch (``pip install 'squeezenet-dc[torch]'``): also ``create_model``, ``SqueezeNet``,
  ``Fire`` and ``load_pretrained``, which returns a ``LoadedModel`` whose ``.model`` is the
  decoded ``torch.nn.Module``. Without torch these names raise a one-line
  ``MissingDependencyError`` naming the pip command.

The names that need torch are imported from their layer on first use, so ``import squeezenet``
never loads torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.registry import list_models
from squeezenet.errors import MissingDependencyError, pip_command
from squeezenet.runtime.classifier import Classifier, load

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
    "Classifier",
    "Fire",
    "SqueezeNet",
    "SqueezeNetConfig",
    "create_model",
    "list_models",
    "load",
    "load_pretrained",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'squeezenet' has no attribute {name!r}")
    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError(
            f"squeezenet.{name} needs PyTorch, which this install does not have: "
            f"{pip_command('torch')}; squeezenet.load() classifies without it"
        )
    return getattr(importlib.import_module(module), name)
