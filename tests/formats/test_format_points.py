"""The ten points version 3 of docs/FORMAT.md left open, settled there: one test per point.

Each test is named after its point and pins what the text now says with hand-built bytes;
every rejection asserts the error's ``.field`` and ``.offset``.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np

from formats.test_format_rules import (
    LAYER_AT,
    dense,
    header_record,
    layer,
    rejects,
    stored_at,
)
from formats.test_sqz import GOLDEN_HUFFMAN, GOLDEN_RANS, GOLDEN_RAW, recrc
from squeezenet.formats import decode_sqz, encode_sqz, huffman, rans, spec
from squeezenet.formats.bitio import varint
from squeezenet.formats.gamma import gamma_bits, gamma_encode
from squeezenet.formats.grid import zigzag
from squeezenet.formats.sqz_decode import parse_sqz

GRID = spec.FLAG_GRID
FLT_MAX = float(np.finfo(np.float32).max)


def sqz_file(*layers: bytes, version: int = 3, dense_records: tuple[bytes, ...] = ()) -> bytes:
    body = spec.MAGIC + bytes([version]) + header_record()
    body += varint(len(layers)) + b"".join(layers)
    body += varint(len(dense_records)) + b"".join(dense_records)
    return body + struct.pack("<I", zlib.crc32(body))


def as_version(data: bytes, version: int) -> bytes:
    return recrc(data[:4] + bytes([version]) + data[5:])


def raw_stream(symbols: list[int], width: int) -> bytes:
    packed, _ = huffman.pack_bits(np.array(symbols, dtype=np.int64), width)
    return b"\x00" + varint(len(packed)) + packed


def grid_record(
    symbols: list[int],
    *,
    bits: int,
    step: float | bytes,
    quantizer: int = spec.QUANTIZER_UNIFORM,
    flags: int = GRID,
    stream: bytes | None = None,
) -> bytes:
    """A grid layer "g" of shape (len(symbols),) (section 4a), its level stream raw by default."""
    step_bytes = step if isinstance(step, bytes) else struct.pack("<f", step)
    return (
        b"\x01g\x01"
        + varint(len(symbols))
        + bytes([bits, flags, quantizer])
        + step_bytes
        + b"\x04"  # state period 2**4
        + (raw_stream(symbols, bits) if stream is None else stream)
    )


def with_preprocess(scale: str, crop: str = "32") -> bytes:
    """A version-3 file of no tensors whose preprocessing has these JSON spellings."""
    text = (
        '{"classes":null,"config":{},"model":"m","preprocess":{"crop":' + crop + ","
        '"mean":[0,0,0],"name":"x","resize":0,"std":[1,1,1],"value_scale":' + scale + "}}"
    ).encode()
    body = spec.MAGIC + b"\x03" + header_record(text) + b"\x00\x00"
    return body + struct.pack("<I", zlib.crc32(body))


def grid_weights(data: bytes) -> np.ndarray:
    """The decoded float32 weights of the file's only layer, with warnings as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return decode_sqz(data).layers[0].dense_weight().reshape(-1)


def f32_bits(values: np.ndarray) -> list[int]:
    return np.asarray(values, np.float32).view(np.uint32).tolist()


# --- (a) -------------------------------------------------------------------------------------


def test_bits_and_flags_check_order() -> None:
    """bits 1..16 first, then flags (reserved, BIAS16), then GRID's flags, then GRID's bits."""
    bits_at, flags_at = LAYER_AT + 4, LAYER_AT + 5  # "g": name length, name, ndim, dim, bits

    def grid_head(bits: int, flags: int, version: int = 3) -> bytes:
        return sqz_file(grid_record([1, 2], bits=bits, step=1.0, flags=flags), version=version)

    assert grid_weights(grid_head(15, GRID)).tolist() == [1.0, -1.0]
    # (1) bits outside 1..16 wins over any flags byte
    rejects(grid_head(17, 0xFF), "layer 0 bits", bits_at, "outside 1..16")
    rejects(grid_head(0, GRID | spec.FLAG_FLOAT16), "layer 0 bits", bits_at, "outside 1..16")
    # (2) a reserved bit or BIAS16 without BIAS wins over a grid layer's bits 16
    rejects(grid_head(16, GRID | 0x20), "layer 0 flags", flags_at, "reserved bits")
    rejects(grid_head(16, GRID | spec.FLAG_BIAS16), "layer 0 flags", flags_at, "BIAS16")
    rejects(grid_head(16, GRID, version=2), "layer 0 flags", flags_at, "reserved bits")
    # (3) FLOAT16 / COMPLEMENT with GRID wins over bits 16
    for bad in (spec.FLAG_FLOAT16, spec.FLAG_COMPLEMENT):
        rejects(grid_head(16, GRID | bad), "layer 0 flags", flags_at, "FLOAT16 and COMPLEMENT")
    # (4) only then bits over 15, reported at the bits byte, one before flags
    rejects(grid_head(16, GRID), "layer 0 bits", bits_at, "bits 16 at byte .* over 15")
    # a codebook layer keeps bits 16
    codebook = layer(bits=16, codes=raw_stream([0, 1], 16))
    assert decode_sqz(sqz_file(codebook)).layers[0].bits == 16


# --- (b) -------------------------------------------------------------------------------------


def test_gamma_table_errors_are_at_the_first_table_byte() -> None:
    """Every gamma-table error is "rANS frequencies" at the table's first byte; section 1's
    padding rule (error at the last byte) does not apply to it."""
    symbols = [0] * 24 + [1] * 4 + [2] * 2 + [3] * 2
    freqs = np.array([24, 4, 2, 2])  # at precision 5: they sum to 32, none over 24
    coded = rans.encode(np.array(symbols), freqs, 5, block_size=16)
    blocks = b"\x04" + b"".join(varint(int(n)) for n in coded.block_bytes) + coded.payload
    table = gamma_encode(freqs)
    assert (len(table), 8 * len(table) - gamma_bits(freqs)) == (3, 4)  # 4 padding bits

    def with_table(table: bytes, declared: int | None = None, rest: bytes = blocks) -> bytes:
        nbytes = len(table) if declared is None else declared
        body = b"\x04\x05\x00" + varint(nbytes) + table + rest  # T 4, P 5, fw 0 (gamma)
        stream = b"\x02" + varint(len(body)) + body
        return sqz_file(grid_record(symbols, bits=2, step=1.0, stream=stream))

    good = with_table(table)
    levels = decode_sqz(good).layers[0].grid.levels  # symbols 0 1 2 3: levels 0 1 -1 2
    assert levels.tolist() == [0] * 24 + [1] * 4 + [-1] * 2 + [2] * 2
    stream_at = LAYER_AT + 12  # name length, name, ndim, dim, bits, flags, quantizer, step, r
    first = stream_at + 2 + 4  # codec, length; T, P, fw, table bytes
    what = "layer 0 level stream rANS frequencies"
    assert good[first : first + 3] == table
    padded = table[:2] + bytes([table[2] | 1])  # a non-zero padding bit in the last byte
    rejects(with_table(padded), what, first, "are not 4 gamma codes")
    rejects(with_table(table + b"\x00"), what, first, "are not 4 gamma codes")  # a whole byte
    rejects(with_table(table[:2]), what, first, "are not 4 gamma codes")  # a code runs past
    too_many = gamma_encode(np.array([24, 4, 2, 3]))  # sums to 33
    rejects(with_table(too_many), what, first, "do not sum to 2\\*\\*5")
    rejects(with_table(table, declared=20, rest=b""), what, first, "runs past the end")


# --- (c) -------------------------------------------------------------------------------------


def test_version_3_file_without_version_3_features_is_valid() -> None:
    """The version is what a file may use: a v3 file that could have been v2 decodes as its v2
    twin; only the encoder writes the lowest sufficient version."""
    for data in (GOLDEN_RAW, GOLDEN_HUFFMAN, GOLDEN_RANS):
        assert data[4] == 2
        v2, v3 = decode_sqz(data), decode_sqz(as_version(data, 3))
        assert parse_sqz(as_version(data, 3)).version == 3
        assert v3.model_name == v2.model_name and v3.class_names == v2.class_names
        for a, b in zip(v2.layers, v3.layers, strict=True):
            assert f32_bits(a.dense_weight()) == f32_bits(b.dense_weight())
            assert f32_bits(a.bias if a.bias is not None else []) == f32_bits(
                b.bias if b.bias is not None else []
            )
        assert encode_sqz(v3)[4] == 2  # the encoder writes 2 again
    back = encode_sqz(decode_sqz(as_version(GOLDEN_RAW, 3)), codec="raw", gap_bits=2)
    assert back == GOLDEN_RAW


# --- (d) -------------------------------------------------------------------------------------


def test_grid_multiple_bound_is_2_to_the_15() -> None:
    """bits 15, symbol 32767: k = 16384 and m = 32768 = 2**15 (not < 2**15), exact in binary32;
    the most negative m is -32766."""
    symbols = [32767, 32766]  # k = 16384, then k = -16383
    dependent = sqz_file(grid_record(symbols, bits=15, step=1.0, quantizer=1))
    assert grid_weights(dependent).tolist() == [32768.0, -32766.0]  # both in state 0: q = 0
    uniform = sqz_file(grid_record(symbols, bits=15, step=1.0))
    assert grid_weights(uniform).tolist() == [16384.0, -16383.0]
    rejects(sqz_file(grid_record(symbols, bits=16, step=1.0)), "layer 0 bits", LAYER_AT + 4, "15")


# --- (e) -------------------------------------------------------------------------------------


def test_grid_weight_is_plus_zero_exactly_where_the_level_is_0() -> None:
    """m = 0 only for k = 0 and gives +0; any other m, even times the smallest step, is a
    non-zero (subnormal) weight: no -0, no flush to zero."""
    tiny = struct.pack("<I", 1)  # step 2**-149, the smallest binary32 > 0
    uniform = sqz_file(grid_record(zigzag(np.array([0, 1, -1, 2])).tolist(), bits=3, step=tiny))
    assert f32_bits(grid_weights(uniform)) == [0x00000000, 0x00000001, 0x80000001, 0x00000002]
    # dependent: k = 1 (m = 2), then k = 0 in state 2 (q = 1) is still m = 0, then k = -1
    dependent = sqz_file(grid_record([1, 0, 2], bits=3, step=tiny, quantizer=1))
    assert f32_bits(grid_weights(dependent)) == [0x00000002, 0x00000000, 0x80000002]


# --- (f) -------------------------------------------------------------------------------------


def test_grid_overflow_is_infinity_not_an_error() -> None:
    """A product at or over 2**128 - 2**103 rounds to +-inf: a valid weight, no warning."""
    symbols = zigzag(np.array([1, -1, 2, -2])).tolist()
    data = sqz_file(grid_record(symbols, bits=3, step=FLT_MAX))
    assert grid_weights(data).tolist() == [FLT_MAX, -FLT_MAX, np.inf, -np.inf]
    # 31 * 1082401 * 2**103 is 2**128 - 2**103 exactly: a tie, which goes to even (+inf) ...
    step = 1082401 * 2.0**103
    assert 31 * step == 2.0**128 - 2.0**103 and float(np.float32(step)) == step
    tie = sqz_file(grid_record([61, 62], bits=7, step=step))  # k = 31, then k = -31
    assert grid_weights(tie).tolist() == [np.inf, -np.inf]
    # ... and 33 * 16268815 * 2**99 = 2**128 - 17 * 2**99, just below it, rounds to FLT_MAX
    step = 16268815 * 2.0**99
    assert 33 * step == 2.0**128 - 17 * 2.0**99 and float(np.float32(step)) == step
    below = sqz_file(grid_record([65, 66], bits=7, step=step))  # k = 33, then k = -33
    assert grid_weights(below).tolist() == [FLT_MAX, -FLT_MAX]
    model = decode_sqz(data)
    assert model.layers[0].codebook.tolist() == [-np.inf, -FLT_MAX, FLT_MAX, np.inf]


# --- (g) -------------------------------------------------------------------------------------


def test_bias16_without_bias_is_a_flags_error() -> None:
    """BIAS16 without BIAS: field "layer i flags" at the flags byte, in every version, for
    codebook and grid layers alike; with BIAS it is a float16 bias."""
    flags_at = LAYER_AT + 5
    for version in (1, 2, 3):
        codebook = layer(flags=spec.FLAG_BIAS16)
        rejects(sqz_file(codebook, version=version), "layer 0 flags", flags_at, "BIAS16")
    grid = grid_record([1, 2], bits=2, step=1.0, flags=GRID | spec.FLAG_BIAS16)
    rejects(sqz_file(grid), "layer 0 flags", flags_at, "BIAS16 without BIAS")
    half = layer(flags=spec.FLAG_BIAS | spec.FLAG_BIAS16, bias=b"\x02\x00\x34\x00\xb8")
    assert decode_sqz(sqz_file(half)).layers[0].bias.tolist() == [0.25, -0.5]


# --- (h) -------------------------------------------------------------------------------------


def test_value_scale_is_compared_as_a_number() -> None:
    """value_scale is valid when its JSON number's nearest binary64 is 1 or 255, whatever the
    spelling; only "integer" members depend on the spelling."""
    for scale, value in [("255", 255), ("255.0", 255), ("2.55e2", 255), ("25500E-2", 255),
                         ("255.00000000000001", 255), ("1", 1), ("1.0", 1), ("1e0", 1),
                         ("0.1e1", 1)]:  # fmt: skip
        model = decode_sqz(with_preprocess(scale))
        assert model.preprocess is not None and model.preprocess["value_scale"] == value, scale
    for scale in ("255.5", "254.9999999", "2", "0", '"255"', "true", "null"):
        data = with_preprocess(scale)
        rejects(data, "header preprocess", stored_at(data), "invalid")
    data = with_preprocess("255", crop="32.0")  # "integer": spelling matters
    rejects(data, "header preprocess", stored_at(data), "invalid")
    assert json.loads("255.00000000000001") == 255.0


# --- (i) -------------------------------------------------------------------------------------


def test_dense_dtype_0_is_the_only_dtype() -> None:
    """dtype 0 (f32le) is the only dense dtype in versions 1 to 3; any other is an error."""
    good = dense()
    assert good[2] == spec.DTYPE_FLOAT32  # name length, name, dtype
    dtype_at = LAYER_AT + 1 + 2  # after the layer count 0: dense count, name length, name
    for version in (1, 2, 3):
        model = decode_sqz(sqz_file(version=version, dense_records=(good,)))
        assert model.dense["d"].tolist() == [1.0, 2.0]
        for dtype in (1, 2, 255):
            bad = good[:2] + bytes([dtype]) + good[3:]
            data = sqz_file(version=version, dense_records=(bad,))
            rejects(data, "dense tensor 0 dtype", dtype_at, "outside 0..0")


# --- (j) -------------------------------------------------------------------------------------


def test_rans_codec_is_versions_2_and_3() -> None:
    """Codec 2 (rANS) is valid in versions 2 and 3 and an error of the codec in version 1."""
    parsed = parse_sqz(GOLDEN_RANS)
    first = min(
        (rec.offset, f"layer {p.index} {kind} stream codec")
        for p in parsed.layers
        for kind, rec in (("code", p.codes), ("position", p.positions))
        if rec.codec == spec.CODEC_RANS
    )
    want = decode_sqz(GOLDEN_RANS).layers[0].dense_weight()
    for version in (2, 3):
        got = decode_sqz(as_version(GOLDEN_RANS, version)).layers[0].dense_weight()
        assert f32_bits(got) == f32_bits(want)
    rejects(as_version(GOLDEN_RANS, 1), first[1], first[0], "outside 0..1")
