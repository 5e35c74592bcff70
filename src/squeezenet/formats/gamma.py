"""Elias gamma codes for rANS frequency tables (docs/FORMAT.md section 6, version 3).

A fine grid's level alphabet has a long tail of rare symbols; a fixed-width table spends the
width of the largest frequency on each, a gamma code ``2 floor(log2(f + 1)) + 1`` bits.
"""

from __future__ import annotations

import numpy as np

from squeezenet.formats import spec


def gamma_bits(values: np.ndarray) -> int:
    """Bits of the gamma codes of ``values`` (each code is of ``value + 1``)."""
    v = np.asarray(values, dtype=np.int64) + 1
    return int((2 * (np.floor(np.log2(v)).astype(np.int64)) + 1).sum())


def gamma_encode(values: np.ndarray) -> bytes:
    """The gamma codes of ``values >= 0`` back to back, MSB first, zero-padded to a byte."""
    text = "".join("0" * (int(v + 1).bit_length() - 1) + format(int(v + 1), "b") for v in values)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""


def gamma_decode(raw: bytes, count: int) -> np.ndarray | None:
    """``count`` values from ``raw``, or None where the bytes break section 6's rules: a code
    with over 16 leading zeros or past the end, non-zero bits after the last code, or a
    whole byte after it."""
    text = "".join(format(byte, "08b") for byte in raw)
    values, pos = [], 0
    for _ in range(count):
        one = text.find("1", pos)
        if one < 0:
            return None
        zeros = one - pos
        end = one + zeros + 1
        if zeros > spec.MAX_GAMMA_ZEROS or end > len(text):
            return None
        values.append(int(text[one:end], 2) - 1)
        pos = end
    if "1" in text[pos:] or len(text) - pos >= 8:
        return None
    return np.array(values, dtype=np.int64)
