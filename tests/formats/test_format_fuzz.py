"""Fuzzing the decoders: truncated, bit-flipped and random bytes raise only the format errors."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezenet.compress.types import CompressedLayer, CompressedModel
from squeezenet.formats import CaffeDCFormatError, SqzFormatError, decode_sqz, encode_sqz
from squeezenet.formats.caffe_dc import read_caffe_dc


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
    return [
        encode_sqz(model, codec="raw", gap_bits=3),
        encode_sqz(model, codec="huffman", block_size=16),
        encode_sqz(model, codebook_dtype="float16"),
        encode_sqz(model, codec="rans", rans_block_size=16),
    ]


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
        version = draw(st.sampled_from([b"\x01", b"\x02"]))
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
