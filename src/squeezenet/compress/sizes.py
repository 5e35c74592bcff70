"""Model size after each Deep Compression stage, counted the same way for every report."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from squeezenet.formats.model import CompressedModel
from squeezenet.formats.sqz import gap_symbols

# AlexNet at 32 bits: 61,100,840 parameters x 4 bytes, the paper's Table 2 baseline (240 MB).
ALEXNET_DENSE_BYTES = 244_403_360
STAGE_GAP_BITS = 4  # relative-index width of the computed stage sizes (Deep Compression Sec. 2)


@dataclasses.dataclass(frozen=True)
class StageSize:
    """The size of the model after one Deep Compression stage (Deep Compression Fig. 1)."""

    stage: str  # dense | pruned | quantized | file
    bytes: int
    measured: bool  # True: bytes of a real file; False: computed from the layer contents
    note: str  # how the bytes are counted


def stage_sizes(cm: CompressedModel, file_bytes: int) -> tuple[StageSize, ...]:
    """Sizes after each stage, all counting biases and dense tensors at 32 bits.

    ``pruned``: stored weights at 32 bits plus 4-bit relative positions (with the escape
    symbols of docs/FORMAT.md); ``quantized``: the same with ``bits``-wide codes and float32
    codebooks (before entropy coding); ``file``: the .sqz bytes, header and CRC included.
    """
    extra = 32 * sum(int(np.asarray(a).size) for a in cm.dense.values())
    dense = pruned = quantized = extra
    for layer in cm.layers:
        bias = 32 * (len(layer.bias) if layer.bias is not None else 0)
        positions = STAGE_GAP_BITS * len(gap_symbols(np.asarray(layer.positions), STAGE_GAP_BITS))
        stored = len(layer.positions)
        dense += 32 * layer.numel + bias
        pruned += 32 * stored + positions + bias
        quantized += layer.bits * stored + positions + 32 * len(layer.codebook) + bias
    return (
        StageSize("dense", math.ceil(dense / 8), False, "every weight at 32 bits"),
        StageSize("pruned", math.ceil(pruned / 8), False, "stored weights at 32 bits + 4-bit gaps"),
        StageSize(
            "quantized", math.ceil(quantized / 8), False, "codes + 4-bit gaps + float32 codebooks"
        ),
        StageSize("file", file_bytes, True, ".sqz file: entropy-coded streams, header, CRC"),
    )
