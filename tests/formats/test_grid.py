"""Versions 3 and 4 of .sqz (docs/FORMAT.md section 4a): grid layers, float16 biases, gamma
tables; a grid layer's bias on a grid (version 4)."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest

from squeezenet.formats import SqzFormatError, decode_sqz, encode_sqz, inspect_sqz, spec
from squeezenet.formats.bitio import Reader
from squeezenet.formats.gamma import gamma_decode, gamma_encode
from squeezenet.formats.grid import DQ_NEXT, GridCode, dq_quantizers_many, unzigzag, zigzag
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.sqz_decode import parse_sqz

HEADER = b'\x00\x3d{"classes":null,"config":{},"model":"tiny","preprocess":null}'
# Levels 1, -1, 2, 0, -2, 3 under the dependent quantizer, step 0.5, bias [0.25, -0.5] as f16.
GRID_RECORD = bytes.fromhex(
    "04636f6e76"  # name "conv"
    "020203"  # ndim 2, dims 2 3
    "031a"  # bits 3, flags BIAS | GRID | BIAS16
    "01"  # quantizer: dependent
    "0000003f"  # step 0.5
    "04"  # state period 2**4
    "02003400b8"  # bias length 2, f16 0.25 -0.5
    "0003298940"  # level stream: raw, 3 bytes: symbols 1 2 3 0 4 5 at 3 bits
)


def finish(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def v3_file(record: bytes = GRID_RECORD, version: int = 3) -> bytes:
    return finish(b"\x89SQZ" + bytes([version]) + HEADER + b"\x01" + record + b"\x00")


def reference_weights(symbols: list[int], step: float, period: int) -> list[float]:
    """Section 4a read literally, one weight at a time."""
    out, state = [], 0
    for j, s in enumerate(symbols):
        if j % (1 << period) == 0:
            state = 0
        k = 0 if s == 0 else ((s + 1) // 2 if s % 2 else -s // 2)
        q = state >> 1
        m = 2 * k - (k > 0) * q + (k < 0) * q
        out.append(float(np.float32(m * step)))
        state = int(DQ_NEXT[state][abs(k) % 2])
    return out


def grid_layer(grid: GridCode, shape: tuple[int, ...], bias: np.ndarray | None) -> CompressedLayer:
    values = grid.values()
    positions = np.flatnonzero(values)
    codebook, codes = np.unique(values[positions], return_inverse=True)
    bits = max(1, (len(codebook) - 1).bit_length())
    return CompressedLayer(
        "conv", shape, bits, codebook, positions, codes.astype(np.uint16), bias, grid
    )


def test_golden_grid_file_decodes_as_the_text_says() -> None:
    data = v3_file()
    model = decode_sqz(data)
    layer = model.layers[0]
    expected = reference_weights([1, 2, 3, 0, 4, 5], 0.5, 4)
    assert expected == [1.0, -0.5, 1.5, 0.0, -1.5, 2.5]
    assert layer.dense_weight().reshape(-1).tolist() == expected
    assert layer.bias.tolist() == [0.25, -0.5]
    assert layer.grid is not None and layer.grid.levels.tolist() == [1, -1, 2, 0, -2, 3]
    assert encode_sqz(model, codec="raw", bias_dtype="float16") == data  # the encoder writes it


def test_golden_grid_file_is_what_the_encoder_writes() -> None:
    grid = GridCode(1, 0.5, np.array([1, -1, 2, 0, -2, 3]), 4)
    model = CompressedModel(
        "tiny", {}, None, None, [grid_layer(grid, (2, 3), np.array([0.25, -0.5]))]
    )
    data = encode_sqz(model, codec="raw", bias_dtype="float16")
    assert data == v3_file()
    assert data.hex() == (
        "8953515a03003d7b22636c6173736573223a6e756c6c2c22636f6e666967223a7b7d2c226d6f64656c22"
        "3a2274696e79222c2270726570726f63657373223a6e756c6c7d0104636f6e76020203031a010000003f"
        "0402003400b8000329894000798dd6ff"
    )


def test_version_2_files_do_not_change() -> None:
    layer = CompressedLayer(
        "a",
        (2, 2),
        2,
        np.array([1.0, 2.0], np.float32),
        np.array([0, 3]),
        np.array([0, 1], np.uint16),
        np.ones(2, np.float32),
    )
    model = CompressedModel("tiny", {}, None, None, [layer])
    assert encode_sqz(model)[4] == 2
    assert encode_sqz(model, bias_dtype="float16")[4] == 3


@pytest.mark.parametrize("codec", ["auto", "raw", "huffman", "rans"])
@pytest.mark.parametrize("quantizer", [0, 1])
def test_grid_layers_round_trip_bit_for_bit(codec: str, quantizer: int) -> None:
    rng = np.random.default_rng(quantizer)
    levels = np.rint(rng.laplace(scale=5, size=3 * 700)).astype(np.int64)
    grid = GridCode(quantizer, float(np.float32(0.0123)), levels, 6 if quantizer else 4)
    model = CompressedModel("m", {}, None, None, [grid_layer(grid, (3, 700), None)])
    data = encode_sqz(model, codec=codec)  # type: ignore[arg-type]
    back = decode_sqz(data)
    assert back.layers[0].grid is not None
    assert np.array_equal(back.layers[0].grid.levels, levels)
    assert np.array_equal(back.layers[0].dense_weight(), model.layers[0].dense_weight())
    assert encode_sqz(back, codec=codec) == data  # type: ignore[arg-type]
    if quantizer:
        want = reference_weights(zigzag(levels).tolist(), grid.step, 6)
        assert back.layers[0].dense_weight().reshape(-1).tolist() == want
    info = inspect_sqz(data)["layers"][0]
    assert info["grid"]["quantizer"] == ("uniform", "dependent")[quantizer]


def test_state_machines_of_many_layers_run_together() -> None:
    rng = np.random.default_rng(3)
    layers = [rng.integers(-4, 5, size=n) for n in (5, 40, 1000)]
    periods = [4, 4, 7]
    together = dq_quantizers_many(layers, periods)
    for k, r, q in zip(layers, periods, together, strict=True):
        alone = dq_quantizers_many([k], [r])[0]
        assert np.array_equal(q, alone)
        ref = reference_weights(zigzag(k).tolist(), 1.0, r)
        assert np.array_equal(GridCode(1, 1.0, k, r).values(), np.array(ref, np.float32))


def test_zigzag() -> None:
    k = np.array([0, 1, -1, 2, -2, 16383, -16383])
    assert zigzag(k).tolist() == [0, 1, 2, 3, 4, 32765, 32766]
    assert np.array_equal(unzigzag(zigzag(k)), k)


def test_gamma_tables() -> None:
    values = np.array([0, 1, 2, 3, 7, 49152, 0, 5])
    raw = gamma_encode(values)
    assert np.array_equal(gamma_decode(raw, len(values)), values)
    assert gamma_encode(np.array([0, 1, 2])) == bytes([0b1_010_011_0])  # 1 | 010 | 011 | pad
    assert gamma_decode(bytes([0b1_010_011_1]), 3) is None  # a non-zero padding bit
    assert gamma_decode(bytes([0b1_010_011_0, 0]), 3) is None  # a whole byte after the codes
    assert gamma_decode(bytes([0b1_010_0000]), 3) is None  # runs past the end
    assert gamma_decode(b"\x00\x00\x00\x01", 1) is None  # more than 16 leading zeros


def test_encoder_uses_gamma_tables_in_version_3_only() -> None:
    rng = np.random.default_rng(5)
    levels = np.rint(rng.laplace(scale=20, size=20_000)).astype(np.int64)
    grid = GridCode(0, 0.0078125, levels)
    model = CompressedModel("m", {}, None, None, [grid_layer(grid, (20, 1000), None)])
    data = encode_sqz(model, codec="rans")
    assert data[4] == 3
    back = decode_sqz(data)
    assert np.array_equal(back.layers[0].grid.levels, levels)
    at = parse_sqz(data).layers[0].codes.offset  # codec, length, T, P, fw
    assert data[at] == spec.CODEC_RANS
    reader = Reader(data, at + 1)
    reader.varint("length", 0, 1 << 32)
    reader.varint("T", 0, 1 << 32)
    reader.u8("P", 0, 16)
    assert reader.u8("fw", 0, 16) == 0  # a long-tailed table is shorter gamma-coded


def rejects(data: bytes, field: str, match: str | None = None) -> None:
    with pytest.raises(SqzFormatError, match=match) as caught:
        decode_sqz(data)
    assert caught.value.field == field, caught.value


def test_version_3_features_are_errors_in_version_2() -> None:
    rejects(v3_file(version=2), "layer 0 flags", "reserved bits")


def test_grid_record_rules() -> None:
    def with_byte(offset: int, value: int) -> bytes:
        record = bytearray(GRID_RECORD)
        record[offset] = value
        return v3_file(bytes(record))

    rejects(with_byte(9, 0x1B), "layer 0 flags", "FLOAT16 and COMPLEMENT")  # FLOAT16
    rejects(with_byte(9, 0x1E), "layer 0 flags", "FLOAT16 and COMPLEMENT")  # COMPLEMENT
    rejects(with_byte(9, 0x18), "layer 0 flags", "BIAS16 without BIAS")
    rejects(with_byte(9, 0x3A), "layer 0 flags", "reserved")
    rejects(with_byte(8, 16), "layer 0 bits", "over 15")
    rejects(with_byte(10, 2), "layer 0 quantizer")
    rejects(with_byte(15, 3), "layer 0 state period")
    rejects(with_byte(15, 17), "layer 0 state period")
    for step in (0.0, -0.5, float("nan"), float("inf")):
        record = GRID_RECORD[:11] + struct.pack("<f", step) + GRID_RECORD[15:]
        rejects(v3_file(record), "layer 0 grid step", "finite and > 0")


def test_uniform_grid_period_must_be_4() -> None:
    record = bytearray(GRID_RECORD)
    record[10] = 0  # uniform
    assert decode_sqz(v3_file(bytes(record))).layers[0].dense_weight().reshape(-1).tolist() == [
        0.5,
        -0.5,
        1.0,
        0.0,
        -1.0,
        1.5,
    ]
    record[15] = 5
    rejects(v3_file(bytes(record)), "layer 0 state period")


def test_encoder_rejects_an_inconsistent_grid() -> None:
    grid = GridCode(1, 0.5, np.array([1, -1, 2, 0, -2, 3]), 4)
    layer = grid_layer(grid, (2, 3), None)
    layer.grid = GridCode(0, 0.5, grid.levels, 4)  # other weights than the codebook's
    with pytest.raises(ValueError, match="differ"):
        encode_sqz(CompressedModel("m", {}, None, None, [layer]))
    layer.grid = GridCode(1, 0.1, grid.levels, 4)  # not a float32
    with pytest.raises(ValueError, match="float32"):
        encode_sqz(CompressedModel("m", {}, None, None, [layer]))
    layer.grid = GridCode(1, 0.5, grid.levels * 10_000, 4)
    layer.codebook = np.unique(layer.grid.values()[layer.grid.values() != 0])
    values = layer.grid.values()
    layer.positions = np.flatnonzero(values)
    layer.codes = np.searchsorted(layer.codebook, values[layer.positions]).astype(np.uint16)
    layer.bits = 16
    with pytest.raises(ValueError, match="16 > 15 bits"):
        encode_sqz(CompressedModel("m", {}, None, None, [layer]))


def test_spec_constants() -> None:
    assert spec.FLAG_GRID == 8 and spec.FLAG_BIAS16 == 16
    assert spec.MAX_GRID_BITS == 15
    assert DQ_NEXT.tolist() == [[0, 2], [2, 0], [1, 3], [3, 1]]


# --- version 4: a grid layer's bias on a grid of its own -------------------------------------

# GRID_RECORD's layer with its bias [0.25, -0.5] on a grid (version 4): levels 1, -2 at bias
# step 0.25, symbols 1 4 at 3 bits.
BIAS_GRID_RECORD = bytes.fromhex(
    "04636f6e76"  # name "conv"
    "020203"  # ndim 2, dims 2 3
    "032a"  # bits 3, flags BIAS | GRID | BIASGRID
    "01"  # quantizer: dependent
    "0000003f"  # step 0.5
    "04"  # state period 2**4
    "02"  # bias length 2
    "0000803e"  # bias step 0.25
    "03"  # bias bits 3
    "000130"  # bias stream: raw, 1 byte: symbols 1 4 at 3 bits
    "0003298940"  # level stream, as GRID_RECORD's
)
RECORD_AT = len(b"\x89SQZ\x04" + HEADER + b"\x01")  # the layer record's first byte
FLAGS_AT, BIAS_LENGTH_AT, BIAS_STEP_AT, BIAS_BITS_AT, BIAS_STREAM_AT = (
    RECORD_AT + i for i in (9, 16, 17, 21, 22)
)


def rejects_at(data: bytes, field: str, offset: int, match: str | None = None) -> None:
    with pytest.raises(SqzFormatError, match=match) as caught:
        decode_sqz(data)
    assert (caught.value.field, caught.value.offset) == (field, offset), caught.value


def f32_bits(values: np.ndarray) -> list[int]:
    return np.asarray(values, np.float32).view(np.uint32).tolist()


def with_bias_grid(layer: CompressedLayer, step: float) -> CompressedLayer:
    """``layer`` with its bias rounded to a uniform grid of ``step`` and stored as levels."""
    assert layer.bias is not None
    levels = np.round(np.asarray(layer.bias, np.float64) / step).astype(np.int64)
    layer.bias_grid = GridCode(spec.QUANTIZER_UNIFORM, step, levels, 4)
    layer.bias = layer.bias_grid.values()
    return layer


def test_bias_grid_golden_record_decodes_and_is_what_the_encoder_writes() -> None:
    data = v3_file(BIAS_GRID_RECORD, version=4)
    model = decode_sqz(data)
    layer = model.layers[0]
    assert layer.dense_weight().reshape(-1).tolist() == [1.0, -0.5, 1.5, 0.0, -1.5, 2.5]
    assert layer.bias is not None and layer.bias.dtype == np.float32
    assert layer.bias.tolist() == [0.25, -0.5]
    assert layer.bias_grid is not None and layer.bias_grid.levels.tolist() == [1, -2]
    assert layer.bias_grid.step == 0.25 and layer.bias_grid.quantizer == 0
    parsed = parse_sqz(data)
    assert parsed.version == 4 and parsed.layers[0].bias_bits == 3
    assert encode_sqz(model, codec="raw") == data
    # Without its bias grid the same layer is a version-3 record with a float32 bias.
    layer.bias_grid = None
    plain = BIAS_GRID_RECORD[:9] + b"\x0a" + BIAS_GRID_RECORD[10:16]
    plain += b"\x02" + np.array([0.25, -0.5], "<f4").tobytes() + BIAS_GRID_RECORD[25:]
    assert encode_sqz(model, codec="raw") == v3_file(plain)


@pytest.mark.parametrize("codec", ["auto", "raw", "huffman", "rans"])
def test_bias_grid_round_trips_bit_for_bit(codec: str) -> None:
    rng = np.random.default_rng(7)
    levels = np.rint(rng.laplace(scale=3, size=64 * 9)).astype(np.int64)
    grid = GridCode(0, float(np.float32(0.0123)), levels, 4)
    bias = rng.normal(scale=0.3, size=64).astype(np.float32)
    step = float(np.float32(0.01))
    layer = with_bias_grid(grid_layer(grid, (64, 9), bias), step)
    assert layer.bias_grid is not None
    model = CompressedModel("m", {}, None, None, [layer])
    data = encode_sqz(model, codec=codec)  # type: ignore[arg-type]
    assert data[4] == spec.VERSION_BIAS_GRID
    back = decode_sqz(data)
    got = back.layers[0]
    assert got.bias_grid is not None
    assert np.array_equal(got.bias_grid.levels, layer.bias_grid.levels)
    assert got.bias_grid.step == step
    assert got.bias is not None and f32_bits(got.bias) == f32_bits(layer.bias)
    bits = int(zigzag(layer.bias_grid.levels).max()).bit_length()
    assert parse_sqz(data).layers[0].bias_bits == bits
    assert encode_sqz(back, codec=codec) == data  # type: ignore[arg-type]
    # The same model without bias grids: version 3, the bytes it always had.
    layer.bias_grid = None
    before = encode_sqz(model, codec=codec)  # type: ignore[arg-type]
    assert before[4] == spec.VERSION_GRID
    assert parse_sqz(before).layers[0].bias_stream is None


def test_bias_grid_values_follow_the_uniform_rule() -> None:
    """k = 0 gives +0, a product past the float32 range gives +-inf (no error, no warning)."""
    big = float(np.finfo(np.float32).max)
    record = BIAS_GRID_RECORD[:17] + struct.pack("<f", big) + BIAS_GRID_RECORD[21:22]
    record += b"\x00\x01" + bytes([0b000_011_00]) + BIAS_GRID_RECORD[25:]  # symbols 0 3: k 0 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bias = decode_sqz(v3_file(record, version=4)).layers[0].bias
    assert bias is not None and f32_bits(bias) == [0, 0x7F800000]


def test_encoder_rejects_a_bad_bias_grid() -> None:
    grid = GridCode(1, 0.5, np.array([1, -1, 2, 0, -2, 3]), 4)
    bias = np.array([0.25, -0.5], np.float32)
    bias_grid = GridCode(0, 0.25, np.array([1, -2]), 4)

    def encode(layer: CompressedLayer) -> bytes:
        return encode_sqz(CompressedModel("m", {}, None, None, [layer]))

    plain = grid_layer(grid, (2, 3), bias)
    plain.grid, plain.bias_grid = None, bias_grid  # a codebook layer
    with pytest.raises(ValueError, match="bias grid but no grid"):
        encode(plain)
    no_bias = grid_layer(grid, (2, 3), None)
    no_bias.bias_grid = bias_grid
    with pytest.raises(ValueError, match="no bias"):
        encode(no_bias)
    layer = grid_layer(grid, (2, 3), bias)
    layer.bias_grid = GridCode(0, 0.25, np.array([1, -1]), 4)  # -0.25, not -0.5
    with pytest.raises(ValueError, match="bias grid differs"):
        encode(layer)
    layer.bias_grid = GridCode(0, 0.25, np.array([1, -2, 0]), 4)  # not dims[0] levels
    with pytest.raises(ValueError, match="bias grid differs"):
        encode(layer)
    layer.bias_grid = GridCode(1, 0.25, np.array([1, -2]), 4)  # dependent
    with pytest.raises(ValueError, match="uniform"):
        encode(layer)
    layer.bias_grid = GridCode(0, 0.1, np.array([2, -5]), 4)  # 0.1 is not a float32
    with pytest.raises(ValueError, match="float32"):
        encode(layer)
    layer.bias_grid = bias_grid
    assert encode(layer)[4] == 4


def test_bias_grid_flags() -> None:
    """BIASGRID is a reserved bit before version 4 and needs GRID and BIAS, never BIAS16."""
    rejects_at(v3_file(BIAS_GRID_RECORD), "layer 0 flags", FLAGS_AT, "reserved")
    for flags in (0x3A, 0x28):  # with BIAS16; without BIAS
        record = BIAS_GRID_RECORD[:9] + bytes([flags]) + BIAS_GRID_RECORD[10:]
        rejects_at(v3_file(record, version=4), "layer 0 flags", FLAGS_AT, "BIASGRID")
    codebook = (
        BIAS_GRID_RECORD[:9]  # a codebook layer "conv" (2, 3) of bits 3
        + b"\x22"  # BIAS | BIASGRID, no GRID
        + b"\x01"
        + struct.pack("<f", 1.0)
        + b"\x02"
        + np.array([0.25, -0.5], "<f4").tobytes()
        + b"\x00\x01\x00\x00\x00\x00\x00"  # n 0, gap bits 1, m 0, two empty raw streams
    )
    rejects_at(v3_file(codebook, version=4), "layer 0 flags", FLAGS_AT, "BIASGRID")
    valid = codebook[:9] + bytes([spec.FLAG_BIAS]) + codebook[10:]
    assert decode_sqz(v3_file(valid, version=4)).layers[0].bias.tolist() == [0.25, -0.5]
    # A version-4 file that does not use BIASGRID decodes as the same bytes with version 3.
    v3, v4 = decode_sqz(v3_file()), decode_sqz(v3_file(version=4))
    assert f32_bits(v4.layers[0].dense_weight()) == f32_bits(v3.layers[0].dense_weight())
    assert v4.layers[0].bias is not None and v4.layers[0].bias.tolist() == [0.25, -0.5]


def test_bias_grid_record_rules() -> None:
    def with_bytes(at: int, new: bytes) -> bytes:
        return v3_file(BIAS_GRID_RECORD[:at] + new + BIAS_GRID_RECORD[at + len(new) :], version=4)

    rejects_at(with_bytes(16, b"\x03"), "layer 0 bias length", BIAS_LENGTH_AT, "dims\\[0\\]")
    for step in (0.0, -0.25, float("nan"), float("inf")):
        data = with_bytes(17, struct.pack("<f", step))
        rejects_at(data, "layer 0 bias step", BIAS_STEP_AT, "finite and > 0")
    for bits in (0, 16):
        rejects_at(with_bytes(21, bytes([bits])), "layer 0 bias bits", BIAS_BITS_AT, "1..15")
    padding = "layer 0 bias stream padding bits"
    rejects_at(with_bytes(24, b"\x31"), padding, BIAS_STREAM_AT + 2, "not zero")
    rejects_at(with_bytes(23, b"\x02"), "layer 0 bias stream length", BIAS_STREAM_AT + 2)
    # a dense tensor at the bias key of a layer whose bias is on a grid
    dense = b"\x09conv.bias\x00\x01\x02" + np.array([1, 2], "<f4").tobytes()
    body = b"\x89SQZ\x04" + HEADER + b"\x01" + BIAS_GRID_RECORD + b"\x01" + dense
    dense_at = RECORD_AT + len(BIAS_GRID_RECORD) + 1
    rejects_at(finish(body), "dense tensor 0 name", dense_at, "state-dict key")


def test_bias_stream_decode_errors_are_at_its_codec_byte() -> None:
    """A rANS bias stream that does not decode: field "layer i bias stream" at its codec byte."""
    rng = np.random.default_rng(11)
    grid = GridCode(0, 0.5, rng.integers(-3, 4, size=32 * 3), 4)
    bias = (rng.integers(-20, 21, size=32) * 0.25).astype(np.float32)
    layer = with_bias_grid(grid_layer(grid, (32, 3), bias), 0.25)
    data = encode_sqz(CompressedModel("m", {}, None, None, [layer]), codec="rans")
    rec = parse_sqz(data).layers[0].bias_stream
    assert rec is not None and rec.codec == spec.CODEC_RANS
    bad = bytearray(data[:-4])
    bad[rec.offset + rec.nbytes - 1] ^= 0x10  # a byte of its last rANS block
    rejects_at(finish(bytes(bad)), "layer 0 bias stream", rec.offset, "rANS block")
