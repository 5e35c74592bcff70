"""Canonical Huffman coding of integer symbol streams (Deep Compression Sec. 4).

Code lengths come from symbol counts (length-limited), the code itself is the canonical one
(RFC 1951 Sec. 3.2.2), so a stream's table is just its code lengths. Bits are packed
MSB-first. A stream is cut into blocks of ``block_size`` symbols whose bit lengths are kept, so
the decoder can run all blocks of many streams in lockstep with numpy (one array operation per
symbol *position in a block*, not per symbol): that is what makes decoding fast in pure numpy.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from squeezenet.formats.spec import MAX_CODE_LENGTH  # longest code emitted and accepted

DEFAULT_BLOCK_SIZE = 1024  # symbols per block: decode time ~ block_size numpy steps per batch
_MIN_PRIMARY_BITS = 8  # primary decode tables have 2**bits entries, at most ~2x the stream bits


class HuffmanDecodeError(ValueError):
    """A bit stream that is not a valid encoding under its table."""

    def __init__(self, message: str, *, stream: int, block: int) -> None:
        super().__init__(message)
        self.stream = stream  # index in the batch given to `decode_many`
        self.block = block  # block index inside that stream


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical entropy of ``symbols`` times their count, in bits: the bound for any
    symbol-by-symbol code that does not know the order of the symbols."""
    symbols = np.asarray(symbols)
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / symbols.size
    return float(-(counts * np.log2(p)).sum())


def code_lengths(counts: np.ndarray, max_len: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths for symbol ``counts``, none longer than ``max_len``.

    Args:
        counts: int (A,), how often each symbol 0..A-1 occurs (0: unused, gets length 0).
        max_len: the length limit in bits, 1..MAX_CODE_LENGTH.

    Returns:
        uint8 (A,) code lengths; a single used symbol gets length 1.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("code_lengths: counts must be a 1-D array of non-negative integers")
    if not 1 <= max_len <= MAX_CODE_LENGTH:
        raise ValueError(f"code_lengths: max_len must be in 1..{MAX_CODE_LENGTH}, got {max_len}")
    used = np.flatnonzero(counts)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    if len(used) == 0:
        return lengths
    if len(used) > (1 << max_len):
        raise ValueError(f"code_lengths: {len(used)} symbols do not fit in {max_len}-bit codes")
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    depth = _tree_depths(counts[used].tolist())
    bl_count = np.bincount(depth, minlength=max(max(depth), max_len) + 1).tolist()
    _limit_lengths(bl_count, max_len)
    # Most frequent symbols get the shortest codes; ties by symbol id keep it deterministic.
    order = used[np.lexsort((used, -counts[used]))]
    sorted_lengths = np.repeat(np.arange(len(bl_count)), bl_count)
    lengths[order] = sorted_lengths
    return lengths


def _tree_depths(weights: list[int]) -> list[int]:
    """Leaf depths of a Huffman tree over ``weights`` (ties broken by node creation order)."""
    n = len(weights)
    heap = [(w, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    depth = [0] * (2 * n - 1)
    for i in range(2 * n - 3, -1, -1):  # parents are created after their children
        depth[i] = depth[parent[i]] + 1
    return depth[:n]


def _limit_lengths(bl_count: list[int], max_len: int) -> None:
    """Move codes longer than ``max_len`` up, keeping the Kraft sum (JPEG Annex K.3)."""
    for i in range(len(bl_count) - 1, max_len, -1):
        while bl_count[i] > 0:
            j = i - 2
            while bl_count[j] == 0:
                j -= 1
            bl_count[i] -= 2
            bl_count[i - 1] += 1
            bl_count[j + 1] += 2
            bl_count[j] -= 1
    del bl_count[max_len + 1 :]


def kraft_ok(lengths: np.ndarray) -> bool:
    """Whether ``lengths`` (0 = unused) describe a prefix code (Kraft sum <= 1)."""
    used = lengths[lengths > 0].astype(np.int64)
    if len(used) == 0 or used.max() > MAX_CODE_LENGTH:
        return False
    return int((1 << (MAX_CODE_LENGTH - used)).sum()) <= 1 << MAX_CODE_LENGTH


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code of each symbol (RFC 1951 Sec. 3.2.2): uint32 (A,), 0 where unused.

    Symbols are ordered by (length, symbol); each code is the previous one plus one, shifted
    left when the length grows. ``lengths`` must satisfy :func:`kraft_ok`.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(len(lengths), dtype=np.uint32)
    used = np.flatnonzero(lengths)
    if len(used) == 0:
        return codes
    order = used[np.lexsort((used, lengths[used]))]
    lens = lengths[order]
    bl_count = np.bincount(lens, minlength=MAX_CODE_LENGTH + 1)
    next_code = np.zeros(MAX_CODE_LENGTH + 1, dtype=np.int64)
    code = 0
    for bits in range(1, MAX_CODE_LENGTH + 1):
        code = (code + int(bl_count[bits - 1])) << 1  # bl_count[0] == 0: only used symbols
        next_code[bits] = code
    first_index = np.searchsorted(lens, lens, side="left")
    codes[order] = (next_code[lens] + np.arange(len(order)) - first_index).astype(np.uint32)
    return codes


def pack_bits(values: np.ndarray, widths: np.ndarray | int) -> tuple[bytes, int]:
    """Concatenate the low ``widths`` bits of each value, MSB first, zero-padded to a byte.

    Returns:
        (packed bytes, number of bits written).
    """
    values = np.asarray(values, dtype=np.uint32)
    if isinstance(widths, int):
        if widths == 0 or len(values) == 0:
            return b"", 0
        shifts = np.arange(widths - 1, -1, -1, dtype=np.uint32)
        bits = ((values[:, None] >> shifts) & 1).astype(np.uint8)
        return np.packbits(bits.ravel()).tobytes(), len(values) * widths
    widths = np.asarray(widths, dtype=np.int64)
    total = int(widths.sum())
    if total == 0:
        return b"", 0
    owner = np.repeat(np.arange(len(values)), widths)  # (total,) symbol of each bit
    starts = np.cumsum(widths) - widths
    shift = (widths[owner] - 1 - (np.arange(total) - starts[owner])).astype(np.uint32)
    bits = ((values[owner] >> shift) & 1).astype(np.uint8)
    return np.packbits(bits).tobytes(), total


def unpack_bits(data: bytes | np.ndarray, width: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits` for a fixed width: int64 (count,). ``data`` must hold
    at least ``count * width`` bits."""
    if count == 0 or width == 0:
        return np.zeros(count, dtype=np.int64)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=count * width)
    weights = (1 << np.arange(width - 1, -1, -1)).astype(np.int64)
    return bits.reshape(count, width).astype(np.int64) @ weights


@dataclass(frozen=True)
class HuffmanStream:
    """A Huffman-coded symbol stream cut into blocks (the block bit lengths allow parallel
    decoding)."""

    lengths: np.ndarray  # uint8 (A,): code length of each symbol, 0 = unused
    count: int  # number of symbols
    block_size: int  # symbols per block (the last block may be shorter)
    block_bits: np.ndarray  # int64 (nblocks,): bits of each block; blocks are back to back
    payload: bytes  # the code bits, MSB first, zero-padded to a whole byte

    @property
    def nbits(self) -> int:
        return int(self.block_bits.sum())


def encode(
    symbols: np.ndarray, lengths: np.ndarray, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> HuffmanStream:
    """Encode ``symbols`` (ints < len(lengths), each with a non-zero length) canonically."""
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.uint8)
    if block_size < 1:
        raise ValueError(f"encode: block_size must be >= 1, got {block_size}")
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= len(lengths)):
        raise ValueError(f"encode: symbols must lie in 0..{len(lengths) - 1}")
    sym_len = lengths[symbols].astype(np.int64)
    if (sym_len == 0).any():
        raise ValueError("encode: a symbol to encode has code length 0 in the table")
    payload, _ = pack_bits(canonical_codes(lengths)[symbols], sym_len)
    csum = np.concatenate([[0], np.cumsum(sym_len)])
    bounds = np.minimum(np.arange(0, len(symbols) + block_size, block_size), len(symbols))
    bounds = np.unique(bounds)
    block_bits = np.diff(csum[bounds]) if len(symbols) else np.zeros(0, dtype=np.int64)
    return HuffmanStream(lengths, len(symbols), block_size, block_bits, payload)


def decode(stream: HuffmanStream) -> np.ndarray:
    """Decode one stream: int64 (count,). Raises :class:`HuffmanDecodeError`."""
    return decode_many([stream])[0]


@dataclass
class _Batch:
    """Concatenated decode tables and block cursors of streams decoded together."""

    primary_sym: np.ndarray  # int32: symbol of each primary-table window, -1: ask the keys
    primary_len: np.ndarray  # uint8: its code length, 0: not resolved by the primary table
    keys: np.ndarray  # uint64 sorted: (stream tag << 20) | code left-justified to 20 bits
    key_sym: np.ndarray  # int32: symbol of each key
    key_len: np.ndarray  # uint8: code length of each key


def _tables(
    lengths: np.ndarray, nbits: int, tag: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """Primary table over the first ``p`` bits (``2**p`` is at most about twice ``nbits``, so a
    hostile file cannot ask for huge tables) plus sorted keys for the longer codes."""
    lens = lengths.astype(np.int64)
    used = np.flatnonzero(lens)
    order = used[np.lexsort((used, lens[used]))]  # canonical order: codes increase
    olen = lens[order]
    p = min(int(olen[-1]), max(_MIN_PRIMARY_BITS, nbits.bit_length()))
    short = olen <= p  # a prefix of the canonical order
    span = 1 << (p - olen[short])  # canonical codes tile the window space in this order
    tail = (1 << p) - int(span.sum())
    sym = np.concatenate([np.repeat(order[short], span), np.full(tail, -1)]).astype(np.int32)
    ln = np.concatenate([np.repeat(olen[short], span), np.zeros(tail, dtype=np.int64)])
    codes = canonical_codes(lengths)[order].astype(np.uint64)
    keys = (np.uint64(tag) << np.uint64(MAX_CODE_LENGTH)) | (
        codes << (MAX_CODE_LENGTH - olen).astype(np.uint64)
    )
    return sym, ln.astype(np.uint8), p, keys, order.astype(np.int32), olen.astype(np.uint8)


def decode_many(streams: Sequence[HuffmanStream]) -> list[np.ndarray]:
    """Decode many streams together, all their blocks in lockstep; int64 symbols per stream.

    Each stream's ``lengths`` must satisfy :func:`kraft_ok`, its block count and sizes must
    match ``count`` and ``block_size``, and ``payload`` must hold ``ceil(nbits / 8)`` bytes;
    the caller checks these bounds (they are cheap and need no allocation). What only decoding
    can tell (an unassigned code, a block whose codes do not end exactly at its declared bit
    length) raises :class:`HuffmanDecodeError`. Work and memory are linear in the stream bits
    plus ``block_size`` numpy steps per distinct block size.
    """
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(streams)
    for batch in group_by_block_size(streams):
        _decode_batch(streams, batch, out)
    return out


@dataclass
class _Lanes:
    """The blocks of a batch of streams side by side: one decoder lane per block."""

    tables: _Batch  # every stream's decode tables, concatenated
    counts: np.ndarray  # (lanes,) symbols in each block
    word: np.ndarray  # uint64 (nbytes,): the 32 bits starting at each payload byte
    pos: np.ndarray  # uint64 (lanes,) bit cursor of each block
    rshift: np.ndarray  # uint64 (lanes,) 64 - primary table bits
    offset: np.ndarray  # uint64 (lanes,) where the block's primary table starts
    tags: np.ndarray  # (lanes,) index into the batch of each block's stream


def _lanes(streams: Sequence[HuffmanStream], batch: list[int]) -> _Lanes:
    payloads, cur, count, shift, toff, tags, parts = [], [], [], [], [], [], []
    byte_off = table_off = 0
    for index, i in enumerate(batch):
        s = streams[i]
        sym, ln, p, keys, key_sym, key_len = _tables(s.lengths, s.nbits, index)
        parts.append((sym, ln, keys, key_sym, key_len))
        nblocks = len(s.block_bits)
        cur.append(byte_off * 8 + np.concatenate([[0], np.cumsum(s.block_bits)[:-1]]))
        counts = np.full(nblocks, s.block_size, dtype=np.int64)
        counts[-1] = s.count - s.block_size * (nblocks - 1)
        count.append(counts)
        shift.append(np.full(nblocks, 64 - p))
        toff.append(np.full(nblocks, table_off))
        tags.append(np.full(nblocks, index))
        payloads.append(np.frombuffer(s.payload, dtype=np.uint8))
        byte_off += len(s.payload)
        table_off += len(sym)
    counts_all = np.concatenate(count)
    steps = int(counts_all.max())
    # Blocks that finish early keep decoding garbage until the longest is done: pad for them.
    buf = np.concatenate([*payloads, np.zeros(steps * MAX_CODE_LENGTH // 8 + 8, np.uint8)])
    b = buf.astype(np.uint64)
    word = (b[:-3] << np.uint64(24)) | (b[1:-2] << np.uint64(16)) | (b[2:-1] << np.uint64(8))
    word |= b[3:]  # big-endian
    return _Lanes(
        tables=_Batch(*(np.concatenate(column) for column in zip(*parts, strict=True))),
        counts=counts_all,
        word=word,
        pos=np.concatenate(cur).astype(np.uint64),
        rshift=np.concatenate(shift).astype(np.uint64),
        offset=np.concatenate(toff).astype(np.uint64),
        tags=np.concatenate(tags),
    )


def _decode_batch(
    streams: Sequence[HuffmanStream], batch: list[int], out: list[np.ndarray]
) -> None:
    lanes = _lanes(streams, batch)
    tables, word, pos = lanes.tables, lanes.word, lanes.pos
    counts_all = lanes.counts
    steps = int(counts_all.max())
    tag = lanes.tags.astype(np.uint64)
    syms = np.empty((steps, len(pos)), dtype=np.int32)
    lens = np.empty((steps, len(pos)), dtype=np.uint8)
    three, seven, s32 = np.uint64(3), np.uint64(7), np.uint64(32)
    for k in range(steps):
        top = word[pos >> three] << ((pos & seven) + s32)  # next bits at the top of 64
        t = (top >> lanes.rshift) + lanes.offset
        sym = tables.primary_sym[t]
        step = tables.primary_len[t]
        slow = np.flatnonzero(step == 0)
        if len(slow):
            sym[slow], step[slow] = _lookup_long(tables, top[slow], tag[slow])
        syms[k] = sym
        lens[k] = step
        pos += step
    valid = np.arange(steps)[:, None] < counts_all[None, :]  # (steps, blocks)
    _check_blocks(streams, batch, syms, lens, valid, lanes.tags)
    flat = syms.T[valid.T].astype(np.int64)  # block-major: each stream's symbols in order
    ends = np.cumsum([streams[i].count for i in batch])
    for i, part in zip(batch, np.split(flat, ends[:-1]), strict=True):
        out[i] = part


def _lookup_long(tables: _Batch, top: np.ndarray, tag: np.ndarray) -> tuple[np.ndarray, ...]:
    """Symbols and lengths of codes longer than the primary table (or invalid: -1, 1)."""
    query = (tag << np.uint64(MAX_CODE_LENGTH)) | (top >> np.uint64(64 - MAX_CODE_LENGTH))
    k = np.searchsorted(tables.keys, query, side="right") - 1
    kc = np.maximum(k, 0)
    length = tables.key_len[kc]
    span = np.uint64(1) << (MAX_CODE_LENGTH - length).astype(np.uint64)
    same = (tables.keys[kc] >> np.uint64(MAX_CODE_LENGTH)) == tag
    ok = (k >= 0) & same & (query - tables.keys[kc] < span)
    return np.where(ok, tables.key_sym[kc], -1), np.where(ok, length, 1).astype(np.uint8)


def _check_blocks(
    streams: Sequence[HuffmanStream],
    batch: list[int],
    syms: np.ndarray,
    lens: np.ndarray,
    valid: np.ndarray,
    tags: np.ndarray,
) -> None:
    bad = ((syms < 0) & valid).any(axis=0)
    used_bits = np.where(valid, lens, 0).sum(axis=0, dtype=np.int64)
    declared = np.concatenate([streams[i].block_bits for i in batch])
    wrong = np.flatnonzero(bad | (used_bits != declared))
    if len(wrong):
        blk = int(wrong[0])
        block = blk - int(np.flatnonzero(tags == tags[blk])[0])
        what = "an unassigned code" if bad[blk] else f"{used_bits[blk]} bits, not {declared[blk]}"
        raise HuffmanDecodeError(
            f"Huffman block {block} decodes to {what}", stream=batch[int(tags[blk])], block=block
        )


class _Blocked(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def block_size(self) -> int: ...


def group_by_block_size(streams: Sequence[_Blocked]) -> list[list[int]]:
    """Indices of the non-empty streams, grouped by block size: each group decodes in lockstep."""
    groups: dict[int, list[int]] = {}
    for i, stream in enumerate(streams):
        if stream.count:
            groups.setdefault(stream.block_size, []).append(i)
    return list(groups.values())
