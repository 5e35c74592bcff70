"""Byte-level pieces of .sqz: a bounds-checking reader, varints, parsing symbol-stream records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NoReturn

import numpy as np

from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.gamma import gamma_decode
from squeezenet.formats.spec import SqzFormatError

Codec = Literal["auto", "raw", "huffman", "rans"]
_RANS_STATE_BYTES = 2 * spec.RANS_WORD_BITS // 8  # a rANS block starts with its u32le state


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


def fail(message: str, *, field: str, offset: int) -> NoReturn:
    """Raise the :class:`SqzFormatError` of ``field`` at byte ``offset`` (both in ``message``)."""
    raise SqzFormatError(
        f"corrupt .sqz file: {message}; re-create the file", field=field, offset=offset
    )


class Reader:
    """Reads fields from ``data[pos:end]``; every read checks its bounds first."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def fail(self, message: str, *, field: str, offset: int) -> NoReturn:
        fail(message, field=field, offset=offset)

    def u8(self, field: str, lo: int, hi: int) -> int:
        at = self.pos
        if at >= self.end:
            self.fail(
                f"{field} at byte {at} is past the end of its record ({self.end})",
                field=field,
                offset=at,
            )
        value = self.data[at]
        if not lo <= value <= hi:
            self.fail(f"{field} {value} at byte {at} is outside {lo}..{hi}", field=field, offset=at)
        self.pos += 1
        return value

    def varint(self, field: str, lo: int, hi: int) -> int:
        start, value = self.pos, 0
        for i in range(spec.VARINT_MAX_BYTES):
            if self.pos >= self.end:
                self.fail(
                    f"{field} at byte {start} runs past the end of its record ({self.end})",
                    field=field,
                    offset=start,
                )
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    self.fail(
                        f"{field} at byte {start} is not a minimal varint",
                        field=field,
                        offset=start,
                    )
                break
        else:
            self.fail(
                f"{field} at byte {start} is a varint longer than 5 bytes",
                field=field,
                offset=start,
            )
        if not lo <= value <= hi:
            self.fail(
                f"{field} {value} at byte {start} is outside {lo}..{hi}", field=field, offset=start
            )
        return value

    def take(self, nbytes: int, field: str) -> bytes:
        if nbytes > self.end - self.pos:
            self.fail(
                f"{field} of {nbytes} bytes at byte {self.pos} runs past the end of its record "
                f"({self.end})",
                field=field,
                offset=self.pos,
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


def read_stream(
    r: Reader,
    field: str,
    count: int,
    alphabet: int,
    width: int,
    max_codec: int,
    *,
    gamma: bool = False,
) -> StreamRecord:
    """Parse one stream record of ``count`` symbols below ``alphabet`` (raw: ``width`` bits
    each; codecs up to ``max_codec``; ``gamma``: version 3, gamma-coded rANS tables allowed),
    checking every length against the record before anything is allocated."""
    offset = r.pos
    codec = r.u8(f"{field} codec", 0, max_codec)
    body_len = r.varint(f"{field} length", 0, spec.VARINT_MAX)
    if body_len > r.end - r.pos:
        r.fail(
            f"{field} length {body_len} at byte {r.pos} runs past the end of the file "
            f"({r.end} bytes)",
            field=f"{field} length",
            offset=r.pos,
        )
    body = Reader(r.data, r.pos, r.pos + body_len)
    r.pos += body_len
    if codec == spec.CODEC_RAW:
        expected = -(-count * width // 8)
        if body_len != expected:
            r.fail(
                f"{field} length {body_len} at byte {body.pos} should be {expected} for "
                f"{count} raw {width}-bit symbols",
                field=f"{field} length",
                offset=body.pos,
            )
        raw = body.take(body_len, field)
        return StreamRecord(codec, offset, r.pos - offset, 0, count, width, raw, None)
    if codec == spec.CODEC_RANS:
        coded = _read_rans(body, field, count, alphabet, gamma)
        table = body_len - len(coded.payload)
        return StreamRecord(codec, offset, r.pos - offset, table, count, width, b"", None, coded)
    stream = _read_huffman(body, field, count, alphabet)
    table = body_len - len(stream.payload)
    return StreamRecord(codec, offset, r.pos - offset, table, count, width, b"", stream)


def _read_rans(b: Reader, field: str, count: int, alphabet: int, gamma: bool) -> rans.RansStream:
    start, body_len = b.pos, b.end - b.pos
    if not 0 < count <= spec.RANS_SYMBOLS_PER_BYTE * body_len:
        b.fail(
            f"{field} at byte {start}: {count} rANS symbols need 1..{spec.RANS_SYMBOLS_PER_BYTE}"
            f" per body byte ({body_len} bytes)",
            field=field,
            offset=start,
        )
    size = b.varint(f"{field} rANS alphabet", 2, alphabet)
    at = b.pos
    precision = b.u8(f"{field} rANS precision", spec.MIN_RANS_PRECISION, spec.MAX_RANS_PRECISION)
    if 1 << precision > max(1 << spec.RANS_TABLE_FREE_LOG2, 8 * body_len):
        b.fail(
            f"{field} rANS precision {precision} at byte {at} is too large for its body",
            field=f"{field} rANS precision",
            offset=at,
        )
    fw = b.u8(f"{field} rANS frequency width", 0 if gamma else 1, precision)
    what = f"{field} rANS frequencies"
    if fw == 0:
        nbytes = b.varint(f"{field} rANS table bytes", 1, spec.GAMMA_TABLE_BYTES_PER_SYMBOL * size)
        at = b.pos
        decoded = gamma_decode(b.take(nbytes, what), size)
        if decoded is None:
            b.fail(f"{what} at byte {at} are not {size} gamma codes", field=what, offset=at)
        freqs = decoded
    else:
        at = b.pos
        freqs = _unpack_table(b, what, fw, size)
    if int(freqs.sum()) != 1 << precision or int(freqs.max()) > rans.max_frequency(precision):
        b.fail(
            f"{what} at byte {at} do not sum to 2**{precision} within 3/4", field=what, offset=at
        )
    block = 1 << b.u8(f"{field} rANS block size", spec.MIN_BLOCK_LOG2, spec.MAX_BLOCK_LOG2)
    at = b.pos
    block_bytes, sizes = _read_block_lengths(
        b, f"{field} rANS", count, block, minimum=_RANS_STATE_BYTES
    )
    if ((block_bytes % 2 == 1) | (block_bytes > _RANS_STATE_BYTES + 2 * sizes)).any():
        b.fail(
            f"{field} rANS block lengths at byte {at} do not fit their symbol counts",
            field=f"{field} rANS block lengths",
            offset=at,
        )
    payload = b.take(int(block_bytes.sum()), f"{field} rANS blocks")
    if b.pos != b.end:
        b.fail(
            f"{field} has {b.end - b.pos} bytes after its rANS blocks at byte {b.pos}",
            field=f"{field} body",
            offset=b.pos,
        )
    return rans.RansStream(freqs, precision, count, block, block_bytes, payload)


def _read_huffman(b: Reader, field: str, count: int, alphabet: int) -> huffman.HuffmanStream:
    start = b.pos
    if count == 0:
        b.fail(
            f"{field} at byte {start} is a Huffman stream of no symbols (must be raw)",
            field=field,
            offset=start,
        )
    size = b.varint(f"{field} Huffman alphabet", 1, alphabet)
    low = b.u8(f"{field} Huffman shortest code length", 1, spec.MAX_CODE_LENGTH)
    lw = b.u8(f"{field} Huffman length width", 1, spec.MAX_LENGTH_WIDTH)
    what, at = f"{field} Huffman code lengths", b.pos
    fields = _unpack_table(b, what, lw, size)
    lengths = np.where(fields > 0, fields + low - 1, 0)
    if (lengths > spec.MAX_CODE_LENGTH).any() or not huffman.kraft_ok(lengths):
        b.fail(f"{what} at byte {at} are not a prefix code", field=what, offset=at)
    block_log2 = b.u8(f"{field} Huffman block size", spec.MIN_BLOCK_LOG2, spec.MAX_BLOCK_LOG2)
    block = 1 << block_log2
    at = b.pos
    block_bits, sizes = _read_block_lengths(b, f"{field} Huffman", count, block, minimum=1)
    lmin, lmax = int(lengths[lengths > 0].min()), int(lengths.max())
    if ((block_bits < sizes * lmin) | (block_bits > sizes * lmax)).any():
        b.fail(
            f"{field} Huffman block lengths at byte {at} do not fit their symbol counts",
            field=f"{field} Huffman block lengths",
            offset=at,
        )
    nbits = int(block_bits.sum())
    payload = b.take(-(-nbits // 8), f"{field} Huffman code bits")
    if b.pos != b.end:
        b.fail(
            f"{field} has {b.end - b.pos} bytes after its code bits at byte {b.pos}",
            field=f"{field} body",
            offset=b.pos,
        )
    if nbits % 8 and payload[-1] & ((1 << (8 - nbits % 8)) - 1):
        b.fail(
            f"{field} padding bits at byte {b.pos - 1} are not zero",
            field=f"{field} padding bits",
            offset=b.pos - 1,
        )
    return huffman.HuffmanStream(lengths.astype(np.uint8), count, block, block_bits, payload)


def decode_raw(record: StreamRecord, alphabet: int, field: str) -> np.ndarray:
    """The symbols of a raw stream record (int64), checked against ``alphabet``."""
    nbits = record.count * record.width
    data = record.raw
    if nbits % 8 and data[-1] & ((1 << (8 - nbits % 8)) - 1):
        at = record.offset + record.nbytes - 1
        fail(
            f"{field} padding bits at byte {at} are not zero",
            field=f"{field} padding bits",
            offset=at,
        )
    values = huffman.unpack_bits(data, record.width, record.count)
    if len(values) and int(values.max()) >= alphabet:
        fail(
            f"{field} at byte {record.offset} holds symbol {int(values.max())}, but only "
            f"{alphabet} are defined",
            field=field,
            offset=record.offset,
        )
    return values


def _unpack_table(b: Reader, field: str, width: int, size: int) -> np.ndarray:
    """``size`` fields of ``width`` bits, MSB first; the low bits after them must be 0."""
    packed = b.take(-(-size * width // 8), field)
    spare = -size * width % 8
    if spare and packed[-1] & ((1 << spare) - 1):
        at = b.pos - 1
        b.fail(f"{field} padding bits at byte {at} are not zero", field=field, offset=at)
    return huffman.unpack_bits(packed, width, size)


def _read_block_lengths(
    b: Reader, what: str, count: int, block: int, *, minimum: int
) -> tuple[np.ndarray, np.ndarray]:
    """The varint length of each block of a blocked stream, and each block's symbol count."""
    nblocks = -(-count // block)
    at = b.pos
    if nblocks > b.end - b.pos:  # one byte per block length at least
        b.fail(
            f"{what} {nblocks} block lengths at byte {at} run past the record",
            field=f"{what} block lengths",
            offset=at,
        )
    lengths = np.array(
        [b.varint(f"{what} block {i} length", minimum, spec.VARINT_MAX) for i in range(nblocks)],
        dtype=np.int64,
    )
    sizes = np.full(nblocks, block, dtype=np.int64)
    sizes[-1] = count - block * (nblocks - 1)
    return lengths, sizes
