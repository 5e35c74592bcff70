"""Parse and validate .sqz bytes (docs/FORMAT.md): every bound is checked before a read."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.bitio import Reader, StreamRecord, decode_raw, fail, read_stream
from squeezenet.formats.grid import (
    GridCode,
    dq_quantizers_many,
    grid_multiples,
    grid_values,
    unzigzag,
)
from squeezenet.formats.header import read_header
from squeezenet.formats.model import CompressedLayer
from squeezenet.formats.spec import SqzFormatError


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
    code_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    position_symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class ParsedFile:
    version: int
    header: dict[str, Any]
    header_bytes: int  # magic, version, header record and layer count
    layers: list[ParsedLayer]
    compressed: list[CompressedLayer]  # the decoded layers, in file order
    dense: dict[str, np.ndarray]
    dense_bytes: int


@dataclass
class _Dense:
    """One parsed dense record."""

    offset: int  # byte offset of the record
    name: str
    value: np.ndarray  # float32 of its dims


def parse_sqz(data: bytes) -> ParsedFile:
    """Check and decode everything in ``data``; raises :class:`SqzFormatError`."""
    head = bytes(data[: len(spec.MAGIC)])  # a shorter file is compared as far as it goes
    if head != spec.MAGIC[: len(head)]:
        read = head.hex() + ("" if len(head) == len(spec.MAGIC) else f" (all {len(head)} bytes)")
        raise SqzFormatError(
            f"not a .sqz file: magic at byte 0 is {read}, expected {spec.MAGIC.hex()}; "
            "pass a file written by write_sqz",
            field="magic",
            offset=0,
        )
    if len(data) <= len(spec.MAGIC):
        _too_short(len(data), ", inside the magic and version (bytes 0..4)")
    version = data[4]
    if version not in spec.VERSIONS:
        raise SqzFormatError(
            f"unsupported .sqz version {version} at byte 4: this reader knows versions "
            f"{', '.join(map(str, spec.VERSIONS))}; upgrade squeezenet or re-create the file",
            field="version",
            offset=len(spec.MAGIC),
        )
    if len(data) < spec.MIN_FILE_BYTES:
        _too_short(len(data), "")
    r = Reader(data, len(spec.MAGIC) + 1, len(data) - spec.CRC_BYTES)
    (stored,) = struct.unpack_from("<I", data, r.end)
    actual = zlib.crc32(memoryview(data)[: r.end])
    if stored != actual:
        r.fail(
            f"CRC32 {stored:#010x} at byte {r.end} does not match the contents ({actual:#010x})",
            field="crc32",
            offset=r.end,
        )
    header = read_header(r)
    nlayers = r.varint("layer count", 0, spec.MAX_LAYERS)
    header_bytes = r.pos
    layers = [_read_layer(r, i, version) for i in range(nlayers)]
    dense_start = r.pos
    dense = _read_dense(r)
    if r.pos != r.end:
        r.fail(
            f"{r.end - r.pos} unexpected bytes at byte {r.pos} before the CRC32",
            field="trailing bytes",
            offset=r.pos,
        )
    _check_names(layers, dense)
    _decode_symbols(layers)
    compressed = _build_layers(layers)
    values = {d.name: d.value for d in dense}
    return ParsedFile(
        version, header, header_bytes, layers, compressed, values, r.pos - dense_start
    )


def _too_short(size: int, where: str) -> NoReturn:
    """The file-size error of section 8, step 1: the file ends at byte ``size`` (``where``)."""
    fail(
        f"file is {size} bytes long and ends at byte {size}{where}; a .sqz file has at least "
        f"{spec.MIN_FILE_BYTES} bytes (magic, version, header record, two counts, CRC32)",
        field="file size",
        offset=size,
    )


def _check_names(layers: list[ParsedLayer], dense: list[_Dense]) -> None:
    """Distinct names, and no dense name that is a layer's weight or bias key (section 7)."""
    seen: set[str] = set()
    records = [(f"layer {p.index}", p.offset, p.name) for p in layers]
    records += [(f"dense tensor {i}", d.offset, d.name) for i, d in enumerate(dense)]
    for what, offset, name in records:
        if name in seen:
            fail(
                f"duplicate tensor name {name!r} at byte {offset}",
                field=f"{what} name",
                offset=offset,
            )
        seen.add(name)
    keys = {f"{p.name}.weight": p for p in layers}
    keys.update({f"{p.name}.bias": p for p in layers if p.bias is not None})
    for i, d in enumerate(dense):
        owner = keys.get(d.name)
        if owner is not None:
            fail(
                f"dense tensor {i} name {d.name!r} at byte {d.offset} is a state-dict key of "
                f"layer {owner.index} ({owner.name!r})",
                field=f"dense tensor {i} name",
                offset=d.offset,
            )


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


def _read_layer(r: Reader, index: int, version: int) -> ParsedLayer:
    field, offset = f"layer {index}", r.pos
    max_codec, v3 = spec.MAX_CODEC[version], version >= spec.VERSION_GRID
    name = _read_name(r, field)
    ndim = r.u8(f"{field} ndim", 1, spec.MAX_NDIM)
    shape = _read_shape(r, field, ndim, 1, spec.MAX_NUMEL)
    numel = int(np.prod(shape))
    bits = r.u8(f"{field} bits", 1, spec.MAX_BITS)
    flags_at = r.pos
    flags = r.u8(f"{field} flags", 0, 255)
    allowed = spec.LAYER_FLAGS_V3 if v3 else spec.LAYER_FLAGS
    if flags & ~allowed or (flags & spec.FLAG_BIAS16 and not flags & spec.FLAG_BIAS):
        r.fail(
            f"{field} flags {flags:#04x} at byte {flags_at} set reserved bits (or BIAS16 "
            "without BIAS)",
            field=f"{field} flags",
            offset=flags_at,
        )
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
    at = r.pos
    (step,) = struct.unpack("<f", r.take(4, f"{field} grid step"))
    if not (np.isfinite(step) and step > 0):
        r.fail(
            f"{field} grid step {step} at byte {at} is not finite and > 0",
            field=f"{field} grid step",
            offset=at,
        )
    if quantizer == spec.QUANTIZER_DEPENDENT:
        period = r.u8(
            f"{field} state period", spec.MIN_STATE_PERIOD_LOG2, spec.MAX_STATE_PERIOD_LOG2
        )
    else:
        period = r.u8(
            f"{field} state period", spec.MIN_STATE_PERIOD_LOG2, spec.MIN_STATE_PERIOD_LOG2
        )
    bias, start = None, r.pos
    if h.flags & spec.FLAG_BIAS:
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
        grid=(quantizer, float(step), period),
    )


def _read_bias(r: Reader, field: str, channels: int, half: bool = False) -> np.ndarray:
    """The bias of a layer of ``channels`` = dims[0] output channels (section 4)."""
    at = r.pos
    count = r.varint(f"{field} bias length", 1, spec.MAX_BIAS)
    if count != channels:
        r.fail(
            f"{field} bias length {count} at byte {at} should be dims[0] = {channels}",
            field=f"{field} bias length",
            offset=at,
        )
    if half:
        return widen_float16(r.take(2 * count, f"{field} bias"))
    return np.frombuffer(r.take(4 * count, f"{field} bias"), "<f4").astype(np.float32)


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


def _read_dense(r: Reader) -> list[_Dense]:
    dense = []
    for i in range(r.varint("dense tensor count", 0, spec.MAX_DENSE)):
        field, offset = f"dense tensor {i}", r.pos
        name = _read_name(r, field)
        r.u8(f"{field} dtype", spec.DTYPE_FLOAT32, spec.DTYPE_FLOAT32)
        ndim = r.u8(f"{field} ndim", 0, spec.MAX_NDIM)
        shape = _read_shape(r, field, ndim, 0, spec.MAX_DENSE_NUMEL)
        raw = r.take(4 * int(np.prod(shape)), f"{field} values")
        dense.append(
            _Dense(offset, name, np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape))
        )
    return dense


def _decode_symbols(layers: list[ParsedLayer]) -> None:
    records = [rec for p in layers for rec in (p.codes, p.positions)]
    symbols: list[np.ndarray | None] = [None] * len(records)
    huff = [i for i, rec in enumerate(records) if rec.stream is not None]
    coded = [i for i, rec in enumerate(records) if rec.rans is not None]
    try:
        decoded = huffman.decode_many([records[i].stream for i in huff])  # type: ignore[misc]
        for i, values in zip(huff, decoded, strict=True):
            symbols[i] = values
        decoded = rans.decode_many([records[i].rans for i in coded])  # type: ignore[misc]
        for i, values in zip(coded, decoded, strict=True):
            symbols[i] = values
    except (huffman.HuffmanDecodeError, rans.RansDecodeError) as exc:
        where = huff if isinstance(exc, huffman.HuffmanDecodeError) else coded
        i = where[exc.stream]
        rec, kind = records[i], ("code", "position")[i % 2]
        if i % 2 == 0 and layers[i // 2].grid is not None:
            kind = "level"
        raise SqzFormatError(
            f"corrupt .sqz file: layer {i // 2} {kind} stream at byte {rec.offset}: {exc}; "
            "re-create the file",
            field=f"layer {i // 2} {kind} stream",
            offset=rec.offset,
        ) from None
    for p in layers:
        if p.grid is not None:
            p.code_symbols = _or_raw(symbols[2 * p.index], p.codes, 1 << p.bits, p, "level")
            continue
        p.code_symbols = _or_raw(symbols[2 * p.index], p.codes, len(p.codebook), p, "code")
        p.position_symbols = _or_raw(
            symbols[2 * p.index + 1], p.positions, 1 << p.gap_bits, p, "position"
        )


def _or_raw(
    values: np.ndarray | None, rec: StreamRecord, alphabet: int, p: ParsedLayer, kind: str
) -> np.ndarray:
    return (
        values
        if values is not None
        else decode_raw(rec, alphabet, f"layer {p.index} {kind} stream")
    )


def _build_layers(layers: list[ParsedLayer]) -> list[CompressedLayer]:
    """The decoded layers; the state machines of all dependent grid layers run together."""
    dependent = [p for p in layers if p.grid is not None and p.grid[0] == spec.QUANTIZER_DEPENDENT]
    levels = {p.index: unzigzag(p.code_symbols) for p in layers if p.grid is not None}
    periods = [p.grid[2] for p in dependent if p.grid is not None]
    states = dq_quantizers_many([levels[p.index] for p in dependent], periods)
    quantizers = {p.index: q for p, q in zip(dependent, states, strict=True)}
    return [
        _build_grid_layer(p, levels[p.index], quantizers.get(p.index))
        if p.grid is not None
        else _build_layer(p)
        for p in layers
    ]


def _build_grid_layer(
    p: ParsedLayer, levels: np.ndarray, quantizers: np.ndarray | None
) -> CompressedLayer:
    assert p.grid is not None
    quantizer, step, period = p.grid
    grid = GridCode(quantizer, step, levels, period)
    values = grid_values(grid_multiples(levels, quantizer, quantizers), step)
    positions = np.flatnonzero(values != 0).astype(np.int64)
    codebook, codes = np.unique(values[positions], return_inverse=True)
    return CompressedLayer(
        name=p.name,
        shape=p.shape,
        bits=max(1, int(max(len(codebook), 1) - 1).bit_length()),
        codebook=codebook.astype(np.float32) if len(codebook) else np.zeros(1, np.float32),
        positions=positions,
        codes=codes.reshape(-1).astype(np.uint16),
        bias=p.bias,
        grid=grid,
    )


def _build_layer(p: ParsedLayer) -> CompressedLayer:
    field = f"layer {p.index} position stream"
    at = p.positions.offset
    sym = p.position_symbols
    numel = int(np.prod(p.shape))
    escape = (1 << p.gap_bits) - 1
    is_escape = sym == escape
    ends = np.cumsum(np.where(is_escape, escape, sym + 1))
    if len(sym) and is_escape[-1]:
        fail(f"{field} at byte {at} ends with an escape symbol", field=field, offset=at)
    if len(sym) and ends[-1] > numel:
        fail(
            f"{field} at byte {at} reaches position {ends[-1] - 1}, past {numel} weights",
            field=field,
            offset=at,
        )
    listed = ends[~is_escape] - 1
    expected = numel - p.stored if p.complement else p.stored
    if len(listed) != expected:
        fail(
            f"{field} at byte {at} lists {len(listed)} weights, the record says {expected}",
            field=field,
            offset=at,
        )
    if p.complement:
        present = np.ones(numel, dtype=bool)
        present[listed] = False
        listed = np.flatnonzero(present)
    return CompressedLayer(
        name=p.name,
        shape=p.shape,
        bits=p.bits,
        codebook=p.codebook,
        positions=listed.astype(np.int64),
        codes=p.code_symbols.astype(np.uint16),
        bias=p.bias,
    )
