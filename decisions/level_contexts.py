"""How much context modelling could save on a grid file's level streams: the empirical
conditional entropy of each layer's levels given contexts a coder could use (the dependent
quantizer of the weight, whether the previous weight in scan order or the same weight of the
previous output row is non-zero, the density of its input column and output row).

It decided not to add context-coded level streams to the format for issue 32: on the 335,167-byte
error-feedback file the best of these contexts codes the levels in 316,453 bytes against 322,017
without (1.7 %; the column and row densities would cost side information too), so the bytes have
to come from the quantization. No images are used.

    python decisions/level_contexts.py benchmarks/results/feedback/squeezenet1_0-dc-338k.sqz
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from squeezenet.formats.grid import dq_quantizers
from squeezenet.formats.sqz import read_sqz


def conditional_bits(context: np.ndarray, symbols: np.ndarray) -> float:
    """Bits of ``symbols`` coded with one adaptive-free table per ``context`` value."""
    _, joint = np.unique(context.astype(np.int64) * (1 << 20) + symbols, return_counts=True)
    _, per = np.unique(context, return_counts=True)
    return float(-(joint * np.log2(joint)).sum() + (per * np.log2(per)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sqz")
    args = parser.parse_args()
    totals: dict[str, float] = {}
    for layer in read_sqz(args.sqz).layers:
        code = layer.grid
        if code is None:
            continue
        k = np.asarray(code.levels).reshape(-1).astype(np.int64)
        q = dq_quantizers(k, code.period_log2) if code.quantizer == 1 else np.zeros_like(k)
        symbols = np.abs(k) * 2 + (k < 0)
        nonzero = (k != 0).astype(np.int64)
        rows = layer.shape[0]
        width = k.size // rows
        previous = np.concatenate([[0], nonzero[:-1]])
        above = np.concatenate([np.zeros(width, np.int64), nonzero[:-width]])
        grid = nonzero.reshape(rows, width)
        column = np.minimum((grid.mean(0) * 4).astype(np.int64), 3)
        column = np.broadcast_to(column, (rows, width)).reshape(-1)
        row = np.repeat(np.minimum((grid.mean(1) * 4).astype(np.int64), 3), width)
        contexts = {
            "none": np.zeros_like(k),
            "quantizer": q,
            "quantizer, previous": q * 2 + previous,
            "quantizer, previous, above": q * 4 + previous * 2 + above,
            "quantizer, previous, column density": q * 8 + previous * 4 + column,
            "quantizer, previous, column and row density": (
                q * 32 + previous * 16 + column * 4 + row
            ),
        }
        for name, context in contexts.items():
            totals[name] = totals.get(name, 0.0) + conditional_bits(context, symbols)
    print(json.dumps({name: round(bits / 8) for name, bits in totals.items()}, indent=1))


if __name__ == "__main__":
    main()
