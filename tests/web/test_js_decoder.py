"""The JavaScript .sqz decoder (demo/src/sqz.js) against the Python one, on valid and broken files.

A corpus of files of every version and codec (and the shipped model) plus hundreds of
truncations and bit flips (half of them with the CRC recomputed, so the damage reaches the
parser) is decoded by both: the JavaScript decoder must return the same tensors (one SHA-256
over all of them) where Python succeeds, and raise SqzFormatError with the same field and byte
offset where Python does, never any other error.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from formats.test_format_points import (
    as_version,
    grid_record,
    raw_stream,
    sqz_file,
    with_preprocess,
)
from formats.test_format_rules import dense, f32, layer
from formats.test_grid import BIAS_GRID_RECORD, HEADER, finish, v3_file
from formats.test_sqz import (
    GOLDEN_HUFFMAN,
    GOLDEN_RANS,
    GOLDEN_RAW,
    GOLDEN_V1_HUFFMAN,
    GOLDEN_V1_RAW,
)
from squeezenet.compress import PrunePolicy, prune_
from squeezenet.compress.plain_data import to_compressed
from squeezenet.compress.trellis import trellis_quantize_
from squeezenet.compress.weight_sharing import quantize_
from squeezenet.formats import SqzFormatError, decode_sqz, encode_sqz, spec, tensor_digest
from squeezenet.formats.grid import GridCode
from squeezenet.formats.model import CompressedModel
from squeezenet.formats.sqz_decode import parse_sqz
from squeezenet.models import create_model

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node (Node.js >= 18) is not installed")


def _small(seed: int, **config: Any) -> Any:
    return create_model(
        "squeezenet_small", seed=seed, num_classes=10, base_e=16, incr_e=16, **config
    )


def _with_bias_grids(cm: CompressedModel, step: float, seed: int) -> CompressedModel:
    """``cm`` with a random bias (the small models' are zero) on a grid of ``step`` for each
    grid layer (version 4)."""
    rng, layers = np.random.default_rng(seed), []
    for cl in cm.layers:
        if cl.grid is not None and cl.bias is not None:
            levels = np.round(rng.laplace(scale=0.05, size=cl.shape[0]) / step).astype(np.int64)
            bias_grid = GridCode(spec.QUANTIZER_UNIFORM, step, levels, 4)
            cl = dataclasses.replace(cl, bias=bias_grid.values(), bias_grid=bias_grid)
        layers.append(cl)
    return dataclasses.replace(cm, layers=layers)


def _valid_files() -> dict[str, bytes]:
    """Files of every version-2/3/4 feature: codecs, float16 codebooks and biases, complement
    positions, grids (uniform and dependent), biases on grids, dense batch-norm tensors, a zlib
    header."""
    files: dict[str, bytes] = {
        "golden raw": GOLDEN_RAW, "golden huffman": GOLDEN_HUFFMAN, "golden rans": GOLDEN_RANS,
        "golden v1 raw": GOLDEN_V1_RAW, "golden v1 huffman": GOLDEN_V1_HUFFMAN,
    }  # fmt: skip
    model = _small(0)
    prune_(model, PrunePolicy.uniform(0.6))
    quantize_(model, 4)
    cm = to_compressed(
        model, model_name="squeezenet_small", class_names=[f"c{i}" for i in range(10)]
    )
    for codec in ("raw", "huffman", "rans", "auto"):
        files[f"kmeans_{codec}"] = encode_sqz(cm, codec=codec)
    files["kmeans_f16"] = encode_sqz(cm, codebook_dtype="float16", bias_dtype="float16")
    dense = _small(1)
    quantize_(dense, 3)
    files["dense_layers_gap2"] = encode_sqz(
        to_compressed(dense, model_name="squeezenet_small"), gap_bits=2
    )
    grid = _small(2, batch_norm=False)
    trellis_quantize_(grid, 1e-4)
    cm = to_compressed(grid, model_name="squeezenet_small")
    files["trellis_rans"] = encode_sqz(cm, bias_dtype="float16")
    files["trellis_raw"] = encode_sqz(cm, codec="raw")
    fine = _with_bias_grids(cm, float(np.float32(0.01)), 3)
    assert sum(cl.bias_grid is not None for cl in fine.layers) >= 2
    files["bias_grid_auto"] = encode_sqz(fine)
    files["bias_grid_raw"] = encode_sqz(fine, codec="raw")
    files["bias_grid_huffman"] = encode_sqz(fine, codec="huffman")
    files["bias_grid_rans"] = encode_sqz(
        _with_bias_grids(cm, float(np.float32(0.002)), 4), codec="rans"
    )
    assert {files[k][4] for k in files if k.startswith("bias_grid")} == {4}
    return files


def _shipped() -> bytes:
    return resources.files("squeezenet.pretrained").joinpath("squeezenet1_0-dc.sqz").read_bytes()


def _with_crc(data: bytearray) -> bytes:
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    return bytes(data)


def _mutations(name: str, data: bytes, rng: np.random.Generator, n: int) -> list[tuple[str, bytes]]:
    cuts = sorted(set(rng.integers(0, len(data), n // 8).tolist()))
    cases = [(f"{name} trunc {cut}", data[:cut]) for cut in cuts]
    # truncated, then a CRC of what is left: the parser meets the end of the file
    cases += [(f"{name} short {cut}", _with_crc(bytearray(data[:cut] + b"\0" * 4))) for cut in cuts]
    for k in range(n // 8):
        flipped = bytearray(data)
        at = int(rng.integers(0, len(data)))
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        cases.append((f"{name} flip {k}", bytes(flipped)))
    for k in range(n - 3 * (n // 8)):  # the CRC fixed: the damage reaches the fields behind it
        flipped = bytearray(data)
        for _ in range(int(rng.integers(1, 3))):
            at = int(rng.integers(5, len(data) - 4))
            flipped[at] ^= 1 << int(rng.integers(0, 8))
        cases.append((f"{name} deep {k}", _with_crc(flipped)))
    return cases


def _bias_mutations(
    name: str, data: bytes, rng: np.random.Generator, n: int
) -> list[tuple[str, bytes]]:
    """Bit flips behind a recomputed CRC in the bias fields and streams of a version-4 file."""
    spans = [
        (rec.offset - 6, rec.offset + rec.nbytes)  # bias step and bits (6 bytes), its stream
        for p in parse_sqz(data).layers
        if (rec := p.bias_stream) is not None
    ]
    cases = []
    for k in range(n):
        lo, hi = spans[int(rng.integers(0, len(spans)))]
        flipped = bytearray(data)
        flipped[int(rng.integers(lo, hi))] ^= 1 << int(rng.integers(0, 8))
        cases.append((f"{name} bias {k}", _with_crc(flipped)))
    return cases


def _python(data: bytes) -> dict[str, Any]:
    try:
        return {"ok": True, "digest": tensor_digest(decode_sqz(data))}
    except SqzFormatError as exc:
        return {"ok": False, "field": exc.field, "offset": exc.offset}


def _run_js(cases: list[tuple[str, bytes]], folder: Path) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for i, (_, data) in enumerate(cases):
        (folder / f"{i:04d}.sqz").write_bytes(data)
        listing.append({"file": f"{i:04d}.sqz"})
    (folder / "cases.json").write_text(json.dumps(listing))
    names = resources.files("squeezenet.formats").joinpath("imagenet_1k.txt").read_bytes()
    (folder / "imagenet_1k.txt").write_bytes(names)
    done = subprocess.run(
        [str(NODE), str(ROOT / "web" / "tools" / "run_corpus.mjs"), str(folder)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def _compare(cases: list[tuple[str, bytes]], folder: Path) -> None:
    got = _run_js(cases, folder)
    problems = []
    for (name, data), js in zip(cases, got, strict=True):
        py = _python(data)
        if not js["ok"] and js["type"] != "SqzFormatError":
            problems.append(f"{name}: JS raised {js['type']}: {js['message']}")
        elif py["ok"] != js["ok"]:
            problems.append(f"{name}: Python {py}, JS {js}")
        elif py["ok"] and py["digest"] != js["digest"]:
            problems.append(f"{name}: decoded tensors differ")
        elif not py["ok"] and (py["field"], py["offset"]) != (js["field"], js["offset"]):
            problems.append(
                f"{name}: Python {py['field']}@{py['offset']}, JS {js['field']}@{js['offset']}"
            )
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} of {len(cases)} differ)"


@pytest.fixture(scope="module")
def valid_files() -> dict[str, bytes]:
    """:func:`_valid_files`, built once (it quantizes three models) for the two tests that read
    it."""
    return _valid_files()


def test_valid_files_decode_to_the_same_tensors(
    tmp_path: Path, valid_files: dict[str, bytes]
) -> None:
    files = {**valid_files, "shipped squeezenet1_0-dc": _shipped()}
    cases = list(files.items())
    _compare(cases, tmp_path / "valid")
    assert {data[4] for _, data in cases} == {1, 2, 3, 4}


def test_broken_files_raise_the_same_field_and_offset(
    tmp_path: Path, valid_files: dict[str, bytes]
) -> None:
    """The fuzz corpus: truncations, bit flips, bit flips behind a recomputed CRC."""
    rng = np.random.default_rng(0)
    cases: list[tuple[str, bytes]] = []
    for name, data in valid_files.items():
        cases += _mutations(name, data, rng, 64)
        if data[4] == spec.VERSION_BIAS_GRID:
            cases += _bias_mutations(name, data, rng, 48)
    cases += _mutations("shipped", _shipped(), rng, 48)
    assert len(cases) >= 800
    _compare(cases, tmp_path / "broken")


def _edge_files() -> list[tuple[str, bytes]]:
    """The early checks and the points docs/FORMAT.md settles in version 3 (the files of
    tests/formats/test_format_points.py): short and foreign files, bits/flags order, grid
    values at +0, subnormal, 2**15 and overflow, value_scale spellings, dense dtypes."""
    cases = [(f"short {n}", (b"\x89SQZ\x03" + bytes(16))[:n]) for n in range(14)]
    cases += [("foreign", b"PK\x03\x04" + bytes(20)), ("foreign 2", b"\x89Q")]
    grid = spec.FLAG_GRID
    flag_cases = [(17, 0xFF), (16, grid | 0x20), (16, grid | spec.FLAG_FLOAT16), (16, grid)]
    flag_cases += [(15, grid), (3, grid | spec.FLAG_BIAS16)]
    for bits, flags in flag_cases:
        record = grid_record([1, 2], bits=bits, step=1.0, flags=flags)
        cases.append((f"bits {bits} flags {flags:#x}", sqz_file(record)))
    tiny, big = struct.pack("<I", 1), float(np.finfo(np.float32).max)
    grids: list[tuple[str, list[int], int, float | bytes, int]] = [
        ("2**15", [32767, 32766], 15, 1.0, 1),
        ("+0", [0, 1, 2, 3], 3, tiny, 0),
        ("+0 dependent", [1, 0, 2], 3, tiny, 1),
        ("inf", [1, 2, 3, 4], 3, big, 0),
        ("tie", [61, 62], 7, 1082401 * 2.0**103, 0),
        ("below the tie", [65, 66], 7, 16268815 * 2.0**99, 0),
    ]
    for name, symbols, bits, step, quantizer in grids:
        record = grid_record(symbols, bits=bits, step=step, quantizer=quantizer)
        cases.append((f"grid {name}", sqz_file(record)))
    for scale in ("255.0", "2.55e2", "255.00000000000001", "1e0", "255.5", '"255"'):
        cases.append((f"value_scale {scale}", with_preprocess(scale)))
    cases.append(("crop 32.0", with_preprocess("1", crop="32.0")))
    half = layer(flags=spec.FLAG_BIAS | spec.FLAG_BIAS16, bias=b"\x02\x00\x34\x00\xb8")
    bad_dtype = dense()[:2] + b"\x01" + dense()[3:]
    for version in (1, 2, 3):
        cases.append((f"dtype 1 v{version}", sqz_file(version=version, dense_records=(bad_dtype,))))
        cases.append((f"bias16 v{version}", sqz_file(half, version=version)))
        alone = layer(flags=spec.FLAG_BIAS16)
        cases.append((f"bias16 alone v{version}", sqz_file(alone, version=version)))
        cases.append((f"rans v{version}", as_version(GOLDEN_RANS, version)))
    cases.append(("codebook bits 16", sqz_file(layer(bits=16, codes=raw_stream([0, 1], 16)))))
    return cases + _bias_grid_edges()


def _bias_grid_edges() -> list[tuple[str, bytes]]:
    """Version 4's bias on a grid: flags, its fields' bounds, +0 and overflow, its name."""

    def record(at: int, new: bytes) -> bytes:
        return BIAS_GRID_RECORD[:at] + new + BIAS_GRID_RECORD[at + len(new) :]

    cases = [("bias grid", v3_file(BIAS_GRID_RECORD, version=4))]
    cases.append(("bias grid v3", v3_file(BIAS_GRID_RECORD)))
    for flags in (0x3A, 0x28, 0x2B, 0x6A):  # BIAS16; no BIAS; FLOAT16; a reserved bit
        cases.append((f"bias grid flags {flags:#x}", v3_file(record(9, bytes([flags])), version=4)))
    both = spec.FLAG_BIAS | spec.FLAG_BIAS_GRID  # on a codebook layer
    bias = b"\x02" + f32(0.25, 0.5)
    cases.append(("bias grid no GRID", sqz_file(layer(flags=both, bias=bias), version=4)))
    cases.append(("bias v4", sqz_file(layer(flags=spec.FLAG_BIAS, bias=bias), version=4)))
    big = struct.pack("<f", float(np.finfo(np.float32).max))
    for name, at, new in [
        ("length 3", 16, b"\x03"),
        ("step 0", 17, struct.pack("<f", 0.0)),
        ("step nan", 17, struct.pack("<f", float("nan"))),
        ("step -inf", 17, struct.pack("<f", -float("inf"))),
        ("bits 0", 21, b"\x00"),
        ("bits 16", 21, b"\x10"),
        ("bits 15", 21, b"\x0f"),  # 15-bit raw symbols: the stream's length is then wrong
        ("padding", 24, b"\x31"),
        ("codec 3", 22, b"\x03"),
        ("max step", 17, big),  # k = 1, -2 times FLT_MAX: FLT_MAX and -inf
        ("zero level", 24, b"\x0c"),  # symbols 0 3: +0 and 2 x 0.25
    ]:
        cases.append((f"bias grid {name}", v3_file(record(at, new), version=4)))
    dense_bias = b"\x09conv.bias\x00\x01\x02" + f32(1, 2)
    body = b"\x89SQZ\x04" + HEADER + b"\x01" + BIAS_GRID_RECORD + b"\x01" + dense_bias
    cases.append(("bias grid dense name", finish(body)))
    return cases


def test_early_checks_and_settled_points_agree(tmp_path: Path) -> None:
    cases = _edge_files()
    _compare(cases, tmp_path / "edges")
    assert sum(_python(data)["ok"] for _, data in cases) >= 15  # valid files are compared too


def test_the_javascript_unit_tests_pass() -> None:
    """web/test/*.test.js (node's own runner): FORMAT.md's examples and a standalone fuzz loop."""
    tests = sorted(str(p) for p in (ROOT / "web" / "test").glob("*.test.js"))
    done = subprocess.run(
        [str(NODE), "--test", *tests], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "# fail 0" in done.stdout
