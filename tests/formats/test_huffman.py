"""Canonical Huffman coding: round trips, the length limit, the canonical code, the bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.formats import huffman


def _roundtrip(symbols: np.ndarray, alphabet: int, block_size: int = 16) -> huffman.HuffmanStream:
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    stream = huffman.encode(symbols, lengths, block_size=block_size)
    np.testing.assert_array_equal(huffman.decode(stream), symbols)
    return stream


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=300),
    st.sampled_from([16, 32, 1024]),
)
def test_roundtrip_property(values: list[int], block_size: int) -> None:
    _roundtrip(np.array(values), 41, block_size)


def test_roundtrip_many_streams_at_once() -> None:
    rng = np.random.default_rng(0)
    streams, data = [], []
    for alphabet, size in [(256, 5000), (16, 3000), (2, 100), (65536, 2000)]:
        symbols = np.minimum(rng.geometric(0.05, size) - 1, alphabet - 1)
        lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
        streams.append(huffman.encode(symbols, lengths, block_size=256))
        data.append(symbols)
    for got, want in zip(huffman.decode_many(streams), data, strict=True):
        np.testing.assert_array_equal(got, want)


def test_long_codes_use_the_key_lookup() -> None:
    # Fibonacci counts give a maximally deep tree; a short stream keeps the primary table small,
    # so the longest codes are resolved by the sorted-key fallback.
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    lengths = huffman.code_lengths(np.array(fib[::-1]), max_len=20)
    assert lengths.max() == 20
    symbols = np.array([29, 28, 0, 27, 29, 1, 20, 29, 25, 26])
    stream = huffman.encode(symbols, lengths, block_size=16)
    np.testing.assert_array_equal(huffman.decode(stream), symbols)


@pytest.mark.parametrize("max_len", [5, 8, 12, 20])
def test_length_limit_is_respected_and_code_stays_complete(max_len: int) -> None:
    counts = np.array([int(1.7**i) for i in range(30)])  # unlimited depth would be ~29
    lengths = huffman.code_lengths(counts, max_len=max_len)
    assert int(lengths.max()) <= max_len
    assert (lengths > 0).all()
    assert int((1 << (20 - lengths.astype(np.int64))).sum()) == 1 << 20  # Kraft equality
    # More frequent symbols never get longer codes.
    order = np.argsort(-counts, kind="stable")
    assert (np.diff(lengths[order].astype(int)) >= 0).all()


def test_length_limit_too_small_for_alphabet() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        huffman.code_lengths(np.ones(10), max_len=3)


def test_canonical_code_matches_rfc1951_example() -> None:
    # RFC 1951 Sec. 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) for A..H.
    codes = huffman.canonical_codes(np.array([3, 3, 3, 3, 3, 2, 4, 4]))
    assert [int(c) for c in codes] == [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=60))
def test_canonical_code_is_prefix_free_and_optimal(counts: list[int]) -> None:
    counts_arr = np.array(counts)
    lengths = huffman.code_lengths(counts_arr)
    codes = huffman.canonical_codes(lengths)
    words = {format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths, strict=True) if n}
    assert len(words) == int((lengths > 0).sum())
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    used = counts_arr > 0
    if used.sum() > 1:  # Shannon: H <= Huffman cost < H + 1 bit per symbol
        symbols = np.repeat(np.arange(len(counts)), counts_arr)
        cost = int((counts_arr * lengths).sum())
        entropy = huffman.entropy_bits(symbols)
        assert entropy - 1e-6 <= cost < entropy + counts_arr.sum()


def test_entropy_bits() -> None:
    assert huffman.entropy_bits(np.array([], dtype=np.int64)) == 0.0
    assert huffman.entropy_bits(np.array([7, 7, 7])) == 0.0
    assert huffman.entropy_bits(np.array([0, 1, 2, 3] * 5)) == pytest.approx(40.0)


def test_skewed_stream_is_near_entropy() -> None:
    rng = np.random.default_rng(1)
    symbols = np.minimum(rng.geometric(0.02, 100_000) - 1, 255)  # 8-bit-like, ~7 bits each
    stream = _roundtrip(symbols, 256, 1024)
    assert stream.nbits <= 1.01 * huffman.entropy_bits(symbols)


def test_single_symbol_and_empty_streams() -> None:
    stream = _roundtrip(np.zeros(50, dtype=np.int64), 4)
    assert stream.nbits == 50
    empty = huffman.encode(np.zeros(0, dtype=np.int64), np.array([1, 1], dtype=np.uint8))
    assert huffman.decode(empty).size == 0


def test_corrupt_blocks_are_reported() -> None:
    symbols = np.arange(40) % 5
    lengths = np.array([1, 2, 3, 0, 0, 0], dtype=np.uint8)  # incomplete: 111 is unassigned
    symbols = symbols % 3
    stream = huffman.encode(symbols, lengths, block_size=16)
    wrong = dataclasses.replace(stream, block_bits=stream.block_bits + np.array([1, -1, 0]))
    with pytest.raises(huffman.HuffmanDecodeError, match="block 0 decodes to"):
        huffman.decode(wrong)
    garbage = dataclasses.replace(stream, payload=b"\xff" * len(stream.payload))
    with pytest.raises(huffman.HuffmanDecodeError, match="unassigned code"):
        huffman.decode(garbage)


def test_bit_packing_roundtrip() -> None:
    values = np.array([5, 0, 7, 3, 1])
    data, nbits = huffman.pack_bits(values, 3)
    assert (data, nbits) == (bytes([0b10100011, 0b10110010]), 15)
    np.testing.assert_array_equal(huffman.unpack_bits(data, 3, 5), values)
