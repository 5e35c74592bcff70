"""The compressed model as plain data: where `compress` (makes it) meets `formats` (stores it).

Nothing here imports torch: the encoder never sees an ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from squeezenet.errors import ConfigError

# Codebook index width: codes are stored as uint16, so a codebook has at most 2**16 entries
# (Deep Compression Sec. 3; docs/FORMAT.md §4). The one definition; formats.spec imports it.
MAX_BITS = 16


def check_bits(value: object, what: str) -> int:
    """``value`` if it is an integer width in 1..MAX_BITS.

    Raises:
        ConfigError: otherwise; the message starts with ``what`` (e.g. ``"--bits"``).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BITS:
        raise ConfigError(f"{what}: expected an integer width in 1..{MAX_BITS}, got {value!r}")
    return value


@dataclass
class CompressedLayer:
    """One weight-shared, possibly pruned layer (Deep Compression Sec. 2-3).

    The dense weight is rebuilt as ``w = zeros(prod(shape)); w[positions] = codebook[codes];
    w.reshape(shape)``.
    """

    name: str  # state-dict prefix, e.g. "features.3.squeeze" (weight at name + ".weight")
    shape: tuple[int, ...]  # weight shape, OIHW for convolutions
    bits: int  # index width: the codebook has at most 2**bits entries (1..16)
    codebook: np.ndarray  # float32 (K,), K <= 2**bits: the shared values
    positions: np.ndarray  # int64 (n,), strictly increasing flat indices of the stored weights
    codes: np.ndarray  # uint16 (n,), codebook index of each stored weight, < K
    bias: np.ndarray | None = None  # float32 (out,), kept uncompressed, or None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def density(self) -> float:
        return len(self.positions) / max(self.numel, 1)

    def dense_weight(self) -> np.ndarray:
        """The decoded float32 weight of ``shape``."""
        flat = np.zeros(self.numel, dtype=np.float32)
        flat[self.positions] = self.codebook[self.codes.astype(np.int64)]
        return flat.reshape(self.shape)


@dataclass
class CompressedModel:
    """Everything needed to rebuild a model: architecture, preprocessing, classes, layers."""

    model_name: str  # registry name, e.g. "squeezenet1_0"
    config: dict[str, Any]  # the model config's fields (JSON-able), e.g. {"final_conv_padding": 1}
    preprocess: dict[str, Any] | None = None  # squeezenet.data.presets.Preprocess.to_dict()
    class_names: list[str] | None = None  # one per output class, or None
    layers: list[CompressedLayer] = field(default_factory=list)
    # Parameters and buffers kept as plain float32 arrays (e.g. batch-norm statistics).
    dense: dict[str, np.ndarray] = field(default_factory=dict)
