"""Choosing and encoding the codec of each .sqz symbol stream (docs/FORMAT.md section 6, 10)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.bitio import Codec, varint
from squeezenet.formats.gamma import gamma_bits, gamma_encode

_PRECISIONS = range(8, 16)  # rANS precisions the encoder tries (16 only costs table bits)


def huffman_body_size(counts: np.ndarray, lengths: np.ndarray, block_size: int) -> int:
    """Approximate body bytes of a Huffman stream (exact but for block-length varints)."""
    nbits = int((counts * lengths.astype(np.int64)).sum())
    blocks = -(-int(counts.sum()) // block_size)
    avg = nbits // max(blocks, 1)
    return (
        _table_bytes(lengths)
        + 1
        + blocks * len(varint(min(avg, spec.VARINT_MAX)))
        + (-(-nbits // 8))
    )


def _table_bytes(lengths: np.ndarray) -> int:
    used = np.flatnonzero(lengths)
    spread = int(lengths[used].max()) - int(lengths[used].min()) + 1
    alphabet = int(used[-1]) + 1
    return len(varint(alphabet)) + 2 + -(-alphabet * spread.bit_length() // 8)


@dataclass
class StreamPlan:
    """The codec chosen for one stream; rANS bodies are encoded later, all streams at once."""

    codec: int
    body: bytes  # raw and Huffman: the finished body
    job: tuple[np.ndarray, np.ndarray, int] | None = None  # rANS: (symbols, freqs, precision)


def rans_plan(
    counts: np.ndarray, block_size: int, gamma: bool = False
) -> tuple[int, np.ndarray, int] | None:
    """(estimated body bytes, frequencies, precision) of the best rANS table for ``counts``,
    or None where rANS does not apply (fewer than two used symbols). ``gamma``: the table may
    be gamma-coded (version 3)."""
    used = int((counts > 0).sum())
    count = int(counts.sum())
    if used < 2:
        return None
    nblocks = -(-count // block_size)
    size = int(np.flatnonzero(counts)[-1]) + 1
    best: tuple[int, np.ndarray, int] | None = None
    for precision in _PRECISIONS:
        if 4 * used > 1 << precision:  # too coarse: most symbols would round to 1
            continue
        freqs = rans.quantize(counts, precision)
        table = -(-size * int(freqs.max()).bit_length() // 8)
        if gamma:
            table = min(table, -(-gamma_bits(freqs[:size]) // 8) + 1)
        table += len(varint(size)) + 3
        bits = rans.cost_bits(counts, freqs, precision)
        per_block = 4 + 2 * int(bits / 16 / nblocks)  # a state, then 16-bit words
        est = table + nblocks * (4 + len(varint(per_block))) + 2 * int(bits / 16)
        if best is None or est < best[0]:
            best = (est, freqs, precision)
    return best


def plan_stream(
    symbols: np.ndarray,
    alphabet: int,
    width: int,
    codec: Codec,
    block_size: int,
    rans_block: int,
    *,
    gamma: bool = False,
) -> StreamPlan:
    """Choose the codec of ``symbols`` (ints < ``alphabet`` <= 2**width): ``auto`` keeps the
    smallest of raw, Huffman and rANS (rANS by its estimated size). An empty stream is raw."""
    raw_size = -(-len(symbols) * width // 8)
    if codec == "raw" or not len(symbols):
        return StreamPlan(spec.CODEC_RAW, huffman.pack_bits(symbols, width)[0])
    counts = np.bincount(symbols, minlength=alphabet)
    plan = rans_plan(counts, rans_block, gamma) if codec in ("auto", "rans") else None
    if codec == "rans" and plan is not None:
        return StreamPlan(spec.CODEC_RANS, b"", (symbols, plan[1], plan[2]))
    lengths = huffman.code_lengths(counts, spec.MAX_CODE_LENGTH)
    huff_size = huffman_body_size(counts, lengths, block_size)
    if plan is not None and plan[0] < min(huff_size, raw_size):
        return StreamPlan(spec.CODEC_RANS, b"", (symbols, plan[1], plan[2]))
    if codec != "auto" or huff_size < raw_size:
        body = _huffman_body(huffman.encode(symbols, lengths, block_size=block_size))
        if codec != "auto" or len(body) < raw_size:
            return StreamPlan(spec.CODEC_HUFFMAN, body)
    return StreamPlan(spec.CODEC_RAW, huffman.pack_bits(symbols, width)[0])


def finish_streams(plans: list[StreamPlan], rans_block: int, *, gamma: bool = False) -> list[bytes]:
    """The stream records of ``plans``; the rANS streams among them are encoded together.
    ``gamma`` (version 3): a rANS table is gamma-coded where that is shorter."""
    jobs = [p.job for p in plans if p.job is not None]
    coded = iter(rans.encode_many(jobs, block_size=rans_block) if jobs else [])
    records = []
    for plan in plans:
        body = _rans_body(next(coded), gamma) if plan.job is not None else plan.body
        records.append(bytes([plan.codec]) + varint(len(body)) + body)
    return records


def estimate_size(
    counts: np.ndarray, width: int, codec: Codec, block_size: int, rans_block: int
) -> int:
    """Approximate body bytes of a stream with symbol ``counts`` under ``codec``."""
    count = int(counts.sum())
    raw = -(-count * width // 8)
    if codec == "raw" or count == 0:
        return raw
    lengths = huffman.code_lengths(counts)
    size = huffman_body_size(counts, lengths, block_size)
    if codec == "auto":
        size = min(size, raw)
    if codec in ("auto", "rans"):
        plan = rans_plan(counts, rans_block)
        if plan is not None:
            size = plan[0] if codec == "rans" else min(size, plan[0])
    return size


def _rans_body(stream: rans.RansStream, gamma: bool = False) -> bytes:
    freqs = stream.freqs
    size = int(np.flatnonzero(freqs)[-1]) + 1
    fw = int(freqs.max()).bit_length()
    table, _ = huffman.pack_bits(freqs[:size], fw)
    if gamma and -(-gamma_bits(freqs[:size]) // 8) + 1 < len(table):
        coded = gamma_encode(freqs[:size])
        table, fw = varint(len(coded)) + coded, 0
    parts = [varint(size), bytes([stream.precision, fw]), table]
    parts.append(bytes([stream.block_size.bit_length() - 1]))
    parts += [varint(int(b)) for b in stream.block_bytes]
    parts.append(stream.payload)
    return b"".join(parts)


def _huffman_body(stream: huffman.HuffmanStream) -> bytes:
    lengths = stream.lengths
    used = np.flatnonzero(lengths)
    alphabet = int(used[-1]) + 1
    low = int(lengths[used].min())
    spread = int(lengths[used].max()) - low + 1
    fields = np.where(lengths[:alphabet] > 0, lengths[:alphabet].astype(np.int64) - low + 1, 0)
    table, _ = huffman.pack_bits(fields, spread.bit_length())
    parts = [varint(alphabet), bytes([low, spread.bit_length()]), table]
    parts.append(bytes([stream.block_size.bit_length() - 1]))
    parts += [varint(int(b)) for b in stream.block_bits]
    parts.append(stream.payload)
    return b"".join(parts)
