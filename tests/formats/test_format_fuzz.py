"""Fuzzing the decoders: truncated, bit-flipped and random bytes raise only the format errors."""

from __future__ import annotations

import contextlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezenet.formats import (
    CaffeDCFormatError,
    SqzFormatError,
    bitio,
    decode_sqz,
    encode_sqz,
)
from squeezenet.formats.caffe_dc import read_caffe_dc
from squeezenet.formats.grid import GridCode
from squeezenet.formats.model import CompressedLayer, CompressedModel


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(0)
    layers = []
    for i, (shape, density) in enumerate([((4, 3, 3, 3), 0.3), ((8, 16), 0.97), ((40,), 0.05)]):
        numel = int(np.prod(shape))
        positions = np.flatnonzero(rng.random(numel) < density)
        codes = rng.integers(0, 16, size=len(positions)).astype(np.uint16)
        bias = np.ones(shape[0], np.float32) if i != 1 else None
        codebook = np.linspace(-1, 1, 16, dtype=np.float32)
        layers.append(CompressedLayer(f"l{i}", shape, 4, codebook, positions, codes, bias))
    model = CompressedModel("m", {"a": [1, 2]}, None, ["x", "y"], layers, {"d": np.ones(3)})
    grid = CompressedModel("m", {}, None, None, [_grid_layer(rng, 0), _grid_layer(rng, 1)])
    return [
        encode_sqz(model, codec="raw", gap_bits=3),
        encode_sqz(model, codec="huffman", block_size=16),
        encode_sqz(model, codebook_dtype="float16"),
        encode_sqz(model, codec="rans", rans_block_size=16),
        encode_sqz(model, bias_dtype="float16", rans_block_size=16),  # version 3
        encode_sqz(grid, codec="rans", rans_block_size=16),  # grid layers, gamma tables
        encode_sqz(grid, codec="huffman", block_size=16, bias_dtype="float16"),
    ]


def _grid_layer(rng: np.random.Generator, quantizer: int) -> CompressedLayer:
    """A version-3 grid layer (docs/FORMAT.md section 4a) of random Laplacian levels."""
    levels = np.rint(rng.laplace(scale=3.0, size=6 * 20)).astype(np.int64)
    grid = GridCode(quantizer, 0.125, levels, 4)
    values = grid.values()
    positions = np.flatnonzero(values)
    codebook, codes = np.unique(values[positions], return_inverse=True)
    bias = np.linspace(-1, 1, 6, dtype=np.float32)
    return CompressedLayer(
        f"g{quantizer}", (6, 20), 8, codebook, positions, codes.astype(np.uint16), bias, grid
    )


SEEDS = _seed_files()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    kind = draw(st.sampled_from(["truncate", "flip", "byte", "splice", "random"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, 8 * len(data) - 1))
            data[i // 8] ^= 1 << (i % 8)
    elif kind == "byte":
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=8))
    else:
        version = draw(st.sampled_from([b"\x01", b"\x02", b"\x03"]))
        data = bytearray(b"\x89SQZ" + version + draw(st.binary(max_size=200)))
    if kind != "truncate" and len(data) > 4 and draw(st.booleans()):
        # Fix the CRC so that the structural checks behind it are exercised too.
        data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def _decode_or_format_error(data: bytes) -> None:
    with contextlib.suppress(SqzFormatError):
        decode_sqz(data)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_sqz_fuzz(data: bytes) -> None:
    _decode_or_format_error(data)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_sqz_fuzz_long(data: bytes) -> None:
    _decode_or_format_error(data)


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=6)
    | st.sampled_from(["RGB", "BGR", "bilinear", "bicubic", 1, 3, 255, 0, -1, 2.5])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
_PREPROCESS = {"name": "x", "resize": 0, "crop": 1, "mean": [0, 0, 0], "std": [1, 1, 1]}
_PREPROCESS_VALUES = _JSON | st.lists(st.integers(-1, 2) | st.floats(-1, 2), max_size=4)
_HEADERS = st.fixed_dictionaries(
    {
        "model": st.text(min_size=1, max_size=4) | st.sampled_from(["", 1, None]),
        "config": st.dictionaries(st.text(max_size=4), _JSON, max_size=3),
        "preprocess": st.none()
        | st.dictionaries(
            st.sampled_from([*_PREPROCESS, "channel_order", "value_scale", "channels", "z"]),
            _PREPROCESS_VALUES,
            max_size=3,
        ).map(lambda change: {**_PREPROCESS, **change}),
        "classes": st.none() | st.sampled_from(["imagenet-1k", "x"]) | _JSON,
    }
)


def _with_header(text: bytes, encoding: int) -> bytes:
    stored = zlib.compress(text) if encoding else text
    if not 1 <= len(stored) < 1 << 14:
        stored = b"{}"
    rest = SEEDS[0][7 + SEEDS[0][6] : -4] if SEEDS[0][6] < 0x80 else b""
    assert rest, "the seed file's header length is one byte"
    body = b"\x89SQZ\x02" + bytes([encoding]) + bitio.varint(len(stored)) + stored + rest
    return body + struct.pack("<I", zlib.crc32(body))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        _HEADERS.map(lambda h: json.dumps(h).encode()),
    ),
    st.sampled_from([0, 1]),
)
def test_header_fuzz(text: bytes, encoding: int) -> None:
    """Any header bytes: decoded, or one SqzFormatError (never another exception)."""
    _decode_or_format_error(_with_header(text, encoding))


@pytest.fixture(scope="module")
def published(shared_data: Path) -> bytes:
    return (shared_data / "squeezenet-dc" / "compressed_SqueezeNet.net").read_bytes()


def _caffe_mutation(data: bytes, draw: st.DataObject) -> bytes:
    buf = bytearray(data)
    kind = draw.draw(st.sampled_from(["truncate", "count", "flip", "extend", "random"]))
    if kind == "truncate":
        return bytes(buf[: draw.draw(st.integers(0, len(buf) - 1))])
    if kind == "count":
        layer = draw.draw(st.integers(0, 25))
        buf[4 * layer : 4 * layer + 4] = struct.pack("<I", draw.draw(st.integers(0, 2**32 - 1)))
    elif kind == "flip":
        i = draw.draw(st.integers(0, 8 * len(buf) - 1))
        buf[i // 8] ^= 1 << (i % 8)
    elif kind == "extend":
        buf += draw.draw(st.binary(min_size=1, max_size=16))
    else:
        return draw.draw(st.binary(max_size=400))
    return bytes(buf)


def _read_or_format_error(data: bytes) -> None:
    with contextlib.suppress(CaffeDCFormatError):
        read_caffe_dc(data)


@settings(max_examples=200, deadline=2000, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_caffe_dc_fuzz(published: bytes, data: st.DataObject) -> None:
    _read_or_format_error(_caffe_mutation(published, data))


@pytest.mark.slow
@settings(max_examples=10_000, deadline=2000, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_caffe_dc_fuzz_long(published: bytes, data: st.DataObject) -> None:
    _read_or_format_error(_caffe_mutation(published, data))
