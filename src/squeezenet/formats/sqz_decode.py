"""Parse and validate .sqz bytes (docs/FORMAT.md): every bound is checked before a read."""

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import numpy as np

from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.bitio import Reader, StreamRecord, decode_raw, fail
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
from squeezenet.formats.sqz_records import DenseRecord, ParsedLayer, read_dense, read_layer


@dataclass
class ParsedFile:
    version: int
    header: dict[str, Any]
    header_bytes: int  # magic, version, header record and layer count
    layers: list[ParsedLayer]
    compressed: list[CompressedLayer]  # the decoded layers, in file order
    dense: dict[str, np.ndarray]
    dense_bytes: int


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
    layers = [read_layer(r, i, version) for i in range(nlayers)]
    dense_start = r.pos
    dense = read_dense(r)
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


def _check_names(layers: list[ParsedLayer], dense: list[DenseRecord]) -> None:
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
    keys.update(
        {f"{p.name}.bias": p for p in layers if p.bias is not None or p.bias_stream is not None}
    )
    for i, d in enumerate(dense):
        owner = keys.get(d.name)
        if owner is not None:
            fail(
                f"dense tensor {i} name {d.name!r} at byte {d.offset} is a state-dict key of "
                f"layer {owner.index} ({owner.name!r})",
                field=f"dense tensor {i} name",
                offset=d.offset,
            )


def _decode_coded(
    records: list[StreamRecord], where: Callable[[int], tuple[int, str]]
) -> list[np.ndarray | None]:
    """The symbols of ``records``' Huffman streams (all blocks together), then of their rANS
    streams; None for raw ones. A decode error is reported at the record's codec byte as
    ``layer i KIND stream``, with ``where(record index)`` giving (i, KIND)."""
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
        i = (huff if isinstance(exc, huffman.HuffmanDecodeError) else coded)[exc.stream]
        (layer, kind), rec = where(i), records[i]
        raise SqzFormatError(
            f"corrupt .sqz file: layer {layer} {kind} stream at byte {rec.offset}: {exc}; "
            "re-create the file",
            field=f"layer {layer} {kind} stream",
            offset=rec.offset,
        ) from None
    return symbols


def _decode_symbols(layers: list[ParsedLayer]) -> None:
    records = [rec for p in layers for rec in (p.codes, p.positions)]

    def where(i: int) -> tuple[int, str]:
        if i % 2 == 0 and layers[i // 2].grid is not None:
            return i // 2, "level"
        return i // 2, ("code", "position")[i % 2]

    symbols = _decode_coded(records, where)
    _decode_bias_grids(layers)
    for p in layers:
        if p.grid is not None:
            p.code_symbols = _or_raw(symbols[2 * p.index], p.codes, 1 << p.bits, p, "level")
            continue
        p.code_symbols = _or_raw(symbols[2 * p.index], p.codes, len(p.codebook), p, "code")
        p.position_symbols = _or_raw(
            symbols[2 * p.index + 1], p.positions, 1 << p.gap_bits, p, "position"
        )


def _decode_bias_grids(layers: list[ParsedLayer]) -> None:
    """The biases of the grid layers whose bias lies on a grid (version 4): levels times the
    bias step, rounded to float32 as uniform grid weights are (section 4a)."""
    owners = [p for p in layers if p.bias_stream is not None]
    records = [cast(StreamRecord, p.bias_stream) for p in owners]
    symbols = _decode_coded(records, lambda i: (owners[i].index, "bias"))
    for p, rec, found in zip(owners, records, symbols, strict=True):
        got = _or_raw(found, rec, 1 << cast(int, p.bias_bits), p, "bias")
        levels = unzigzag(got)
        p.bias_levels = levels
        multiples = grid_multiples(levels, spec.QUANTIZER_UNIFORM, None)
        p.bias = grid_values(multiples, cast(float, p.bias_step))


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
        bias_grid=(
            GridCode(spec.QUANTIZER_UNIFORM, p.bias_step, p.bias_levels, spec.MIN_STATE_PERIOD_LOG2)
            if p.bias_step is not None and p.bias_levels is not None
            else None
        ),
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
