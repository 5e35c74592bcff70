"""Static rANS coding of integer symbol streams, blocked so numpy decodes all blocks at once.

Range asymmetric numeral systems (Duda 2013; the byte-wise variant of Giesen's ``rans_byte``
with a 32-bit state and 16-bit renormalisation words): a stream's table is a quantised
frequency per symbol summing to ``2**precision``, and a symbol of frequency ``f`` costs
``precision - log2(f)`` bits, so the code follows the empirical entropy to a fraction of a
percent where Huffman's integer code lengths lose up to ``p_max + 0.086`` bits per symbol on
small skewed alphabets (the relative-position gaps of Deep Compression Sec. 3). Each block of
``block_size`` symbols is an independent rANS stream (a 32-bit initial state then 16-bit
words), and :func:`decode_many` runs all blocks of many streams in lockstep, as
:mod:`squeezenet.formats.huffman` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from squeezenet.formats import spec
from squeezenet.formats.huffman import group_by_block_size

# The format's constants (docs/FORMAT.md section 6) live in spec: the state stays in
# [RANS_STATE_LOW, 2**32), words are RANS_WORD_BITS wide, and frequencies sum to
# 2**precision <= RANS_STATE_LOW (rANS needs L % M == 0).
DEFAULT_BLOCK_SIZE = 2048  # symbols per block: a 4-byte state per block, one numpy step each
GRID_BLOCK_SIZE = 4096  # version 3: grid layers code every weight, so longer blocks pay


class RansDecodeError(ValueError):
    """A block that does not decode to its declared state and length."""

    def __init__(self, message: str, *, stream: int, block: int) -> None:
        super().__init__(message)
        self.stream = stream  # index in the batch given to `decode_many`
        self.block = block  # block index inside that stream


def max_frequency(precision: int) -> int:
    """The largest frequency allowed, ``3/4`` of the total: every symbol then costs at least
    ``log2(4/3)`` bits, which bounds the symbols a file of a given size can declare."""
    return 3 << (precision - 2)


def quantize(counts: np.ndarray, precision: int) -> np.ndarray:
    """Frequencies (int64, same shape as ``counts``) summing to ``2**precision``: every used
    symbol gets >= 1, none more than :func:`max_frequency`; largest-remainder rounding.

    Raises:
        ValueError: fewer than two used symbols, or more used symbols than ``2**precision``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    used = counts > 0
    total, nused = 1 << precision, int(used.sum())
    if not 2 <= nused <= total or not (
        spec.MIN_RANS_PRECISION <= precision <= spec.MAX_RANS_PRECISION
    ):
        raise ValueError(f"quantize: {nused} used symbols do not fit precision {precision}")
    cap = max_frequency(precision)
    exact = counts * total / counts.sum()
    freqs = np.where(used, np.clip(np.floor(exact), 1, cap), 0).astype(np.int64)
    while (diff := total - int(freqs.sum())) != 0:
        if diff > 0:  # raise the symbols below the cap: in proportion, then by remainder
            room = np.where(used, cap - freqs, 0)
            weight = np.where(room > 0, exact, 0.0)
            bulk = np.minimum(room, np.floor(diff * weight / weight.sum())).astype(np.int64)
            if bulk.sum() > 0:
                freqs += bulk
                continue
            gain = np.where(room > 0, exact - freqs, -np.inf)
            pick = np.argsort(-gain, kind="stable")[: min(diff, int(np.isfinite(gain).sum()))]
            freqs[pick] += 1
        else:  # lower every symbol above 1 in proportion to its frequency
            spare = np.maximum(freqs - 1, 0)
            cut = np.minimum(spare, -(-spare * -diff // int(spare.sum())))
            freqs -= cut
    return freqs


def cost_bits(counts: np.ndarray, freqs: np.ndarray, precision: int) -> float:
    """Bits of the code of a stream with symbol ``counts`` under ``freqs`` (no block states)."""
    used = counts > 0
    return float((counts[used] * (precision - np.log2(freqs[used]))).sum())


@dataclass(frozen=True)
class RansStream:
    """A rANS-coded symbol stream cut into independently decodable blocks."""

    freqs: np.ndarray  # int64 (A,): frequency of each symbol, summing to 2**precision
    precision: int
    count: int  # number of symbols
    block_size: int  # symbols per block (the last block may be shorter)
    block_bytes: np.ndarray  # int64 (nblocks,): bytes of each block: 4 + 2 * words
    payload: bytes  # the blocks back to back: u32le initial state, then u16le words


def encode(
    symbols: np.ndarray, freqs: np.ndarray, precision: int, *, block_size: int = DEFAULT_BLOCK_SIZE
) -> RansStream:
    """Encode ``symbols`` (ints < len(freqs), each of non-zero frequency)."""
    return encode_many([(symbols, freqs, precision)], block_size=block_size)[0]


@dataclass
class _Lanes:
    """All blocks of several streams side by side: one lane per block (the encoder's state)."""

    grid: np.ndarray  # (block_size, lanes) global symbol ids (each stream's ids offset)
    freqs: np.ndarray  # uint64 (sum of alphabets,) frequencies of the global ids
    starts: np.ndarray  # uint64, cumulative frequencies of the global ids
    sizes: np.ndarray  # (lanes,) symbols in each block
    shift: np.ndarray  # uint64 (lanes,) 32 - precision: x_max = f << shift
    nblocks: list[int]  # blocks of each stream


def _lanes(jobs: Sequence[tuple[np.ndarray, np.ndarray, int]], block_size: int) -> _Lanes:
    grids, fq, cm, prec, sizes, nblocks = [], [], [], [], [], []
    off = 0
    for symbols, freqs, precision in jobs:
        symbols = np.asarray(symbols, dtype=np.int64)
        freqs = np.asarray(freqs, dtype=np.int64)
        count = len(symbols)
        if count == 0 or int(freqs.sum()) != 1 << precision or (freqs[symbols] == 0).any():
            raise ValueError("rans.encode: needs symbols of non-zero frequency, sum 2**precision")
        nb = -(-count // block_size)
        grid = np.full(nb * block_size, int(symbols[0]) + off)  # padding: a used symbol
        grid[:count] = symbols + off
        grids.append(grid.reshape(nb, block_size))
        fq.append(freqs)
        cm.append(np.concatenate([[0], np.cumsum(freqs)[:-1]]))
        size = np.full(nb, block_size)
        size[-1] = count - block_size * (nb - 1)
        sizes.append(size)
        prec.append(np.full(nb, 32 - precision))
        nblocks.append(nb)
        off += len(freqs)
    return _Lanes(
        np.concatenate(grids).T,
        np.concatenate(fq).astype(np.uint64),
        np.concatenate(cm).astype(np.uint64),
        np.concatenate(sizes),
        np.concatenate(prec).astype(np.uint64),
        nblocks,
    )


def _encode_lanes(lanes: _Lanes, block_size: int) -> list[np.ndarray]:
    """Per block: the final state, then the words in decoding order (emitted last to first)."""
    up = lanes.shift
    p = np.uint64(32) - up
    count = len(lanes.sizes)
    x = np.full(count, spec.RANS_STATE_LOW, dtype=np.uint64)
    words = np.zeros((block_size, count), dtype=np.uint16)
    emitted = np.zeros((block_size, count), dtype=bool)
    s16, low16 = np.uint64(spec.RANS_WORD_BITS), np.uint64(spec.RANS_STATE_LOW - 1)
    for k in range(block_size - 1, -1, -1):
        active = lanes.sizes > k
        g = lanes.grid[k]
        f = lanes.freqs[g]
        out = active & (x >= (f << up))
        words[k] = (x & low16).astype(np.uint16)
        emitted[k] = out
        x = np.where(out, x >> s16, x)
        x = np.where(active, ((x // f) << p) + (x % f) + lanes.starts[g], x)
    return [
        np.concatenate([[x[b] & low16, x[b] >> s16], words[emitted[:, b], b]]).astype("<u2")
        for b in range(count)
    ]


def encode_many(
    jobs: Sequence[tuple[np.ndarray, np.ndarray, int]], *, block_size: int = DEFAULT_BLOCK_SIZE
) -> list[RansStream]:
    """Encode ``(symbols, freqs, precision)`` streams, all their blocks in lockstep from their
    last symbol back to their first (one numpy step per symbol position in a block)."""
    lanes = _lanes(jobs, block_size)
    per_block = _encode_lanes(lanes, block_size)
    out_streams, first = [], 0
    for (symbols, freqs, precision), nb in zip(jobs, lanes.nblocks, strict=True):
        blocks = per_block[first : first + nb]
        first += nb
        block_bytes = np.array([2 * len(w) for w in blocks], dtype=np.int64)
        payload = b"".join(w.tobytes() for w in blocks)
        out_streams.append(
            RansStream(
                np.asarray(freqs, dtype=np.int64),
                precision,
                len(symbols),
                block_size,
                block_bytes,
                payload,
            )
        )
    return out_streams


def decode(stream: RansStream) -> np.ndarray:
    """Decode one stream: int64 (count,). Raises :class:`RansDecodeError`."""
    return decode_many([stream])[0]


def decode_many(streams: Sequence[RansStream]) -> list[np.ndarray]:
    """Decode many streams together, all their blocks in lockstep; int64 symbols per stream.

    Each stream's ``freqs`` must sum to ``2**precision`` and its block lengths must be even,
    at least 4, sum to ``len(payload)`` and match ``count`` and ``block_size``; the caller
    checks these bounds. A block whose initial state is below ``2**16``, whose state after its
    last symbol's renormalisation is not the initial encoder state ``2**16``, or whose words
    are not used exactly raises :class:`RansDecodeError`.
    """
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(streams)
    for batch in group_by_block_size(streams):
        _decode_batch(streams, batch, out)
    return out


@dataclass
class _DecodeLanes:
    """The blocks of a batch of streams side by side: one decoder lane per block."""

    table: np.ndarray  # int64, slot -> global symbol, every stream's table concatenated
    syms_of: np.ndarray  # global -> local symbol
    freqs: np.ndarray  # uint64 per global symbol
    starts: np.ndarray  # uint64 cumulative frequency per global symbol
    counts: np.ndarray  # (lanes,) symbols in each block
    words: np.ndarray  # uint64, every payload's 16-bit words, zero-padded at the end
    first: np.ndarray  # (lanes,) index of each block's first word
    ends: np.ndarray  # (lanes,) index one past each block's last word
    mask: np.ndarray  # uint64 (lanes,) 2**precision - 1
    shift: np.ndarray  # uint64 (lanes,) precision
    offset: np.ndarray  # int64 (lanes,) where the block's table starts
    tags: np.ndarray  # (lanes,) index into the batch of each block's stream


def _decode_lanes(streams: Sequence[RansStream], batch: list[int]) -> _DecodeLanes:
    tables, freq, cum, word_parts, starts, ends, sizes, masks, shifts, offs, tags = (
        [] for _ in range(11)
    )
    word_off = sym_off = table_off = 0
    for index, i in enumerate(batch):
        s = streams[i]
        f = s.freqs.astype(np.int64)
        tables.append(np.repeat(np.arange(len(f)) + sym_off, f))  # slot -> global symbol
        freq.append(f)
        cum.append(np.concatenate([[0], np.cumsum(f)[:-1]]))
        word_parts.append(np.frombuffer(s.payload, dtype="<u2"))
        bounds = word_off + np.concatenate([[0], np.cumsum(s.block_bytes // 2)])
        starts.append(bounds[:-1])
        ends.append(bounds[1:])
        nblocks = len(s.block_bytes)
        counts = np.full(nblocks, s.block_size, dtype=np.int64)
        counts[-1] = s.count - s.block_size * (nblocks - 1)
        sizes.append(counts)
        masks.append(np.full(nblocks, (1 << s.precision) - 1))
        shifts.append(np.full(nblocks, s.precision))
        offs.append(np.full(nblocks, table_off))
        tags.append(np.full(nblocks, index))
        word_off += len(word_parts[-1])
        sym_off += len(f)
        table_off += 1 << s.precision
    counts_all = np.concatenate(sizes)
    steps = int(counts_all.max())
    return _DecodeLanes(
        table=np.concatenate(tables).astype(np.int64),
        syms_of=np.concatenate([np.arange(len(f)) for f in freq]),
        freqs=np.concatenate(freq).astype(np.uint64),
        starts=np.concatenate(cum).astype(np.uint64),
        counts=counts_all,
        words=np.concatenate([*word_parts, np.zeros(steps + 2, dtype=np.uint16)]).astype(np.uint64),
        first=np.concatenate(starts),
        ends=np.concatenate(ends),
        mask=np.concatenate(masks).astype(np.uint64),
        shift=np.concatenate(shifts).astype(np.uint64),
        offset=np.concatenate(offs).astype(np.int64),
        tags=np.concatenate(tags),
    )


def _decode_batch(streams: Sequence[RansStream], batch: list[int], out: list[np.ndarray]) -> None:
    lanes = _decode_lanes(streams, batch)
    counts_all, words = lanes.counts, lanes.words
    steps = int(counts_all.max())
    ptr = lanes.first + 2
    x = words[lanes.first] | (words[lanes.first + 1] << np.uint64(spec.RANS_WORD_BITS))
    initial = x  # the loop rebinds x
    final_x, final_ptr = x.copy(), ptr.copy()
    finishing: dict[int, np.ndarray] = {}
    for k in np.unique(counts_all - 1).tolist():
        finishing[k] = np.flatnonzero(counts_all - 1 == k)
    out_syms = np.empty((steps, len(x)), dtype=np.int64)
    low, s16 = np.uint64(spec.RANS_STATE_LOW), np.uint64(spec.RANS_WORD_BITS)
    for k in range(steps):
        slot = x & lanes.mask
        g = lanes.table[lanes.offset + slot.astype(np.int64)]
        out_syms[k] = g
        x = lanes.freqs[g] * (x >> lanes.shift) + slot - lanes.starts[g]
        need = x < low
        x = np.where(need, (x << s16) | words[ptr], x)
        ptr += need
        done = finishing.get(k)
        if done is not None:
            final_x[done], final_ptr[done] = x[done], ptr[done]
    ends_ok = (final_x == low) & (final_ptr == lanes.ends)
    _check_blocks(initial, ends_ok, lanes.tags, batch)
    valid = np.arange(steps)[:, None] < counts_all[None, :]
    flat = lanes.syms_of[out_syms.T[valid.T]]  # block-major: each stream's symbols in order
    split_at = np.cumsum([streams[i].count for i in batch])
    for i, part in zip(batch, np.split(flat, split_at[:-1]), strict=True):
        out[i] = part.astype(np.int64)


def _check_blocks(
    initial: np.ndarray, ends_ok: np.ndarray, tags: np.ndarray, batch: list[int]
) -> None:
    """Raise for the first block that starts below ``2**16`` (no encoder ends a block there)
    or does not end at state ``2**16`` with all its words read (``ends_ok`` False)."""
    low_start = initial < np.uint64(spec.RANS_STATE_LOW)
    wrong = np.flatnonzero(low_start | ~ends_ok)
    if len(wrong):
        blk = int(wrong[0])
        block = blk - int(np.flatnonzero(tags == tags[blk])[0])
        what = (
            f"starts from state {int(initial[blk]):#x}, below 2**16"
            if low_start[blk]
            else "does not decode to its declared length and final state"
        )
        raise RansDecodeError(
            f"rANS block {block} {what}", stream=batch[int(tags[blk])], block=block
        )
