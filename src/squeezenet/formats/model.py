"""The compressed model as plain data: what a compressor makes, the .sqz format stores and a
runtime decodes. Nothing here imports torch: the encoder never sees an ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from squeezenet.errors import ConfigError
from squeezenet.formats.grid import GridCode
from squeezenet.formats.spec import MAX_BITS

__all__ = ["MAX_BITS", "CompressedLayer", "CompressedModel", "check_bits"]


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
    # Set when the weights lie on a grid (a uniform or trellis-coded quantizer): the encoder
    # then writes a grid record; codebook / positions / codes must describe the same weights.
    grid: GridCode | None = None
    # Set (version 4, grid layers only) when the bias lies on a uniform grid too: the encoder
    # writes its levels instead of floats; ``bias`` must equal ``bias_grid.values()``.
    bias_grid: GridCode | None = None

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
    preprocess: dict[str, Any] | None = None  # squeezenet.arch.preprocess.Preprocess.to_dict()
    class_names: list[str] | None = None  # one per output class, or None
    layers: list[CompressedLayer] = field(default_factory=list)
    # Parameters and buffers kept as plain float32 arrays (e.g. batch-norm statistics).
    dense: dict[str, np.ndarray] = field(default_factory=dict)
