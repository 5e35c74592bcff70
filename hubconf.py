"""torch.hub entry points: the shipped Deep Compression SqueezeNet v1.0, and untrained SqueezeNets.

    import torch
    model = torch.hub.load("path/to/this/repo", "squeezenet1_0_dc", source="local")
    untrained = torch.hub.load("path/to/this/repo", "squeezenet1_1", source="local", seed=0)

Entry points: ``squeezenet1_0``, ``squeezenet1_0_dc``, ``squeezenet1_1``. ``torch.hub.list`` and
``torch.hub.help`` take a GitHub repository only (``"OWNER/REPO"``, torch 2.14), as ``load``
does without ``source="local"``.

The repository's own ``src/`` goes first on ``sys.path``, so its ``squeezenet`` package is the
one imported (a warning says so when another copy was imported earlier in the same process).
Names here that are not entry points start with ``_``: ``torch.hub.list`` lists every public
callable.
"""

from __future__ import annotations

import sys as _sys
import warnings as _warnings
from pathlib import Path as _Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only in annotations: a public callable here would be listed as an entry point
    from typing import Any

    from torch import nn

dependencies = ["torch", "numpy"]

_SRC = _Path(__file__).resolve().parent / "src"
if str(_SRC) not in _sys.path:
    _sys.path.insert(0, str(_SRC))


def _check_package() -> None:
    """Warn when ``squeezenet`` came from somewhere other than this repository's ``src/``."""
    import squeezenet

    found = _Path(squeezenet.__file__ or "").resolve().parent
    if found != _SRC / "squeezenet":
        _warnings.warn(
            f"hubconf at {_SRC.parent} uses the squeezenet package already imported from "
            f"{found}, not its own",
            stacklevel=3,
        )


def squeezenet1_0_dc() -> nn.Module:
    """SqueezeNet v1.0 with the published Deep Compression weights (Han et al., 2016), decoded
    from the package's ``squeezenet1_0-dc.sqz`` (477,964 bytes) to float32, in eval mode.

    Input: (N, 3, 227, 227) float32 in Caffe's layout: BGR, values 0..255 minus the channel
    means (104, 117, 123), no division; a 227 px centre crop of a 256 px short side. Output:
    (N, 1000) ImageNet-1k class scores (softmax for probabilities). The same model with its
    preprocessing record and class names: ``squeezenet.load_pretrained("squeezenet1_0-dc")``.
    """
    _check_package()
    from squeezenet.workflows.load import load_pretrained

    return load_pretrained("squeezenet1_0-dc").model.eval()


def squeezenet1_0(**overrides: Any) -> nn.Module:
    """SqueezeNet v1.0 (Iandola et al., 2016, Table 1), untrained (Caffe-style initialisation).

    Keyword arguments go to ``squeezenet.create_model``: ``seed`` and config fields such as
    ``num_classes=10``, ``squeeze_ratio=0.25`` or ``bypass="simple"``.
    """
    _check_package()
    from squeezenet.models import create_model

    return create_model("squeezenet1_0", **overrides)


def squeezenet1_1(**overrides: Any) -> nn.Module:
    """SqueezeNet v1.1 (2.4x fewer MACs than v1.0, about the same accuracy), untrained.

    Keyword arguments go to ``squeezenet.create_model``: ``seed`` and config fields such as
    ``num_classes=10``.
    """
    _check_package()
    from squeezenet.models import create_model

    return create_model("squeezenet1_1", **overrides)
