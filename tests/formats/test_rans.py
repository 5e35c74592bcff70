"""Static rANS coding: round trips, quantised frequencies, the entropy bound, corrupt blocks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.formats import huffman, rans, spec


def _roundtrip(symbols: np.ndarray, alphabet: int, precision: int, block: int) -> rans.RansStream:
    freqs = rans.quantize(np.bincount(symbols, minlength=alphabet), precision)
    stream = rans.encode(symbols, freqs, precision, block_size=block)
    np.testing.assert_array_equal(rans.decode(stream), symbols)
    return stream


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), min_size=2, max_size=300).filter(lambda v: len(set(v)) > 1),
    st.sampled_from([8, 12, 16]),
    st.sampled_from([16, 32, 1024]),
)
def test_roundtrip_property(values: list[int], precision: int, block: int) -> None:
    stream = _roundtrip(np.array(values), 41, precision, block)
    assert len(np.array(values)) <= spec.RANS_SYMBOLS_PER_BYTE * len(stream.payload)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=300), st.integers(9, 16))
def test_quantize_sums_and_caps(counts: list[int], precision: int) -> None:
    arr = np.array(counts)
    if (arr > 0).sum() < 2:
        with pytest.raises(ValueError):
            rans.quantize(arr, precision)
        return
    freqs = rans.quantize(arr, precision)
    assert int(freqs.sum()) == 1 << precision
    assert ((freqs > 0) == (arr > 0)).all()
    assert int(freqs.max()) <= rans.max_frequency(precision)


def test_many_streams_at_once_and_near_entropy() -> None:
    rng = np.random.default_rng(0)
    jobs, data = [], []
    for alphabet, size, p in [(16, 30_000, 0.3), (64, 20_000, 0.05), (2, 100, 0.5)]:
        symbols = np.minimum(rng.geometric(p, size) - 1, alphabet - 1)
        jobs.append((symbols, rans.quantize(np.bincount(symbols, minlength=alphabet), 14), 14))
        data.append(symbols)
    streams = rans.encode_many(jobs, block_size=2048)
    for got, want, stream in zip(rans.decode_many(streams), data, streams, strict=True):
        np.testing.assert_array_equal(got, want)
        if len(want) > 10_000:  # within 0.6 % of the entropy, block states included
            assert 8 * len(stream.payload) <= 1.006 * huffman.entropy_bits(want)


def test_corrupt_blocks_are_reported() -> None:
    symbols = np.arange(100) % 3
    stream = _roundtrip(symbols, 3, 8, 32)
    payload = bytearray(stream.payload)
    payload[-1] ^= 0x40
    with pytest.raises(rans.RansDecodeError, match="rANS block 3"):
        rans.decode(dataclasses.replace(stream, payload=bytes(payload)))
