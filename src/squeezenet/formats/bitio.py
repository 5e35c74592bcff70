"""Byte-level pieces of .sqz: a bounds-checking reader, varints and symbol-stream records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NoReturn

import numpy as np

from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.spec import SqzFormatError

Codec = Literal["auto", "raw", "huffman", "rans"]
_PRECISIONS = range(8, 16)  # rANS precisions the encoder tries (16 only costs table bits)


def varint(value: int) -> bytes:
    """Unsigned LEB128 (7 bits per byte, low group first) of ``0 <= value < 2**32``."""
    if not 0 <= value <= spec.VARINT_MAX:
        raise ValueError(f"varint: {value} is outside 0..{spec.VARINT_MAX}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Reader:
    """Reads fields from ``data[pos:end]``; every read checks its bounds first."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def fail(self, message: str) -> NoReturn:
        raise SqzFormatError(f"corrupt .sqz file: {message}; re-create the file")

    def u8(self, field: str, lo: int, hi: int) -> int:
        if self.pos >= self.end:
            self.fail(f"{field} at byte {self.pos} is past the end of its record ({self.end})")
        value = self.data[self.pos]
        if not lo <= value <= hi:
            self.fail(f"{field} {value} at byte {self.pos} is outside {lo}..{hi}")
        self.pos += 1
        return value

    def varint(self, field: str, lo: int, hi: int) -> int:
        start, value = self.pos, 0
        for i in range(spec.VARINT_MAX_BYTES):
            if self.pos >= self.end:
                self.fail(f"{field} at byte {start} runs past the end of its record ({self.end})")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    self.fail(f"{field} at byte {start} is not a minimal varint")
                break
        else:
            self.fail(f"{field} at byte {start} is a varint longer than 5 bytes")
        if not lo <= value <= hi:
            self.fail(f"{field} {value} at byte {start} is outside {lo}..{hi}")
        return value

    def take(self, nbytes: int, field: str) -> bytes:
        if nbytes > self.end - self.pos:
            self.fail(
                f"{field} of {nbytes} bytes at byte {self.pos} runs past the end of its record "
                f"({self.end})"
            )
        self.pos += nbytes
        return self.data[self.pos - nbytes : self.pos]


@dataclass
class StreamRecord:
    """A parsed, not yet decoded, symbol stream."""

    codec: int  # spec.CODEC_RAW, spec.CODEC_HUFFMAN or spec.CODEC_RANS
    offset: int  # byte offset of the record (its codec byte)
    nbytes: int  # bytes of the whole record: codec, length, body
    table_bytes: int  # body bytes before the code bits (table and block lengths)
    count: int  # number of symbols
    width: int  # raw: bits per symbol
    raw: bytes  # raw: the packed symbols
    stream: huffman.HuffmanStream | None  # huffman: the stream to decode
    rans: rans.RansStream | None = None  # rans: the stream to decode


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


def rans_plan(counts: np.ndarray, block_size: int) -> tuple[int, np.ndarray, int] | None:
    """(estimated body bytes, frequencies, precision) of the best rANS table for ``counts``,
    or None where rANS does not apply (fewer than two used symbols)."""
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
        table = -(-size * int(freqs.max()).bit_length() // 8) + len(varint(size)) + 3
        bits = rans.cost_bits(counts, freqs, precision)
        per_block = 4 + 2 * int(bits / 16 / nblocks)  # a state, then 16-bit words
        est = table + nblocks * (4 + len(varint(per_block))) + 2 * int(bits / 16)
        if best is None or est < best[0]:
            best = (est, freqs, precision)
    return best


def plan_stream(
    symbols: np.ndarray, alphabet: int, width: int, codec: Codec, block_size: int, rans_block: int
) -> StreamPlan:
    """Choose the codec of ``symbols`` (ints < ``alphabet`` <= 2**width): ``auto`` keeps the
    smallest of raw, Huffman and rANS (rANS by its estimated size). An empty stream is raw."""
    raw_size = -(-len(symbols) * width // 8)
    if codec == "raw" or not len(symbols):
        return StreamPlan(spec.CODEC_RAW, huffman.pack_bits(symbols, width)[0])
    counts = np.bincount(symbols, minlength=alphabet)
    plan = rans_plan(counts, rans_block) if codec in ("auto", "rans") else None
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


def finish_streams(plans: list[StreamPlan], rans_block: int) -> list[bytes]:
    """The stream records of ``plans``; the rANS streams among them are encoded together."""
    jobs = [p.job for p in plans if p.job is not None]
    coded = iter(rans.encode_many(jobs, block_size=rans_block) if jobs else [])
    records = []
    for plan in plans:
        body = _rans_body(next(coded)) if plan.job is not None else plan.body
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


def _rans_body(stream: rans.RansStream) -> bytes:
    freqs = stream.freqs
    size = int(np.flatnonzero(freqs)[-1]) + 1
    fw = int(freqs.max()).bit_length()
    table, _ = huffman.pack_bits(freqs[:size], fw)
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


def read_stream(
    r: Reader, field: str, count: int, alphabet: int, width: int, max_codec: int
) -> StreamRecord:
    """Parse one stream record of ``count`` symbols below ``alphabet`` (raw: ``width`` bits
    each; codecs up to ``max_codec``), checking every length against the record before
    anything is allocated."""
    offset = r.pos
    codec = r.u8(f"{field} codec", 0, max_codec)
    body_len = r.varint(f"{field} length", 0, spec.VARINT_MAX)
    if body_len > r.end - r.pos:
        r.fail(
            f"{field} length {body_len} at byte {r.pos} runs past the end of the file "
            f"({r.end} bytes)"
        )
    body = Reader(r.data, r.pos, r.pos + body_len)
    r.pos += body_len
    if codec == spec.CODEC_RAW:
        expected = -(-count * width // 8)
        if body_len != expected:
            r.fail(
                f"{field} length {body_len} at byte {body.pos} should be {expected} for "
                f"{count} raw {width}-bit symbols"
            )
        raw = body.take(body_len, field)
        return StreamRecord(codec, offset, r.pos - offset, 0, count, width, raw, None)
    if codec == spec.CODEC_RANS:
        coded = _read_rans(body, field, count, alphabet)
        table = body_len - len(coded.payload)
        return StreamRecord(codec, offset, r.pos - offset, table, count, width, b"", None, coded)
    stream = _read_huffman(body, field, count, alphabet)
    table = body_len - len(stream.payload)
    return StreamRecord(codec, offset, r.pos - offset, table, count, width, b"", stream)


def _read_rans(b: Reader, field: str, count: int, alphabet: int) -> rans.RansStream:
    start, body_len = b.pos, b.end - b.pos
    if not 0 < count <= spec.RANS_SYMBOLS_PER_BYTE * body_len:
        b.fail(
            f"{field} at byte {start}: {count} rANS symbols need 1..{spec.RANS_SYMBOLS_PER_BYTE}"
            f" per body byte ({body_len} bytes)"
        )
    size = b.varint(f"{field} rANS alphabet", 2, alphabet)
    at = b.pos
    precision = b.u8(f"{field} rANS precision", spec.MIN_RANS_PRECISION, spec.MAX_RANS_PRECISION)
    if 1 << precision > max(1 << spec.RANS_TABLE_FREE_LOG2, 8 * body_len):
        b.fail(f"{field} rANS precision {precision} at byte {at} is too large for its body")
    fw = b.u8(f"{field} rANS frequency width", 1, precision)
    at = b.pos
    freqs = huffman.unpack_bits(b.take(-(-size * fw // 8), f"{field} rANS frequencies"), fw, size)
    if int(freqs.sum()) != 1 << precision or int(freqs.max()) > rans.max_frequency(precision):
        b.fail(f"{field} rANS frequencies at byte {at} do not sum to 2**{precision} within 3/4")
    block = 1 << b.u8(f"{field} rANS block size", spec.MIN_BLOCK_LOG2, spec.MAX_BLOCK_LOG2)
    at = b.pos
    block_bytes, sizes = _read_block_lengths(b, f"{field} rANS", count, block, minimum=4)
    if ((block_bytes % 2 == 1) | (block_bytes > 4 + 2 * sizes)).any():
        b.fail(f"{field} rANS block lengths at byte {at} do not fit their symbol counts")
    payload = b.take(int(block_bytes.sum()), f"{field} rANS blocks")
    if b.pos != b.end:
        b.fail(f"{field} has {b.end - b.pos} bytes after its rANS blocks at byte {b.pos}")
    return rans.RansStream(freqs, precision, count, block, block_bytes, payload)


def _read_huffman(b: Reader, field: str, count: int, alphabet: int) -> huffman.HuffmanStream:
    start = b.pos
    if count == 0:
        b.fail(f"{field} at byte {start} is a Huffman stream of no symbols (must be raw)")
    size = b.varint(f"{field} Huffman alphabet", 1, alphabet)
    low = b.u8(f"{field} Huffman shortest code length", 1, spec.MAX_CODE_LENGTH)
    lw = b.u8(f"{field} Huffman length width", 1, spec.MAX_LENGTH_WIDTH)
    at = b.pos
    packed = b.take(-(-size * lw // 8), f"{field} Huffman code lengths")
    fields = huffman.unpack_bits(packed, lw, size)
    lengths = np.where(fields > 0, fields + low - 1, 0)
    if (lengths > spec.MAX_CODE_LENGTH).any() or not huffman.kraft_ok(lengths):
        b.fail(f"{field} Huffman code lengths at byte {at} are not a prefix code")
    block_log2 = b.u8(f"{field} Huffman block size", spec.MIN_BLOCK_LOG2, spec.MAX_BLOCK_LOG2)
    block = 1 << block_log2
    at = b.pos
    block_bits, sizes = _read_block_lengths(b, f"{field} Huffman", count, block, minimum=1)
    lmin, lmax = int(lengths[lengths > 0].min()), int(lengths.max())
    if ((block_bits < sizes * lmin) | (block_bits > sizes * lmax)).any():
        b.fail(f"{field} Huffman block lengths at byte {at} do not fit their symbol counts")
    nbits = int(block_bits.sum())
    payload = b.take(-(-nbits // 8), f"{field} Huffman code bits")
    if b.pos != b.end:
        b.fail(f"{field} has {b.end - b.pos} bytes after its code bits at byte {b.pos}")
    if nbits % 8 and payload[-1] & ((1 << (8 - nbits % 8)) - 1):
        b.fail(f"{field} padding bits at byte {b.pos - 1} are not zero")
    return huffman.HuffmanStream(lengths.astype(np.uint8), count, block, block_bits, payload)


def decode_raw(record: StreamRecord, alphabet: int, field: str) -> np.ndarray:
    """The symbols of a raw stream record (int64), checked against ``alphabet``."""
    nbits = record.count * record.width
    data = record.raw
    if nbits % 8 and data[-1] & ((1 << (8 - nbits % 8)) - 1):
        at = record.offset + record.nbytes - 1
        Reader(b"").fail(f"{field} padding bits at byte {at} are not zero")
    values = huffman.unpack_bits(data, record.width, record.count)
    if len(values) and int(values.max()) >= alphabet:
        Reader(b"").fail(
            f"{field} at byte {record.offset} holds symbol {int(values.max())}, but only "
            f"{alphabet} are defined"
        )
    return values


def _read_block_lengths(
    b: Reader, what: str, count: int, block: int, *, minimum: int
) -> tuple[np.ndarray, np.ndarray]:
    """The varint length of each block of a blocked stream, and each block's symbol count."""
    nblocks = -(-count // block)
    at = b.pos
    if nblocks > b.end - b.pos:  # one byte per block length at least
        b.fail(f"{what} {nblocks} block lengths at byte {at} run past the record")
    lengths = np.array(
        [b.varint(f"{what} block {i} length", minimum, spec.VARINT_MAX) for i in range(nblocks)],
        dtype=np.int64,
    )
    sizes = np.full(nblocks, block, dtype=np.int64)
    sizes[-1] = count - block * (nblocks - 1)
    return lengths, sizes
