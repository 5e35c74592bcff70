"""docs/FORMAT.md rule by rule: what an independent decoder must not have to guess.

Files are built here byte by byte from the document, so each test reads as the rule it checks;
every rejection asserts the error's ``.field`` and ``.offset``.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from squeezenet.arch.preprocess import CAFFE
from squeezenet.errors import FileFormatError, UserError
from squeezenet.formats import SqzFormatError, decode_sqz, encode_sqz, huffman, rans, spec
from squeezenet.formats.bitio import Reader, read_stream, varint
from squeezenet.formats.model import CompressedLayer, CompressedModel

HEADER_JSON = b'{"classes":["cat","dog"],"config":{"width":1},"model":"tiny","preprocess":null}'
RAW_CODES = b"\x00\x01\x40"  # raw, 1 byte: codes 0 1 at 1 bit
RAW_POSITIONS = b"\x00\x01\x00"  # raw, 1 byte: position symbols 0 0 at 1 bit (M = 1)


def f32(*values: float) -> bytes:
    return np.array(values, "<f4").tobytes()


def header_record(text: bytes = HEADER_JSON, encoding: int = spec.HEADER_JSON) -> bytes:
    return bytes([encoding]) + varint(len(text)) + text


def layer(
    name: bytes = b"a",
    *,
    dims: tuple[int, ...] = (2,),
    bits: int = 1,
    flags: int = 0,
    codebook: bytes = f32(0.5, -1.0),
    bias: bytes = b"",
    n: int = 2,
    m: int = 2,
    codes: bytes = RAW_CODES,
    positions: bytes = RAW_POSITIONS,
) -> bytes:
    """A layer record (section 4): by default "a", (2,), both weights stored, codes 0 1."""
    k = len(codebook) // (2 if flags & spec.FLAG_FLOAT16 else 4)
    shape = bytes([len(dims)]) + b"".join(varint(d) for d in dims)
    return (
        (varint(len(name)) + name + shape + bytes([bits, flags]) + varint(k) + codebook + bias)
        + varint(n)
        + b"\x01"
        + varint(m)
        + codes
        + positions
    )


def dense(name: bytes = b"d", dims: tuple[int, ...] = (2,), values: bytes = f32(1, 2)) -> bytes:
    shape = bytes([spec.DTYPE_FLOAT32, len(dims)]) + b"".join(varint(d) for d in dims)
    return varint(len(name)) + name + shape + values


def sqz(
    layers: tuple[bytes, ...] = (), dense_records: tuple[bytes, ...] = (), header: bytes = b""
) -> bytes:
    body = spec.MAGIC + bytes([spec.VERSION]) + (header or header_record())
    body += varint(len(layers)) + b"".join(layers)
    body += varint(len(dense_records)) + b"".join(dense_records)
    return body + struct.pack("<I", zlib.crc32(body))


LAYER_AT = 5 + len(header_record()) + 1  # the first layer record, after the layer count
HEADER_AT = 7  # the first stored header byte of header_record(): after encoding and length


def rejects(data: bytes, field: str, offset: int, match: str = "") -> SqzFormatError:
    with pytest.raises(SqzFormatError, match=match) as info:
        decode_sqz(data)
    assert (info.value.field, info.value.offset) == (field, offset)
    assert f"at byte {offset}" in str(info.value)
    return info.value


def test_the_hand_built_file_is_what_the_encoder_writes() -> None:
    model = CompressedModel(
        "tiny",
        {"width": 1},
        None,
        ["cat", "dog"],
        [CompressedLayer("a", (2,), 1, np.array([0.5, -1.0], np.float32), [0, 1], [0, 1])],
    )
    # A dense layer: the encoder lists the (no) absent weights instead, in an empty stream.
    complement = layer(flags=spec.FLAG_COMPLEMENT, m=0, positions=b"\x00\x00")
    assert encode_sqz(model, codec="raw", gap_bits=1) == sqz((complement,))
    decoded = decode_sqz(sqz((layer(),)))
    np.testing.assert_array_equal(decoded.layers[0].positions, [0, 1])
    np.testing.assert_array_equal(decoded.layers[0].codes, [0, 1])


def test_format_errors_are_user_errors_with_field_and_offset() -> None:
    error = rejects(sqz((layer(bits=0),)), "layer 0 bits", LAYER_AT + 4, "outside 1..16")
    assert isinstance(error, FileFormatError) and isinstance(error, UserError)
    assert isinstance(error, ValueError)


# --- The bias: key name + ".bias", one value per dims[0] ----------------------------------


def test_bias_length_must_equal_dims0() -> None:
    at = LAYER_AT + 7 + 8  # name length, name, ndim, dim, bits, flags, K; codebook
    assert decode_sqz(sqz((layer(flags=spec.FLAG_BIAS, bias=b"\x02" + f32(0.25, 0.5)),)))
    bad = layer(flags=spec.FLAG_BIAS, bias=b"\x01" + f32(0.25))
    rejects(sqz((bad,)), "layer 0 bias length", at, "bias length 1 .* should be dims\\[0\\] = 2")


def test_encoder_rejects_a_bias_that_is_not_dims0_long() -> None:
    bad = CompressedLayer("a", (2,), 1, np.zeros(2, np.float32), [0], [0], np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"bias must be 1-D with dims\[0\] = 2 values"):
        encode_sqz(CompressedModel("m", {}, layers=[bad]))


# --- The early checks: magic, 5 bytes, version, 14 bytes, CRC, in this order --------------


def test_early_checks_come_in_order() -> None:
    rejects(b"PK\x03\x04", "magic", 0, "not a .sqz file")  # before "file size"
    rejects(b"\x89SQZ", "file size", 4, "file is 4 bytes long and ends at byte 4")
    rejects(b"\x89SQZ\x07" + bytes(20), "version", 4, r"unsupported \.sqz version 7 at byte 4")
    rejects(b"\x89SQZ\x07", "version", 4, "version 7")  # before "file size"
    rejects(b"\x89SQZ\x02" + bytes(8), "file size", 13, "at least 14 bytes")
    smallest = b"\x89SQZ\x02\x00\x01{\x00\x00"  # 10 bytes + CRC: the 14-byte minimum
    rejects(smallest + bytes(4), "crc32", 10, "CRC32 0x00000000 at byte 10")
    fixed = smallest + struct.pack("<I", zlib.crc32(smallest))
    rejects(fixed, "header", HEADER_AT, "not valid")


def test_a_short_file_says_how_long_it_is_and_where_it_ends() -> None:
    """Section 8, step 1: "file size" at the offset where the file ends, not a magic error."""
    for data in (b"", b"\x89", b"\x89SQ", b"\x89SQZ"):
        n = len(data)
        error = rejects(data, "file size", n, f"file is {n} bytes long and ends at byte {n}, ")
        assert "inside the magic and version" in str(error)
        assert "at least 14 bytes" in str(error) and "expected" not in str(error)
    for n in range(5, 14):
        data = (b"\x89SQZ\x03" + bytes(16))[:n]
        error = rejects(data, "file size", n, f"file is {n} bytes long and ends at byte {n};")
        assert "a .sqz file has at least 14 bytes" in str(error)


def test_the_magic_error_shows_the_bytes_read() -> None:
    rejects(b"PK\x03\x04" + bytes(20), "magic", 0, "magic at byte 0 is 504b0304, expected 8953515a")
    rejects(b"\x89SQY", "magic", 0, "is 89535159, expected 8953515a")
    rejects(b"\x89Q", "magic", 0, r"is 8951 \(all 2 bytes\), expected 8953515a")


# --- The header ------------------------------------------------------------------------------


def with_header(text: bytes, encoding: int = spec.HEADER_JSON) -> bytes:
    return sqz(header=header_record(text, encoding))


def stored_at(data: bytes) -> int:
    """The first stored header byte: after the encoding and a 1- or 2-byte length varint."""
    return 8 if data[6] & 0x80 else 7


def test_header_zlib_stream_must_be_exactly_one_finished_stream() -> None:
    packed = zlib.compress(HEADER_JSON, 9)
    assert decode_sqz(with_header(packed, spec.HEADER_ZLIB)).class_names == ["cat", "dog"]
    one = "not one zlib stream"
    rejects(with_header(packed + b"\x00", spec.HEADER_ZLIB), "header", HEADER_AT, one)
    rejects(with_header(packed[:-1], spec.HEADER_ZLIB), "header", HEADER_AT, one)
    rejects(with_header(packed[:20], spec.HEADER_ZLIB), "header", HEADER_AT, one)
    bad_adler = packed[:-1] + bytes([packed[-1] ^ 1])
    rejects(with_header(bad_adler, spec.HEADER_ZLIB), "header", HEADER_AT, "not valid")


def test_header_json_may_inflate_to_exactly_4_mib() -> None:
    def text(size: int) -> bytes:
        frame = b'{"classes":null,"config":{"x":""},"model":"m","preprocess":null}'
        return frame.replace(b'""', b'"' + b"a" * (size - len(frame)) + b'"')

    limit = spec.MAX_HEADER_JSON_BYTES
    assert len(text(limit)) == limit
    assert len(decode_sqz(with_header(zlib.compress(text(limit)), 1)).config["x"]) > 4_000_000
    too_big = with_header(zlib.compress(text(limit + 1)), 1)
    rejects(too_big, "header", stored_at(too_big), "not one zlib stream of <= 4 MiB")


def test_encoder_only_header_rules_are_not_enforced() -> None:
    loose = b' { "model" : "tiny", "config": {"width": 1}, "preprocess": null,\n "classes": '
    loose += json.dumps(list(spec.CIFAR10_CLASSES)).encode() + b" } "
    decoded = decode_sqz(with_header(loose))  # unsorted, spaced, a standard list stored
    assert decoded.class_names == list(spec.CIFAR10_CLASSES)
    long = json.dumps({"model": "m", "config": {"x": "a" * 500}, "preprocess": None,
                       "classes": None}).encode()  # fmt: skip
    assert len(zlib.compress(long, 9)) < len(long)
    assert decode_sqz(with_header(long)).config == {"x": "a" * 500}  # encoding 0 though longer


def config_header(config: str) -> bytes:
    return b'{"classes":null,"config":' + config.encode() + b',"model":"m","preprocess":null}'


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"x":NaN}', "NaN is not JSON"),
        ('{"x":Infinity}', "Infinity is not JSON"),
        ('{"x":-Infinity}', "-Infinity is not JSON"),
        ('{"x":1e400}', "not finite"),
        ('{"x":-1e400}', "not finite"),
        ('{"x":9223372036854775808}', "outside -2\\*\\*63"),
        ('{"x":-9223372036854775809}', "outside -2\\*\\*63"),
        ('{"x":' + "9" * 5000 + "}", "outside -2\\*\\*63"),
        ('{"x":1,"x":2}', "'x' is repeated"),
        ('{"x":{"y":1,"y":1}}', "'y' is repeated"),
        ('{"x":"\\ud800"}', "unpaired surrogate"),
        ('{"\\udfff":1}', "unpaired surrogate"),
        ('{"x":' + "[" * 63 + "]" * 63 + "}", "nest deeper than 64"),
        ('{"x":1', "Expecting"),
    ],
)
def test_header_json_restrictions(config: str, message: str) -> None:
    data = with_header(config_header(config))
    rejects(data, "header", stored_at(data), message)


@pytest.mark.parametrize(
    "config",
    [
        '{"x":9223372036854775807,"y":-9223372036854775808,"z":1e-400}',
        '{"x":"\\ud83d\\ude00"}',
        '{"x":' + "[" * 62 + "]" * 62 + "}",  # depth 64: top level, config, 62 arrays
    ],
)
def test_header_json_within_the_restrictions(config: str) -> None:
    assert isinstance(decode_sqz(with_header(config_header(config))).config, dict)


def test_header_bytes_must_be_utf8_without_bom() -> None:
    rejects(with_header(b"\xef\xbb\xbf" + HEADER_JSON), "header", HEADER_AT, "BOM")
    rejects(with_header(HEADER_JSON.replace(b"cat", b"c\xe9t")), "header", HEADER_AT, "utf-8")


def test_header_content_errors_report_the_first_stored_header_byte() -> None:
    rejects(with_header(HEADER_JSON.replace(b'"tiny"', b'""')), "header", HEADER_AT, "non-empty")
    rejects(with_header(HEADER_JSON.replace(b"classes", b"labels")), "header", HEADER_AT, "object")
    text = HEADER_JSON.replace(b'["cat","dog"]', b'"imagenet-21k"')
    rejects(with_header(text), "header classes", HEADER_AT, "unknown class list")
    text = HEADER_JSON.replace(b'["cat","dog"]', b'["cat",1]')
    rejects(with_header(text), "header classes", HEADER_AT, "list of strings")
    # A longer header: its length takes two bytes, and the errors move with the first byte.
    text = HEADER_JSON.replace(b'"width":1', b'"width":1,"pad":"' + b"x" * 200 + b'"')
    text = text.replace(b'"tiny"', b"1")
    rejects(with_header(text), "header", HEADER_AT + 1, "non-empty")


PREPROCESS_OK = {"name": "caffe", "resize": 256, "crop": 227, "mean": [1, 2.5, 3], "std": [1, 1, 1]}


def preprocess_header(value: object) -> bytes:
    text = json.dumps({"classes": None, "config": {}, "model": "m", "preprocess": value})
    return with_header(text.encode())


def test_preprocess_members_default_as_documented() -> None:
    decoded = decode_sqz(preprocess_header(PREPROCESS_OK)).preprocess
    assert decoded is not None
    assert decoded["channel_order"] == "RGB" and decoded["value_scale"] == 1.0
    assert decoded["channels"] == 3 and decoded["interpolation"] == "bilinear"
    assert decode_sqz(preprocess_header(CAFFE.to_dict())).preprocess == CAFFE.to_dict()
    for scale in (1, 1.0, 255, 255.0):
        assert decode_sqz(preprocess_header({**PREPROCESS_OK, "value_scale": scale}))


@pytest.mark.parametrize(
    "change",
    [
        {"resize": 1.5},
        {"resize": True},
        {"resize": -1},
        {"resize": "256"},
        {"crop": 0},
        {"crop": 224.0},
        {"name": 5},
        {"mean": [1, 2]},
        {"mean": ["1", "2", "3"]},
        {"mean": "123"},
        {"std": [1, 0, 1]},
        {"std": [1, True, 1]},
        {"channel_order": "rgb"},
        {"channel_order": ["RGB"]},
        {"value_scale": 2},
        {"value_scale": True},
        {"channels": 2},
        {"channels": 1},  # then mean and std must hold one value each
        {"channels": 3.0},
        {"interpolation": "nearest"},
        {"unknown": 1},
        {"crop": None},
    ],
)
def test_preprocess_rules_are_checked_by_the_decoder(change: dict[str, object]) -> None:
    data = preprocess_header({**PREPROCESS_OK, **change})
    rejects(data, "header preprocess", stored_at(data), "is invalid")


def test_preprocess_required_members() -> None:
    for key in ("name", "resize", "crop", "mean", "std"):
        data = preprocess_header({k: v for k, v in PREPROCESS_OK.items() if k != key})
        rejects(data, "header preprocess", stored_at(data), f"'{key}'")
    rejects(preprocess_header([1]), "header preprocess", HEADER_AT, "an object")


def test_encoder_never_writes_a_header_the_decoder_rejects() -> None:
    model = CompressedModel("m", {"seed": 1 << 63})
    with pytest.raises(ValueError, match="outside -2"):
        encode_sqz(model)
    nested: list[object] = []
    for _ in range(70):
        nested = [nested]
    with pytest.raises(ValueError, match="nest deeper"):
        encode_sqz(CompressedModel("m", {"x": nested}))
    with pytest.raises(ValueError, match="header preprocess is invalid"):
        encode_sqz(CompressedModel("m", {}, {**CAFFE.to_dict(), "crop": 227.0}))
    with pytest.raises(ValueError, match="non-empty"):
        encode_sqz(CompressedModel("", {}))


# --- m, the position symbols: listed..numel --------------------------------------------------


def test_position_symbols_are_bounded_by_numel() -> None:
    at = LAYER_AT + 7 + 8 + 2  # ..., codebook, n, gap bits
    rejects(sqz((layer(m=3),)), "layer 0 position symbols", at, "3 at byte .* outside 2..2")
    rejects(sqz((layer(m=1),)), "layer 0 position symbols", at, "outside 2..2")


# --- Huffman: Lmin, blocks, bit-contiguous code bits -----------------------------------------


def huffman_record(symbols: np.ndarray, lengths: np.ndarray, low: int, lw: int, b: int) -> bytes:
    """A Huffman stream record with a chosen length offset and width (section 6)."""
    stream = huffman.encode(symbols, lengths, block_size=1 << b)
    used = np.flatnonzero(lengths)
    size = int(used[-1]) + 1
    fields = np.where(lengths[:size] > 0, lengths[:size].astype(np.int64) - low + 1, 0)
    body = varint(size) + bytes([low, lw]) + huffman.pack_bits(fields, lw)[0] + bytes([b])
    body += b"".join(varint(int(n)) for n in stream.block_bits) + stream.payload
    return bytes([spec.CODEC_HUFFMAN]) + varint(len(body)) + body


def read_huffman(record: bytes, count: int, alphabet: int) -> np.ndarray:
    parsed = read_stream(Reader(record), "s", count, alphabet, 8, spec.CODEC_HUFFMAN)
    assert parsed.stream is not None
    return huffman.decode(parsed.stream)


def test_huffman_lmin_and_width_need_not_be_the_tightest() -> None:
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 5, 100)
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=5))
    shortest = int(lengths[lengths > 0].min())
    tight = huffman_record(symbols, lengths, shortest, 2, 4)
    loose = huffman_record(symbols, lengths, 1, 5, 4)  # Lmin below the shortest, lw too wide
    assert tight != loose
    for record in (tight, loose):
        np.testing.assert_array_equal(read_huffman(record, 100, 5), symbols)


@pytest.mark.parametrize(("count", "blocks"), [(32, 2), (33, 3), (16, 1), (1, 1)])
def test_huffman_blocks_of_2_to_the_b_symbols(count: int, blocks: int) -> None:
    symbols = np.arange(count) % 3
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=3))
    record = huffman_record(symbols, lengths, 1, 2, 4)
    parsed = read_stream(Reader(record), "s", count, 3, 2, spec.CODEC_HUFFMAN)
    assert parsed.stream is not None and len(parsed.stream.block_bits) == blocks
    np.testing.assert_array_equal(huffman.decode(parsed.stream), symbols)


def test_huffman_blocks_are_bit_contiguous() -> None:
    # Lengths 1, 2, 2 and 16-symbol blocks of 23 bits: no padding until the end of the last.
    symbols = np.array(([0] * 9 + [1] * 4 + [2] * 3) * 3)
    lengths = np.array([1, 2, 2], np.uint8)
    stream = huffman.encode(symbols, lengths, block_size=16)
    assert stream.block_bits.tolist() == [23, 23, 23]
    codes = huffman.canonical_codes(lengths)[symbols]
    assert stream.payload == huffman.pack_bits(codes, lengths[symbols].astype(np.int64))[0]
    swapped = huffman.HuffmanStream(lengths, 48, 16, np.array([22, 24, 23]), stream.payload)
    with pytest.raises(huffman.HuffmanDecodeError, match="block 0 decodes to 23 bits, not 22"):
        huffman.decode(swapped)


def test_huffman_table_padding_must_be_zero() -> None:
    symbols = np.array([0, 1, 2, 0])
    lengths = np.array([1, 2, 2], np.uint8)
    record = bytearray(huffman_record(symbols, lengths, 1, 2, 4))
    assert record[5] == 0b01_10_10_00  # three 2-bit fields, then two padding bits
    record[5] |= 1
    with pytest.raises(SqzFormatError, match="s Huffman code lengths padding bits at byte 5"):
        read_huffman(bytes(record), 4, 3)


def test_huffman_decode_errors_name_the_stream() -> None:
    model = CompressedModel(
        "m",
        {},
        layers=[CompressedLayer("a", (40,), 1, np.zeros(2, np.float32), range(40), [0] * 40)],
    )
    data = bytearray(encode_sqz(model, codec="huffman", gap_bits=1, block_size=16))
    from squeezenet.formats.sqz_decode import parse_sqz

    codes = parse_sqz(bytes(data)).layers[0].codes
    assert codes.stream is not None and codes.stream.lengths.tolist() == [1]  # one code, "0"
    data[codes.offset + codes.nbytes - len(codes.stream.payload)] |= 0x80  # a "1": no code
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    error = rejects(bytes(data), "layer 0 code stream", codes.offset, "unassigned code")
    assert "Huffman block 0" in str(error)


# --- rANS: the state after the last symbol's renormalisation ---------------------------------


def reference_rans_block(block: bytes, freqs: list[int], precision: int, count: int) -> list[int]:
    """A block decoded as FORMAT.md section 6 says, one symbol at a time."""
    total, cum = 1 << precision, np.concatenate([[0], np.cumsum(freqs)]).tolist()
    x = int.from_bytes(block[:4], "little")
    words = [int.from_bytes(block[i : i + 2], "little") for i in range(4, len(block), 2)]
    assert 1 << 16 <= x < 1 << 32
    out = []
    for _ in range(count):
        slot = x % total
        s = next(i for i in range(len(freqs)) if cum[i] <= slot < cum[i + 1])
        out.append(s)
        x = freqs[s] * (x // total) + slot - cum[s]
        if x < 1 << 16:  # renormalisation: one word is always enough
            x = (x << 16) | words.pop(0)
    assert x == 1 << 16 and not words  # after the last symbol's renormalisation
    return out


@pytest.mark.parametrize("precision", [8, 12, 16])
def test_rans_blocks_decode_as_documented(precision: int) -> None:
    rng = np.random.default_rng(precision)
    symbols = rng.choice(4, size=100, p=[0.6, 0.25, 0.1, 0.05])
    freqs = rans.quantize(np.bincount(symbols, minlength=4), precision)
    stream = rans.encode(symbols, freqs, precision, block_size=32)
    decoded, start = [], 0
    for i, nbytes in enumerate(stream.block_bytes.tolist()):
        block = stream.payload[start : start + nbytes]
        decoded += reference_rans_block(block, freqs.tolist(), precision, min(32, 100 - 32 * i))
        start += nbytes
    assert decoded == symbols.tolist()


def low_state_record() -> bytes:
    """One symbol 0 under frequencies (64, 192) of 2**8 from state 1 and word 0: the state
    after renormalisation is 2**16 and every word is read, but the block starts below 2**16."""
    body = b"\x02" + bytes([8, 8, 64, 192, 4]) + b"\x06" + struct.pack("<IH", 1, 0)
    return bytes([spec.CODEC_RANS]) + varint(len(body)) + body


def test_rans_initial_state_must_be_at_least_2_to_the_16() -> None:
    stream = rans.RansStream(np.array([64, 192]), 8, 1, 16, np.array([6]), struct.pack("<IH", 1, 0))
    with pytest.raises(rans.RansDecodeError, match="block 0 starts from state 0x1, below 2"):
        rans.decode(stream)
    valid = rans.encode(np.array([0]), np.array([64, 192]), 8, block_size=16)
    assert rans.decode(valid).tolist() == [0]
    one = layer(dims=(1,), n=1, m=1, codes=low_state_record(), positions=b"\x00\x01\x00")
    error = rejects(sqz((one,)), "layer 0 code stream", LAYER_AT + 7 + 8 + 3, "rANS block 0")
    assert "below 2**16" in str(error)


# --- Dimensions: the product is checked after each one --------------------------------------


def test_dense_dims_product_is_checked_after_each_dim() -> None:
    big = spec.MAX_DENSE_NUMEL
    at = LAYER_AT - 1 + 1 + 2 + 2 + 1 + len(varint(big))  # counts, name, dtype + ndim, dim 0
    bad = dense(dims=(big, 2, 0), values=b"")
    rejects(sqz((), (bad,)), "dense tensor 0 dimension 1", at, "makes 536870912 values")
    empty = decode_sqz(sqz((), (dense(dims=(0, big, big), values=b""),)))
    assert empty.dense["d"].shape == (0, big, big)
    assert decode_sqz(sqz((), (dense(dims=(), values=f32(7)),))).dense["d"].shape == ()


def test_layer_dims_product_is_checked_after_each_dim() -> None:
    at = LAYER_AT + 3 + len(varint(1 << 16))
    rejects(sqz((layer(dims=(1 << 16, 1 << 16, 0)),)), "layer 0 dimension 1", at, "over 2147483647")


# --- Names: distinct, and no dense name that is a layer's state-dict key ----------------------


def test_dense_name_must_not_be_a_layer_state_dict_key() -> None:
    with_bias = layer(flags=spec.FLAG_BIAS, bias=b"\x02" + f32(0.25, 0.5))
    at = LAYER_AT + len(layer()) + 1  # the dense record, after the dense count
    rejects(sqz((layer(),), (dense(b"a.weight"),)), "dense tensor 0 name", at, "state-dict key")
    at_bias = at + len(with_bias) - len(layer())
    rejects(sqz((with_bias,), (dense(b"a.bias"),)), "dense tensor 0 name", at_bias, "layer 0")
    assert "a.bias" in decode_sqz(sqz((layer(),), (dense(b"a.bias"),))).dense  # no BIAS: free
    assert "a.weight.x" in decode_sqz(sqz((layer(),), (dense(b"a.weight.x"),))).dense


def test_names_must_be_distinct() -> None:
    at = LAYER_AT + len(layer()) + 1
    rejects(sqz((layer(),), (dense(b"a"),)), "dense tensor 0 name", at, "duplicate tensor name 'a'")
    rejects(sqz((layer(), layer())), "layer 1 name", LAYER_AT + len(layer()), "duplicate")


def test_encoder_rejects_a_dense_tensor_at_a_layer_key() -> None:
    model = CompressedModel(
        "m",
        {},
        layers=[CompressedLayer("a", (1,), 1, np.zeros(1, np.float32), [0], [0])],
        dense={"a.weight": np.zeros(1, np.float32)},
    )
    with pytest.raises(ValueError, match=r"'a\.weight' is also the state-dict key of layer 'a'"):
        encode_sqz(model)


# --- Floats: bit for bit; float16 widened exactly --------------------------------------------

ODD_FLOATS = np.array(
    [0x7FC00001, 0xFFBFFFFF, 0x7F800001, 0x7F800000, 0xFF800000, 0x80000000, 0x00000001, 0],
    np.uint32,
).view(np.float32)  # quiet / signalling NaNs with payloads, +-Inf, -0, a subnormal, 0


@pytest.mark.parametrize("codec", ["raw", "auto"])
def test_nan_inf_and_subnormals_are_stored_bit_for_bit(codec: str) -> None:
    layer_ = CompressedLayer("a", (8,), 3, ODD_FLOATS, np.arange(8), np.arange(8), ODD_FLOATS)
    model = CompressedModel("m", {}, layers=[layer_], dense={"d": ODD_FLOATS[::-1]})
    out = decode_sqz(encode_sqz(model, codec=codec))  # type: ignore[arg-type]
    bits = ODD_FLOATS.view(np.uint32)
    assert out.layers[0].bias is not None
    np.testing.assert_array_equal(out.layers[0].codebook.view(np.uint32), bits)
    np.testing.assert_array_equal(out.layers[0].bias.view(np.uint32), bits)
    np.testing.assert_array_equal(out.dense["d"].view(np.uint32), bits[::-1])


def test_float16_codebooks_widen_exactly() -> None:
    halves = np.array([0x7C01, 0xFE01, 0x0001, 0xFC00, 0x8000, 0x3C00], "<u2")
    codes = b"\x00\x01\x10"  # raw, 1 byte: codes 0 1 at 3 bits
    record = layer(bits=3, flags=spec.FLAG_FLOAT16, codebook=halves.tobytes(), codes=codes)
    codebook = decode_sqz(sqz((record,))).layers[0].codebook
    assert codebook.dtype == np.float32
    expected = [0x7F802000, 0xFFC02000, 0x33800000, 0xFF800000, 0x80000000, 0x3F800000]
    assert codebook.view(np.uint32).tolist() == expected


def test_the_header_defaults_are_the_preprocess_defaults() -> None:
    """formats fills an absent preprocessing member with what arch's Preprocess defaults to."""
    import dataclasses

    from squeezenet.arch.preprocess import Preprocess
    from squeezenet.formats.header import PREPROCESS_DEFAULTS

    defaults = {f.name: f.default for f in dataclasses.fields(Preprocess)}
    assert {k: defaults[k] for k in PREPROCESS_DEFAULTS} == PREPROCESS_DEFAULTS
