"""Where the bytes of a .sqz file go, per layer and in total, beside the entropy bounds of its
streams (``squeezenet inspect``)."""

from __future__ import annotations

from typing import Any

from squeezenet.formats import huffman, spec
from squeezenet.formats.bitio import varint
from squeezenet.formats.model import CompressedLayer
from squeezenet.formats.sqz_decode import parse_sqz
from squeezenet.formats.sqz_records import ParsedLayer


def inspect_sqz(data: bytes) -> dict[str, Any]:
    """Where the bytes of a .sqz file go, per layer and in total, beside the entropy bounds.

    Returns:
        ``{"version", "total_bytes", "header_bytes", "dense_bytes", "crc_bytes", "layers",
        "totals"}``; each layer has name, shape, density, bits, gap_bits, position_mode, the
        bytes of its codebook / bias / codes / positions (whole records) and, per stream
        (``codes_*``, ``positions_*``): the codec, the table bytes (table and block lengths),
        the payload bytes (the code bits and rANS block states), the empirical entropy of the
        symbols themselves (order-0, in bytes and bits per symbol: the bound of any
        symbol-by-symbol code), ``entropy_ratio`` = payload bytes / entropy and ``code_ratio`` =
        code bits / entropy bits (Huffman: without the padding of the last byte).
    """
    parsed = parse_sqz(bytes(data))
    layers = [_inspect_layer(p, c) for p, c in zip(parsed.layers, parsed.compressed, strict=True)]
    keys = ("codebook_bytes", "bias_bytes", "codes_bytes", "positions_bytes", "record_bytes")
    totals = {k: sum(layer[k] for layer in layers) for k in keys}
    totals.update(
        codes_entropy_bytes=sum(layer["codes_entropy_bytes"] for layer in layers),
        positions_entropy_bytes=sum(layer["positions_entropy_bytes"] for layer in layers),
        stored_weights=sum(layer["stored"] for layer in layers),
        weights=sum(layer["numel"] for layer in layers),
    )
    return {
        "version": parsed.version,
        "total_bytes": len(data),
        "header_bytes": parsed.header_bytes,
        "dense_bytes": parsed.dense_bytes,
        "crc_bytes": spec.CRC_BYTES,
        "layers": layers,
        "totals": totals,
    }


def _inspect_layer(p: ParsedLayer, layer: CompressedLayer) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": layer.name,
        "shape": list(layer.shape),
        "numel": layer.numel,
        "stored": len(layer.positions),
        "density": layer.density,
        "bits": layer.bits,
        "codebook_size": len(layer.codebook),
        "gap_bits": p.gap_bits,
        "position_mode": "absent" if p.complement else "present",
        "record_bytes": p.nbytes,
        "codebook_bytes": p.codebook_bytes,
        "bias_bytes": p.bias_bytes,
        "positions_symbols": p.positions.count,
        "grid": None,
    }
    if p.grid is not None:
        quantizer, step, period = p.grid
        info["grid"] = {"quantizer": ("uniform", "dependent")[quantizer], "step": step}
        info["grid"]["state_period"] = 1 << period
    for kind, rec, symbols in (
        ("codes", p.codes, p.code_symbols),
        ("positions", p.positions, p.position_symbols),
    ):
        if rec.nbytes == 0:  # a grid layer has no position stream
            info.update({f"{kind}_bytes": 0, f"{kind}_codec": None, f"{kind}_entropy_bytes": 0.0})
            continue
        entropy = huffman.entropy_bits(symbols) / 8
        body = next(
            n for n in range(rec.nbytes - 2, -1, -1) if len(varint(n)) + n + 1 == rec.nbytes
        )
        payload = body - rec.table_bytes
        # Huffman: the exact number of code bits is in the file (the block bit lengths); the
        # payload rounds it up to whole bytes. raw / rANS payloads are whole bytes by design.
        bits = rec.stream.nbits if rec.stream is not None else 8 * payload
        info.update(
            {
                f"{kind}_bytes": rec.nbytes,
                f"{kind}_codec": spec.CODEC_NAMES[rec.codec],
                f"{kind}_table_bytes": rec.table_bytes,
                f"{kind}_payload_bytes": payload,
                f"{kind}_payload_bits": bits,
                f"{kind}_entropy_bytes": entropy,
                f"{kind}_entropy_bits_per_symbol": 8 * entropy / max(rec.count, 1),
                f"{kind}_entropy_ratio": payload / entropy if entropy else None,
                f"{kind}_code_ratio": bits / (8 * entropy) if entropy else None,
            }
        )
    return info
