"""Read the records of .sqz bytes one at a time (docs/FORMAT.md sections 4, 4a and 7): layer,
grid-layer and dense records, every bound checked before a read; the streams stay undecoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from squeezenet.formats import spec
from squeezenet.formats.bitio import Reader, StreamRecord, read_stream


@dataclass
class ParsedLayer:
    """One decoded layer record and where its bytes went."""

    index: int
    offset: int  # byte offset of the record
    nbytes: int  # bytes of the whole record
    name: str
    shape: tuple[int, ...]
    bits: int
    complement: bool  # the position stream lists the absent weights
    gap_bits: int
    stored: int  # number of stored weights
    codebook: np.ndarray  # float32 (K,)
    codebook_bytes: int
    bias: np.ndarray | None
    bias_bytes: int  # bias length varint and values
    codes: StreamRecord
    positions: StreamRecord
    grid: tuple[int, float, int] | None = None  # grid layer: quantizer, step, state period
    # version 4, a grid layer whose bias lies on a grid: its step and level stream (the bias
    # stays None until the stream is decoded)
    bias_step: float | None = None
    bias_stream: StreamRecord | None = None
    bias_bits: int | None = None
    bias_levels: np.ndarray | None = None
    code_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    position_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class DenseRecord:
    """One parsed dense record."""

    offset: int  # byte offset of the record
    name: str
    value: np.ndarray  # float32 of its dims


def _read_name(r: Reader, field: str) -> str:
    size = r.varint(f"{field} name length", 1, spec.MAX_NAME_BYTES)
    at = r.pos
    try:
        return r.take(size, f"{field} name").decode("utf-8")
    except UnicodeDecodeError:
        r.fail(f"{field} name at byte {at} is not UTF-8", field=f"{field} name", offset=at)


def _read_shape(r: Reader, field: str, ndim: int, lo: int, limit: int) -> tuple[int, ...]:
    dims, numel = [], 1
    for j in range(ndim):
        at = r.pos
        dims.append(r.varint(f"{field} dimension {j}", lo, limit))
        numel *= dims[-1]
        if numel > limit:
            r.fail(
                f"{field} dimension {j} at byte {at} makes {numel} values, over {limit}",
                field=f"{field} dimension {j}",
                offset=at,
            )
    return tuple(dims)


def read_layer(r: Reader, index: int, version: int) -> ParsedLayer:
    field, offset = f"layer {index}", r.pos
    max_codec, v3 = spec.MAX_CODEC[version], version >= spec.VERSION_GRID
    name = _read_name(r, field)
    ndim = r.u8(f"{field} ndim", 1, spec.MAX_NDIM)
    shape = _read_shape(r, field, ndim, 1, spec.MAX_NUMEL)
    numel = int(np.prod(shape))
    bits = r.u8(f"{field} bits", 1, spec.MAX_BITS)
    flags_at = r.pos
    flags = _read_flags(r, field, version)
    if flags & spec.FLAG_GRID:
        return _read_grid_layer(r, _Head(index, offset, name, shape, bits, flags, flags_at))
    size = r.varint(f"{field} codebook size", 1, 1 << bits)
    start = r.pos
    if flags & spec.FLAG_FLOAT16:
        codebook = widen_float16(r.take(2 * size, f"{field} codebook"))
    else:
        codebook = np.frombuffer(r.take(4 * size, f"{field} codebook"), "<f4").astype(np.float32)
    codebook_bytes = r.pos - start
    bias, start = None, r.pos
    if flags & spec.FLAG_BIAS:
        bias = _read_bias(r, field, shape[0], bool(flags & spec.FLAG_BIAS16))
    bias_bytes = r.pos - start
    stored = r.varint(f"{field} stored weights", 0, numel)
    gap_bits = r.u8(f"{field} gap bits", 1, spec.MAX_GAP_BITS)
    complement = bool(flags & spec.FLAG_COMPLEMENT)
    listed = numel - stored if complement else stored
    # Every position symbol moves the cursor by at least one index (section 5).
    nsym = r.varint(f"{field} position symbols", listed, numel)
    codes = read_stream(r, f"{field} code stream", stored, size, bits, max_codec, gamma=v3)
    positions = read_stream(
        r, f"{field} position stream", nsym, 1 << gap_bits, gap_bits, max_codec, gamma=v3
    )
    return ParsedLayer(
        index,
        offset,
        r.pos - offset,
        name,
        shape,
        bits,
        complement,
        gap_bits,
        stored,
        codebook,
        codebook_bytes,
        bias,
        bias_bytes,
        codes,
        positions,
    )


def _read_flags(r: Reader, field: str, version: int) -> int:
    """The flags byte, checked against the version's bits and their pairings (section 4)."""
    flags_at = r.pos
    flags = r.u8(f"{field} flags", 0, 255)
    allowed = spec.LAYER_FLAGS_V3 if version >= spec.VERSION_GRID else spec.LAYER_FLAGS
    if version >= spec.VERSION_BIAS_GRID:
        allowed = spec.LAYER_FLAGS_V4
    needs = spec.FLAG_GRID | spec.FLAG_BIAS
    if (
        flags & ~allowed
        or (flags & spec.FLAG_BIAS16 and not flags & spec.FLAG_BIAS)
        or (flags & spec.FLAG_BIAS_GRID and (flags & needs != needs or flags & spec.FLAG_BIAS16))
    ):
        r.fail(
            f"{field} flags {flags:#04x} at byte {flags_at} set reserved bits (or BIAS16 "
            "without BIAS, or BIASGRID without GRID and BIAS or with BIAS16)",
            field=f"{field} flags",
            offset=flags_at,
        )
    return flags


@dataclass(frozen=True)
class _Head:
    """The fields every layer record starts with."""

    index: int
    offset: int
    name: str
    shape: tuple[int, ...]
    bits: int
    flags: int
    flags_at: int


def _read_grid_layer(r: Reader, h: _Head) -> ParsedLayer:
    """The rest of a grid layer record (section 4a, version 3)."""
    field = f"layer {h.index}"
    if h.flags & (spec.FLAG_FLOAT16 | spec.FLAG_COMPLEMENT):
        r.fail(
            f"{field} flags {h.flags:#04x} at byte {h.flags_at}: a grid layer has no codebook "
            "or positions (FLOAT16 and COMPLEMENT must be 0)",
            field=f"{field} flags",
            offset=h.flags_at,
        )
    if h.bits > spec.MAX_GRID_BITS:
        r.fail(
            f"{field} bits {h.bits} at byte {h.flags_at - 1} is over 15 for a grid layer",
            field=f"{field} bits",
            offset=h.flags_at - 1,
        )
    quantizer = r.u8(f"{field} quantizer", spec.QUANTIZER_UNIFORM, spec.QUANTIZER_DEPENDENT)
    step = _read_step(r, f"{field} grid step")
    longest = spec.MAX_STATE_PERIOD_LOG2 if quantizer == spec.QUANTIZER_DEPENDENT else 4
    period = r.u8(f"{field} state period", spec.MIN_STATE_PERIOD_LOG2, longest)
    start = r.pos
    bias, (bias_step, bias_bits, bias_stream) = None, (None, None, None)
    if h.flags & spec.FLAG_BIAS_GRID:
        bias_step, bias_bits, bias_stream = _read_bias_grid(r, field, h.shape[0])
    elif h.flags & spec.FLAG_BIAS:
        bias = _read_bias(r, field, h.shape[0], bool(h.flags & spec.FLAG_BIAS16))
    bias_bytes = r.pos - start
    numel = int(np.prod(h.shape))
    levels = read_stream(
        r, f"{field} level stream", numel, 1 << h.bits, h.bits, spec.CODEC_RANS, gamma=True
    )
    empty = StreamRecord(spec.CODEC_RAW, r.pos, 0, 0, 0, 1, b"", None)
    return ParsedLayer(
        h.index,
        h.offset,
        r.pos - h.offset,
        h.name,
        h.shape,
        h.bits,
        False,
        0,
        numel,
        np.zeros(0, dtype=np.float32),
        0,
        bias,
        bias_bytes,
        levels,
        empty,
        grid=(quantizer, step, period),
        bias_step=bias_step,
        bias_stream=bias_stream,
        bias_bits=bias_bits,
    )


def _read_bias_grid(r: Reader, field: str, channels: int) -> tuple[float, int, StreamRecord]:
    """A grid layer's bias on a grid (section 4a, version 4): its step and level stream."""
    _check_bias_length(r, field, channels)
    step = _read_step(r, f"{field} bias step")
    bits = r.u8(f"{field} bias bits", 1, spec.MAX_GRID_BITS)
    stream = read_stream(
        r, f"{field} bias stream", channels, 1 << bits, bits, spec.CODEC_RANS, gamma=True
    )
    return step, bits, stream


def _read_bias(r: Reader, field: str, channels: int, half: bool = False) -> np.ndarray:
    """The bias of a layer of ``channels`` = dims[0] output channels (section 4)."""
    count = _check_bias_length(r, field, channels)
    if half:
        return widen_float16(r.take(2 * count, f"{field} bias"))
    return np.frombuffer(r.take(4 * count, f"{field} bias"), "<f4").astype(np.float32)


def _read_step(r: Reader, field: str) -> float:
    """An f32le grid step: finite and > 0."""
    at = r.pos
    (step,) = struct.unpack("<f", r.take(4, field))
    if not (np.isfinite(step) and step > 0):
        r.fail(f"{field} {step} at byte {at} is not finite and > 0", field=field, offset=at)
    return float(step)


def _check_bias_length(r: Reader, field: str, channels: int) -> int:
    at = r.pos
    count = r.varint(f"{field} bias length", 1, spec.MAX_BIAS)
    if count != channels:
        r.fail(
            f"{field} bias length {count} at byte {at} should be dims[0] = {channels}",
            field=f"{field} bias length",
            offset=at,
        )
    return count


def widen_float16(raw: bytes) -> np.ndarray:
    """float32 of the f16le values in ``raw``, exactly (section 1): a NaN keeps its sign and
    its fraction, shifted to the top of the float32 fraction, whatever the hardware does."""
    half = np.frombuffer(raw, "<u2").astype(np.uint32)
    out = np.frombuffer(raw, "<f2").astype(np.float32)
    nan = ((half & 0x7C00) == 0x7C00) & ((half & 0x3FF) != 0)
    if nan.any():
        h = half[nan]
        out.view(np.uint32)[nan] = ((h & 0x8000) << 16) | 0x7F800000 | ((h & 0x3FF) << 13)
    return out


def read_dense(r: Reader) -> list[DenseRecord]:
    dense = []
    for i in range(r.varint("dense tensor count", 0, spec.MAX_DENSE)):
        field, offset = f"dense tensor {i}", r.pos
        name = _read_name(r, field)
        r.u8(f"{field} dtype", spec.DTYPE_FLOAT32, spec.DTYPE_FLOAT32)
        ndim = r.u8(f"{field} ndim", 0, spec.MAX_NDIM)
        shape = _read_shape(r, field, ndim, 0, spec.MAX_DENSE_NUMEL)
        raw = r.take(4 * int(np.prod(shape)), f"{field} values")
        dense.append(
            DenseRecord(offset, name, np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape))
        )
    return dense
