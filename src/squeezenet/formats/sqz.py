"""Encode and decode the .sqz file format, versions 1-4 (normative text: docs/FORMAT.md): the
encoder, and reading and writing files (the parser is :mod:`squeezenet.formats.sqz_decode`)."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from squeezenet.atomic import atomic_write_bytes
from squeezenet.formats import huffman, rans, spec
from squeezenet.formats.bitio import Codec, varint
from squeezenet.formats.grid import GridCode, zigzag
from squeezenet.formats.header import encode_header
from squeezenet.formats.model import CompressedLayer, CompressedModel
from squeezenet.formats.sqz_checks import check_bias_grid, check_grids
from squeezenet.formats.sqz_decode import parse_sqz
from squeezenet.formats.stream_encode import StreamPlan, estimate_size, finish_streams, plan_stream

CodebookDtype = Literal["float32", "float16"]
_AUTO_GAP_BITS = range(1, 11)  # widths tried per layer when gap_bits is None


def encode_sqz(
    model: CompressedModel,
    *,
    codec: Codec = "auto",
    gap_bits: int | None = None,
    codebook_dtype: CodebookDtype = "float32",
    block_size: int = huffman.DEFAULT_BLOCK_SIZE,
    rans_block_size: int | None = None,
    bias_dtype: CodebookDtype = "float32",
) -> bytes:
    """Serialise ``model`` to .sqz bytes.

    Args:
        model: the compressed model; layers must satisfy the ``CompressedLayer`` invariants.
        codec: ``"auto"`` keeps the smallest of raw, Huffman and rANS for every stream;
            ``"raw"``, ``"huffman"`` or ``"rans"`` force one (empty streams are always raw;
            ``"rans"`` falls back to Huffman for a stream of one distinct symbol).
        gap_bits: width of the relative position symbols (Deep Compression Sec. 3 uses 4 for
            conv layers); ``None`` picks the smallest width and position mode per layer.
        codebook_dtype: ``"float16"`` halves the codebooks (lossy: values are rounded).
        block_size: Huffman symbols per sync block, a power of two in 16..4096.
        rans_block_size: rANS symbols per block (each costs a 4-byte state), likewise;
            None: 2048 in a version-2 file, 4096 in a version-3 file.
        bias_dtype: ``"float16"`` halves the biases (lossy: values are rounded; version 3).

    Layers with a ``grid`` are written as grid records (section 4a), their bias as levels when
    they have a ``bias_grid`` (which overrides ``bias_dtype`` there). The file is version 4 when
    a bias is on a grid, else version 3 when it has a grid layer or float16 biases (then rANS
    tables may be gamma-coded), else version 2.

    Raises:
        ValueError: an option or a layer field is invalid (the message names it).
    """
    v3 = bias_dtype == "float16" or any(layer.grid is not None for layer in model.layers)
    if rans_block_size is None:
        rans_block_size = rans.GRID_BLOCK_SIZE if v3 else rans.DEFAULT_BLOCK_SIZE
    _check_options(codec, gap_bits, (codebook_dtype, bias_dtype), (block_size, rans_block_size))
    if len(model.layers) > spec.MAX_LAYERS or len(model.dense) > spec.MAX_DENSE:
        raise ValueError(f"encode_sqz: at most {spec.MAX_LAYERS} layers and dense tensors")
    version = spec.VERSION_GRID if v3 else spec.VERSION
    if any(layer.bias_grid is not None for layer in model.layers):
        version = spec.VERSION_BIAS_GRID
    parts = [spec.MAGIC, bytes([version]), encode_header(model), varint(len(model.layers))]
    _check_names(model)
    blocks = (block_size, rans_block_size)
    options = _Options(codec, gap_bits, codebook_dtype, bias_dtype, blocks, v3)
    check_grids(model.layers)
    records = [_layer_record(index, layer, options) for index, layer in enumerate(model.layers)]
    plans = [plan for _, layer_plans in records for plan in layer_plans]
    streams = iter(finish_streams(plans, rans_block_size, gamma=v3))
    for fields, layer_plans in records:
        parts += [fields, *(next(streams) for _ in layer_plans)]
    parts.append(varint(len(model.dense)))
    for name, value in model.dense.items():
        parts.append(_dense_record(name, value))
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def decode_sqz(data: bytes) -> CompressedModel:
    """Parse .sqz bytes; raises :class:`SqzFormatError` naming the bad field and its offset."""
    parsed = parse_sqz(bytes(data))
    return CompressedModel(
        model_name=parsed.header["model"],
        config=parsed.header["config"],
        preprocess=parsed.header["preprocess"],
        class_names=parsed.header["classes"],
        layers=parsed.compressed,
        dense=parsed.dense,
    )


def write_sqz(model: CompressedModel, path: str | os.PathLike[str], **options: Any) -> int:
    """Encode ``model`` (options as :func:`encode_sqz`) and write it atomically: a temporary
    file in the same folder is renamed over ``path``. Returns the bytes written."""
    data = encode_sqz(model, **options)
    atomic_write_bytes(path, data)
    return len(data)


def read_sqz(path: str | os.PathLike[str]) -> CompressedModel:
    """Read and decode a .sqz file."""
    return decode_sqz(Path(path).read_bytes())


def tensor_digest(model: CompressedModel) -> str:
    """SHA-256 (hex) of every decoded tensor's float32 little-endian bytes: each layer's weight
    (C order) then its bias, in layer order, then each dense tensor in order. The JavaScript
    decoder (squeezenet/demo/src/sqz.js ``tensorDigest``) computes the same, so two decoders can
    be compared by one string."""
    digest = hashlib.sha256()
    for layer in model.layers:
        digest.update(layer.dense_weight().astype("<f4").tobytes())
        if layer.bias is not None:
            digest.update(np.asarray(layer.bias, dtype="<f4").tobytes())
    for value in model.dense.values():
        digest.update(np.ascontiguousarray(value, dtype="<f4").tobytes())
    return digest.hexdigest()


def _check_names(model: CompressedModel) -> None:
    """Names distinct, and no dense name equal to a layer's weight or bias key (section 7)."""
    names = [layer.name for layer in model.layers] + list(model.dense)
    if len(set(names)) != len(names):
        raise ValueError("encode_sqz: layer and dense tensor names must be unique")
    for layer in model.layers:
        keys = [f"{layer.name}.weight"] + ([f"{layer.name}.bias"] if layer.bias is not None else [])
        for key in keys:
            if key in model.dense:
                raise ValueError(
                    f"encode_sqz: dense tensor {key!r} is also the state-dict key of layer "
                    f"{layer.name!r}; keep it in one place"
                )


def _name_bytes(name: str, what: str) -> bytes:
    raw = name.encode() if isinstance(name, str) else b""
    if not 1 <= len(raw) <= spec.MAX_NAME_BYTES:
        raise ValueError(
            f"encode_sqz: {what} name must be 1..{spec.MAX_NAME_BYTES} UTF-8 bytes, got {name!r}"
        )
    return varint(len(raw)) + raw


def _check_options(
    codec: str, gap_bits: int | None, dtypes: tuple[str, str], blocks: tuple[int, int]
) -> None:
    if codec not in get_args(Codec):
        raise ValueError(f"encode_sqz: codec must be auto, raw, huffman or rans, got {codec!r}")
    if gap_bits is not None and not 1 <= gap_bits <= spec.MAX_GAP_BITS:
        raise ValueError(f"encode_sqz: gap_bits must be in 1..{spec.MAX_GAP_BITS}, got {gap_bits}")
    for what, dtype in zip(("codebook_dtype", "bias_dtype"), dtypes, strict=True):
        if dtype not in ("float32", "float16"):
            raise ValueError(f"encode_sqz: {what} must be float32 or float16, got {dtype!r}")
    smallest, largest = 1 << spec.MIN_BLOCK_LOG2, 1 << spec.MAX_BLOCK_LOG2
    for name, size in zip(("block_size", "rans_block_size"), blocks, strict=True):
        if size & (size - 1) or not smallest <= size <= largest:
            raise ValueError(
                f"encode_sqz: {name} must be a power of two in {smallest}..{largest}, got {size}"
            )


@dataclass(frozen=True)
class _Options:
    codec: Codec
    gap_bits: int | None
    codebook_dtype: CodebookDtype
    bias_dtype: CodebookDtype
    blocks: tuple[int, int]  # Huffman and rANS block sizes
    gamma: bool  # version 3: rANS tables may be gamma-coded


def _layer_record(
    index: int, layer: CompressedLayer, options: _Options
) -> tuple[bytes, list[StreamPlan]]:
    """The layer record's fields before its streams, and the plans of its streams."""
    what = f"layer {index} ({layer.name!r})"
    codebook, positions, codes = _check_layer(what, layer)
    head = [_name_bytes(layer.name, what), bytes([len(layer.shape)])]
    head += [varint(d) for d in layer.shape]
    if layer.bias_grid is not None:
        if layer.grid is None or layer.bias is None:
            raise ValueError(f"encode_sqz: {what} has a bias grid but no grid or no bias")
        return _grid_record(what, layer.grid, head, _bias_grid(what, layer, options), options)
    flags, bias = _bias_field(what, layer, options.bias_dtype)
    if layer.grid is not None:
        return _grid_record(what, layer.grid, head, (flags, bias, []), options)
    if options.codebook_dtype == "float16":
        flags |= spec.FLAG_FLOAT16
        with np.errstate(over="ignore"):
            half = codebook.astype("<f2")
        if not np.isfinite(half[np.isfinite(codebook)]).all():
            raise ValueError(f"encode_sqz: {what} codebook overflows float16; use float32")
        codebook_bytes = half.tobytes()
    else:
        codebook_bytes = codebook.astype("<f4").tobytes()
    complement, width, symbols = _position_symbols(
        positions, layer.numel, options.gap_bits, options.codec, options.blocks
    )
    if complement:
        flags |= spec.FLAG_COMPLEMENT
    parts = [*head, bytes([layer.bits, flags]), varint(len(codebook)), codebook_bytes, bias]
    parts += [varint(len(positions)), bytes([width]), varint(len(symbols))]
    code_plan = plan_stream(
        codes, len(codebook), layer.bits, options.codec, *options.blocks, gamma=options.gamma
    )
    position_plan = plan_stream(
        symbols, 1 << width, width, options.codec, *options.blocks, gamma=options.gamma
    )
    return b"".join(parts), [code_plan, position_plan]


def _bias_field(what: str, layer: CompressedLayer, dtype: CodebookDtype) -> tuple[int, bytes]:
    """The flags the bias sets and its bytes (length varint and values), or (0, b"")."""
    if layer.bias is None:
        return 0, b""
    values = np.asarray(layer.bias, dtype="<f4")
    if values.shape != (layer.shape[0],) or len(values) > spec.MAX_BIAS:
        raise ValueError(
            f"encode_sqz: {what} bias must be 1-D with dims[0] = {layer.shape[0]} values "
            f"(at most {spec.MAX_BIAS}), got shape {values.shape}"
        )
    if dtype == "float32":
        return spec.FLAG_BIAS, varint(len(values)) + values.tobytes()
    with np.errstate(over="ignore"):
        half = values.astype("<f2")
    if not np.isfinite(half[np.isfinite(values)]).all():
        raise ValueError(f"encode_sqz: {what} bias overflows float16; use float32")
    return spec.FLAG_BIAS | spec.FLAG_BIAS16, varint(len(values)) + half.tobytes()


def _bias_grid(
    what: str, layer: CompressedLayer, options: _Options
) -> tuple[int, bytes, list[StreamPlan]]:
    """A bias on a grid (section 4a, version 4): the flags, the fields before its level
    stream (length, step, bits) and that stream's plan."""
    grid = check_bias_grid(what, layer)
    step = np.float32(grid.step)
    symbols = zigzag(grid.levels)
    bits = max(1, int(symbols.max()).bit_length())
    if bits > spec.MAX_GRID_BITS:
        raise ValueError(f"encode_sqz: {what} bias levels need {bits} > 15 bits; use a larger step")
    fields = varint(layer.shape[0]) + struct.pack("<f", step) + bytes([bits])
    plan = plan_stream(symbols, 1 << bits, bits, options.codec, *options.blocks, gamma=True)
    return spec.FLAG_BIAS | spec.FLAG_BIAS_GRID, fields, [plan]


def _grid_record(
    what: str,
    grid: GridCode,
    head: list[bytes],
    bias: tuple[int, bytes, list[StreamPlan]],
    options: _Options,
) -> tuple[bytes, list[StreamPlan]]:
    """A grid layer record (section 4a): its fields and the plans of its streams (a bias on a
    grid, then the levels). ``bias``: the flags the bias sets, its fields, its stream plans."""
    flags, bias_fields, bias_plans = bias
    symbols = zigzag(grid.levels)
    bits = max(1, int(symbols.max()).bit_length()) if symbols.size else 1
    if bits > spec.MAX_GRID_BITS:
        raise ValueError(f"encode_sqz: {what} grid levels need {bits} > 15 bits; use a larger step")
    period = grid.period_log2 if grid.quantizer == spec.QUANTIZER_DEPENDENT else 4
    parts = [*head, bytes([bits, flags | spec.FLAG_GRID, grid.quantizer])]
    parts += [struct.pack("<f", grid.step), bytes([period]), bias_fields]
    plan = plan_stream(symbols, 1 << bits, bits, options.codec, *options.blocks, gamma=True)
    return b"".join(parts), [*bias_plans, plan]


def _check_layer(what: str, layer: CompressedLayer) -> tuple[np.ndarray, ...]:
    shape = tuple(int(d) for d in layer.shape)
    if not 1 <= len(shape) <= spec.MAX_NDIM or min(shape) < 1:
        raise ValueError(
            f"encode_sqz: {what} shape must have 1..{spec.MAX_NDIM} dimensions >= 1, got {shape}"
        )
    if layer.numel > spec.MAX_NUMEL:
        raise ValueError(
            f"encode_sqz: {what} has {layer.numel} weights, the limit is {spec.MAX_NUMEL}"
        )
    if not 1 <= layer.bits <= spec.MAX_BITS:
        raise ValueError(f"encode_sqz: {what} bits must be in 1..{spec.MAX_BITS}, got {layer.bits}")
    codebook = np.asarray(layer.codebook, dtype=np.float32)
    if codebook.ndim != 1 or not 1 <= len(codebook) <= 1 << layer.bits:
        raise ValueError(
            f"encode_sqz: {what} codebook must be 1-D with 1..{1 << layer.bits} entries, "
            f"got shape {codebook.shape}"
        )
    positions = np.asarray(layer.positions, dtype=np.int64)
    codes = np.asarray(layer.codes, dtype=np.int64)
    if positions.ndim != 1 or codes.shape != positions.shape:
        raise ValueError(f"encode_sqz: {what} positions and codes must be 1-D of equal length")
    if len(positions) and (
        positions[0] < 0 or positions[-1] >= layer.numel or (np.diff(positions) <= 0).any()
    ):
        raise ValueError(
            f"encode_sqz: {what} positions must increase strictly within 0..{layer.numel - 1}"
        )
    if len(codes) and (codes.min() < 0 or codes.max() >= len(codebook)):
        raise ValueError(f"encode_sqz: {what} codes must lie in 0..{len(codebook) - 1}")
    return codebook, positions, codes


def gap_symbols(positions: np.ndarray, width: int) -> np.ndarray:
    """Relative-position symbols of sorted ``positions`` (docs/FORMAT.md, "Positions"): symbol
    ``g < M = 2**width - 1`` skips g zeros then places an entry; ``M`` skips M zeros only."""
    escape = (1 << width) - 1
    zeros = np.diff(positions, prepend=-1) - 1  # zeros before each entry
    skips, rest = np.divmod(zeros, escape)
    symbols = np.full(len(positions) + int(skips.sum()), escape, dtype=np.int64)
    symbols[np.cumsum(skips + 1) - 1] = rest
    return symbols


def _position_symbols(
    positions: np.ndarray, numel: int, gap_bits: int | None, codec: Codec, blocks: tuple[int, int]
) -> tuple[bool, int, np.ndarray]:
    """(complement?, width, symbols) of the smallest position stream among the candidates."""
    candidates = [(False, positions)]
    if 2 * len(positions) > numel:  # near-dense: listing the absent weights is shorter
        present = np.zeros(numel, dtype=bool)
        present[positions] = True
        candidates.append((True, np.flatnonzero(~present)))
    widths = [gap_bits] if gap_bits is not None else list(_AUTO_GAP_BITS)
    best: tuple[int, bool, int, np.ndarray] | None = None
    for complement, listed in candidates:
        zeros = np.diff(listed, prepend=-1) - 1
        for width in widths:
            escape = (1 << width) - 1
            skips, rest = np.divmod(zeros, escape)
            hist = np.bincount(rest, minlength=escape + 1)
            hist[escape] += int(skips.sum())
            size = estimate_size(hist, width, codec, *blocks)
            if best is None or size < best[0]:
                best = (size, complement, width, listed)
    assert best is not None
    _, complement, width, listed = best
    return complement, width, gap_symbols(listed, width)


def _dense_record(name: str, value: np.ndarray) -> bytes:
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"encode_sqz: dense tensor {name!r} must be numeric, got {array.dtype}")
    if array.ndim > spec.MAX_NDIM or array.size > spec.MAX_DENSE_NUMEL:
        raise ValueError(
            f"encode_sqz: dense tensor {name!r} must have <= {spec.MAX_NDIM} dims, "
            f"<= {spec.MAX_DENSE_NUMEL} values"
        )
    parts = [_name_bytes(name, f"dense tensor {name!r}"), bytes([spec.DTYPE_FLOAT32, array.ndim])]
    parts += [varint(d) for d in array.shape]
    parts.append(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return b"".join(parts)


__all__ = [
    "CodebookDtype",
    "decode_sqz",
    "encode_sqz",
    "gap_symbols",
    "read_sqz",
    "write_sqz",
]
