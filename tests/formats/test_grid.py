"""Version 3 of .sqz (docs/FORMAT.md section 4a): grid layers, float16 biases, gamma tables."""

from __future__ import annotations

import struct
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
