"""The .sqz format: golden bytes, round trips, options, one precise error per bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from squeezenet.arch.preprocess import CAFFE
from squeezenet.formats import (
    SqzFormatError,
    decode_sqz,
    encode_sqz,
    inspect_sqz,
    read_sqz,
    write_sqz,
)
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.sqz import gap_symbols

# docs/FORMAT.md section 11: encode_sqz(tiny_model(), codec="raw", gap_bits=2).
GOLDEN_RAW = bytes.fromhex(
    "8953515a02004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277"
    "69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204"
    "636f6e760402010202020203000000000000003f000080bf020000803e000000bf03020400016400014c0266"
    "63020304020404000000000000803f00000040000040400a020500035597500002fc400107626e2e6d65616e"
    "0001020000803f0000004045fb3d55"
)
# encode_sqz(tiny_model(), codec="huffman", gap_bits=2, codebook_dtype="float16", block_size=16)
GOLDEN_HUFFMAN = bytes.fromhex(
    "8953515a02004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277"
    "69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204"
    "636f6e7604020102020203030000003800bc020000803e000000bf0302040107030101600403400107040102"
    "620406980266630203040205040000003c004000420a020501080401021a040c08c00107040102a104071601"
    "07626e2e6d65616e0001020000803f000000401012769f"
)
# encode_sqz(tiny_model(), codec="rans", gap_bits=2, rans_block_size=16)
GOLDEN_RANS = bytes.fromhex(
    "8953515a02004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277"
    "69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204"
    "636f6e760402010202020203000000000000003f000080bf020000803e000000bf030204020c03080800ab55"
    "04046cc00600020d04080880400040040480054000026663020304020004000000000000803f000000400000"
    "40400a020a020d04080800c02020040480407f02020b020808c0400404404c35000107626e2e6d65616e0001"
    "020000803f0000004046b85772"
)
# Version 1 files (written before the rANS codec) must keep decoding: the same two files.
GOLDEN_V1_RAW = bytes.fromhex(
    "8953515a01004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277"
    "69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204"
    "636f6e760402010202020203000000000000003f000080bf020000803e000000bf0302040001640001"
    "4c026663020304020404000000000000803f00000040000040400a020500035597500002fc400107626e2e6d"
    "65616e0001020000803f00000040fd8b95b3"
)
GOLDEN_V1_HUFFMAN = bytes.fromhex(
    "8953515a01004f7b22636c6173736573223a5b22636174222c22646f67225d2c22636f6e666967223a7b2277"
    "69647468223a317d2c226d6f64656c223a2274696e79222c2270726570726f63657373223a6e756c6c7d0204"
    "636f6e7604020102020203030000003800bc020000803e000000bf030204010703010160040340010704"
    "0102620406980266630203040205040000003c004000420a020501080401021a040c08c00107040102a104"
    "07160107626e2e6d65616e0001020000803f00000040d5aed624"
)


def tiny_model() -> CompressedModel:
    return CompressedModel(
        model_name="tiny",
        config={"width": 1},
        class_names=["cat", "dog"],
        layers=[
            CompressedLayer(
                "conv",
                (2, 1, 2, 2),
                2,
                np.array([0.0, 0.5, -1.0], np.float32),
                np.array([1, 2, 6]),
                np.array([1, 2, 1], np.uint16),
                np.array([0.25, -0.5], np.float32),
            ),
            CompressedLayer(
                "fc",
                (3, 4),
                2,
                np.array([0.0, 1.0, 2.0, 3.0], np.float32),
                np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]),
                np.array([1, 1, 1, 1, 2, 1, 1, 3, 1, 1], np.uint16),
            ),
        ],
        dense={"bn.mean": np.array([1.0, 2.0], np.float32)},
    )


def random_model(seed: int, nlayers: int = 4) -> CompressedModel:
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(nlayers):
        shape = tuple(int(d) for d in rng.integers(1, 12, size=int(rng.integers(1, 5))))
        numel = int(np.prod(shape))
        bits = int(rng.integers(1, 17))
        k = int(rng.integers(1, min(1 << bits, 300) + 1))
        density = float(rng.choice([0.0, 0.05, 0.3, 0.97, 1.0]))
        positions = np.flatnonzero(rng.random(numel) < density)
        codes = rng.integers(0, k, size=len(positions)).astype(np.uint16)
        bias = rng.standard_normal(shape[0]).astype(np.float32) if i % 2 else None
        codebook = rng.standard_normal(k).astype(np.float32)
        layers.append(CompressedLayer(f"l{i}", shape, bits, codebook, positions, codes, bias))
    return CompressedModel(
        "squeezenet1_0",
        {"final_conv_padding": 1, "num_classes": 3},
        CAFFE.to_dict(),
        ["a", "b", "c"],
        layers,
        {"x": rng.standard_normal((2, 3)).astype(np.float32), "s": np.array(1.5, np.float32)},
    )


def assert_same(a: CompressedModel, b: CompressedModel, *, float16: bool = False) -> None:
    assert (a.model_name, a.config, a.preprocess, a.class_names) == (
        b.model_name,
        b.config,
        b.preprocess,
        b.class_names,
    )
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert (x.name, tuple(x.shape), x.bits) == (y.name, y.shape, y.bits)
        cb = x.codebook.astype(np.float16).astype(np.float32) if float16 else x.codebook
        np.testing.assert_array_equal(cb.view(np.uint32), y.codebook.view(np.uint32))
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.codes, y.codes)
        assert y.positions.dtype == np.int64 and y.codes.dtype == np.uint16
        if x.bias is None:
            assert y.bias is None
        else:
            assert y.bias is not None
            np.testing.assert_array_equal(x.bias.view(np.uint32), y.bias.view(np.uint32))
    assert a.dense.keys() == b.dense.keys()
    for name in a.dense:
        np.testing.assert_array_equal(a.dense[name], b.dense[name])


def recrc(data: bytes) -> bytes:
    """``data`` with its CRC32 recomputed, to reach the structural checks behind it."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def test_golden_bytes() -> None:
    assert encode_sqz(tiny_model(), codec="raw", gap_bits=2) == GOLDEN_RAW
    huff = encode_sqz(
        tiny_model(), codec="huffman", gap_bits=2, codebook_dtype="float16", block_size=16
    )
    assert huff == GOLDEN_HUFFMAN
    assert encode_sqz(tiny_model(), codec="rans", gap_bits=2, rans_block_size=16) == GOLDEN_RANS
    assert_same(tiny_model(), decode_sqz(GOLDEN_RAW))
    assert_same(tiny_model(), decode_sqz(GOLDEN_HUFFMAN), float16=True)
    assert_same(tiny_model(), decode_sqz(GOLDEN_RANS))
    info = inspect_sqz(GOLDEN_RANS)
    assert info["version"] == 2
    assert {layer["codes_codec"] for layer in info["layers"]} == {"rans"}


def test_version_1_files_still_decode() -> None:
    assert_same(tiny_model(), decode_sqz(GOLDEN_V1_RAW))
    assert_same(tiny_model(), decode_sqz(GOLDEN_V1_HUFFMAN), float16=True)
    assert inspect_sqz(GOLDEN_V1_RAW)["version"] == 1
    # The same bytes with version 2 are the version-2 file: only the version byte differs.
    assert recrc(GOLDEN_V1_RAW[:4] + b"\x02" + GOLDEN_V1_RAW[5:]) == GOLDEN_RAW


def test_version_1_rejects_the_rans_codec() -> None:
    v1 = recrc(GOLDEN_RANS[:4] + b"\x01" + GOLDEN_RANS[5:])
    with pytest.raises(
        SqzFormatError, match=r"layer 0 code stream codec 2 at byte \d+ is outside 0..1"
    ):
        decode_sqz(v1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"codec": "raw"},
        {"codec": "huffman", "block_size": 16},
        {"codec": "huffman", "gap_bits": 1, "codebook_dtype": "float16"},
        {"codec": "auto", "gap_bits": 16},
        {"codec": "rans", "rans_block_size": 16},
        {"codec": "rans", "gap_bits": 3, "rans_block_size": 4096},
    ],
)
def test_roundtrip_random_layers(seed: int, options: dict[str, object]) -> None:
    model = random_model(seed)
    data = encode_sqz(model, **options)  # type: ignore[arg-type]
    assert_same(model, decode_sqz(data), float16=options.get("codebook_dtype") == "float16")


def test_gap_symbols_use_escapes() -> None:
    # M = 3: 7 zeros before index 7 are two escapes and a 1; index 8 follows directly.
    np.testing.assert_array_equal(gap_symbols(np.array([7, 8, 12]), 2), [3, 3, 1, 0, 3, 0])


def test_near_dense_layer_lists_absent_weights() -> None:
    positions = np.delete(np.arange(10_000), [5, 777, 9000])
    layer = CompressedLayer(
        "d", (10_000,), 4, np.arange(16, dtype=np.float32), positions, positions % 16
    )
    model = CompressedModel("m", {}, layers=[layer])
    data = encode_sqz(model)
    info = inspect_sqz(data)["layers"][0]
    assert info["position_mode"] == "absent"
    assert info["positions_bytes"] < 24  # a bitmap would take 1,250 bytes
    assert_same(model, decode_sqz(data))


def test_write_and_read(tmp_path: Path) -> None:
    path = tmp_path / "m.sqz"
    size = write_sqz(tiny_model(), path, codec="raw", gap_bits=2)
    assert path.read_bytes() == GOLDEN_RAW and size == len(GOLDEN_RAW)
    assert_same(tiny_model(), read_sqz(path))
    assert [p.name for p in tmp_path.iterdir()] == ["m.sqz"]  # no temporary left behind


def test_inspect_accounts_for_every_byte() -> None:
    info = inspect_sqz(GOLDEN_RAW)
    total = info["header_bytes"] + info["totals"]["record_bytes"] + info["dense_bytes"] + 4
    assert total == info["total_bytes"] == len(GOLDEN_RAW)
    conv = info["layers"][0]
    assert conv["codes_codec"] == "raw" and conv["density"] == pytest.approx(3 / 8)
    assert conv["codebook_bytes"] == 12 and conv["bias_bytes"] == 9


def test_standard_class_list_is_named_not_stored() -> None:
    model = tiny_model()
    model.class_names = ["airplane", "automobile", "bird", "cat", "deer"]
    model.class_names += ["dog", "frog", "horse", "ship", "truck"]
    data = encode_sqz(model)
    assert b'"classes":"cifar-10"' in data
    assert decode_sqz(data).class_names == model.class_names


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bits": 0}, "bits must be in 1..16"),
        ({"codes": np.array([1, 2, 3], np.uint16)}, "codes must lie in 0..2"),
        ({"positions": np.array([2, 1, 6])}, "positions must increase strictly"),
        ({"positions": np.array([1, 2, 8])}, "positions must increase strictly"),
        ({"shape": (2, 0)}, "shape must have"),
        ({"name": ""}, "name must be 1..255"),
    ],
)
def test_encoder_rejects_invalid_layers(change: dict[str, object], message: str) -> None:
    model = tiny_model()
    for key, value in change.items():
        setattr(model.layers[0], key, value)
    with pytest.raises(ValueError, match=message):
        encode_sqz(model)


def test_encoder_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="codec"):
        encode_sqz(tiny_model(), codec="zip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gap_bits"):
        encode_sqz(tiny_model(), gap_bits=17)
    with pytest.raises(ValueError, match="block_size"):
        encode_sqz(tiny_model(), block_size=100)
    with pytest.raises(ValueError, match="rans_block_size"):
        encode_sqz(tiny_model(), rans_block_size=8192)
    big = tiny_model()
    big.layers[0].codebook = np.array([0.0, 1e6, 1.0], np.float32)
    with pytest.raises(ValueError, match="overflows float16"):
        encode_sqz(big, codebook_dtype="float16")


def test_errors_name_field_and_offset() -> None:
    with pytest.raises(SqzFormatError, match=r"not a .sqz file: magic at byte 0"):
        decode_sqz(b"PK\x03\x04" + GOLDEN_RAW[4:])
    with pytest.raises(
        SqzFormatError, match=r"unsupported .sqz version 5 at byte 4: .* 1, 2, 3, 4;"
    ):
        decode_sqz(GOLDEN_RAW[:4] + b"\x05" + GOLDEN_RAW[5:])
    with pytest.raises(SqzFormatError, match=r"unsupported .sqz version 0 at byte 4"):
        decode_sqz(GOLDEN_RAW[:4] + b"\x00" + GOLDEN_RAW[5:])
    flipped = bytearray(GOLDEN_RAW)
    flipped[100] ^= 1
    with pytest.raises(SqzFormatError, match=r"CRC32 0x[0-9a-f]{8} at byte 187 does not match"):
        decode_sqz(bytes(flipped))
    with pytest.raises(SqzFormatError, match="unexpected bytes at byte 187"):
        decode_sqz(recrc(GOLDEN_RAW[:-4] + b"\x00" + GOLDEN_RAW[-4:]))
    # The fc layer's code stream is declared 99 bytes long (at byte 153).
    at = GOLDEN_RAW.index(bytes.fromhex("0a020500035597"))
    bad = bytearray(GOLDEN_RAW)
    bad[at + 4] = 99
    with pytest.raises(
        SqzFormatError,
        match=rf"layer 1 code stream length 99 at byte {at + 5} runs past the end of the file",
    ):
        decode_sqz(recrc(bytes(bad)))
    bad[at + 4] = 4  # raw length must match 10 codes of 2 bits
    with pytest.raises(SqzFormatError, match=r"layer 1 code stream length 4 .* should be 3"):
        decode_sqz(recrc(bytes(bad)))


def test_bounds_checked_before_allocation() -> None:
    # A 2**31-weight layer claiming 2**31 stored weights in a few bytes: rejected by lengths.
    header = GOLDEN_RAW[: GOLDEN_RAW.index(b"\x02\x04conv")]
    record = (
        b"\x01\x04huge\x01\xff\xff\xff\xff\x07\x08\x00\x01" + b"\x00\x00\x00\x00"
        b"\xff\xff\xff\xff\x07\x04\xff\xff\xff\xff\x07" + b"\x00\x00\x00\x00"
    )
    data = recrc(header + record + b"\x00\x00\x00\x00\x00")
    with pytest.raises(SqzFormatError, match=r"layer 0 code stream length 0 .* should be"):
        decode_sqz(data)


def test_trailing_escape_is_rejected() -> None:
    # tiny conv positions are symbols 1 0 3 0 (0x4c); 1 0 0 3 (0x43) ends with an escape.
    at = GOLDEN_RAW.index(bytes.fromhex("00016400014c"))
    bad = bytearray(GOLDEN_RAW)
    bad[at + 5] = 0x43
    with pytest.raises(SqzFormatError, match=r"layer 0 position stream at byte .* escape"):
        decode_sqz(recrc(bytes(bad)))


def test_rans_errors_name_field_and_offset() -> None:
    # The conv code stream of GOLDEN_RANS: codec 2, length 12, alphabet 3, precision 8, ...
    at = GOLDEN_RANS.index(bytes.fromhex("020c0308"))
    bad = bytearray(GOLDEN_RANS)
    bad[at + 3] = 17  # precision above 16
    with pytest.raises(
        SqzFormatError, match=rf"layer 0 code stream rANS precision 17 at byte {at + 3}"
    ):
        decode_sqz(recrc(bytes(bad)))
    bad[at + 3] = 8
    bad[at + 6] += 1  # frequencies 00 ab 55 no longer sum to 2**8
    with pytest.raises(SqzFormatError, match=r"rANS frequencies at byte .* do not sum"):
        decode_sqz(recrc(bytes(bad)))
    bad = bytearray(GOLDEN_RANS)
    bad[GOLDEN_RANS.index(b"\x01\x07bn.mean") - 1] ^= 0x10  # a word of the last rANS block
    with pytest.raises(SqzFormatError, match=r"layer 1 position stream at byte \d+: rANS block 0"):
        decode_sqz(recrc(bytes(bad)))


def test_rans_beats_huffman_on_skewed_small_alphabets() -> None:
    """Gap symbols of a 1/3-dense layer: Huffman pays for integer code lengths, rANS does not."""
    rng = np.random.default_rng(3)
    numel = 200_000
    positions = np.flatnonzero(rng.random(numel) < 0.33)
    codes = rng.integers(0, 16, len(positions)).astype(np.uint16)
    layer = CompressedLayer("e", (numel,), 4, np.arange(16, dtype=np.float32), positions, codes)
    model = CompressedModel("m", {}, layers=[layer])
    auto = encode_sqz(model, gap_bits=4)
    huff = encode_sqz(model, gap_bits=4, codec="huffman")
    info = inspect_sqz(auto)["layers"][0]
    assert info["positions_codec"] == "rans" and len(auto) < len(huff)
    assert info["positions_entropy_ratio"] <= 1.005
    assert_same(model, decode_sqz(auto))
