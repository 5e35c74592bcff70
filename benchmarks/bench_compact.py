"""The compact ONNX of a .sqz against its dense export, in one run: size, load time, parity with
the .sqz decode, and batch-1 speed after load, in ONNX Runtime and (when installed) OpenVINO.

    python benchmarks/bench_compact.py --sqz mixed.sqz --out benchmarks/results/compact.json

With ``--sqz`` absent it compresses the published weights with ``--bits mixed`` first (needs
``../shared/data``). Speeds alternate between the two files over several rounds; the ratio is
compact / dense images per second. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from squeezenet.compress.plain_data import from_compressed
from squeezenet.deploy.compact import export_compact
from squeezenet.deploy.engines import onnx_data_engine, openvino_engine
from squeezenet.deploy.export import onnx_bytes
from squeezenet.errors import ConfigError
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.formats import read_sqz

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as folder:
        sqz = Path(args.sqz) if args.sqz else _mixed(Path(folder))
        report = export_compact(sqz, Path(folder) / "compact.onnx")
        compact = (Path(folder) / "compact.onnx").read_bytes()
        cm = read_sqz(sqz)
        sqz_bytes = sqz.stat().st_size
    model = from_compressed(cm).eval()
    crop = int(cm.preprocess["crop"]) if cm.preprocess else 224
    x = torch.rand(1, 3, crop, crop, generator=torch.Generator().manual_seed(0))
    dense = onnx_bytes(model, x)
    engines: dict[str, Any] = {}
    loads: dict[str, float] = {}
    for runtime in ("onnxruntime", "openvino"):
        for kind, data in (("dense", dense), ("compact", compact)):
            start = time.perf_counter()
            try:
                run = onnx_data_engine(data) if runtime == "onnxruntime" else openvino_engine(data)
            except ConfigError:
                break  # OpenVINO not installed
            run(x)  # the first call finishes any lazy set-up
            loads[f"{runtime} {kind}"] = round(1000 * (time.perf_counter() - start), 1)
            engines[f"{runtime} {kind}"] = run
    rates = _alternate(engines, x, args.rounds, args.seconds)
    with torch.no_grad():
        reference = model(x).numpy()
    diffs = {name: float(np.abs(run(x) - reference).max()) for name, run in engines.items()}
    ratios = {
        runtime: max(rates[f"{runtime} compact"]) / max(rates[f"{runtime} dense"])
        for runtime in ("onnxruntime", "openvino")
        if f"{runtime} dense" in rates
    }
    document = {
        "command": command_line(sys.argv),
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "sqz": args.sqz or "the mixed .sqz of the published weights",
        "sqz_bytes": sqz_bytes,
        "compact_bytes": len(compact),
        "dense_bytes": len(dense),
        "layers": [layer.__dict__ for layer in report.layers],
        "load_ms": loads,
        "max_abs_diff_vs_decode": diffs,
        "images_per_s": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
        "compact_over_dense": {k: round(v, 3) for k, v in ratios.items()},
    }
    text = json.dumps(document, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqz", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", default=None)
    return parser.parse_args()


def _mixed(folder: Path) -> Path:
    from squeezenet.compress.config import CompressConfig
    from squeezenet.compress.spellings import parse_bits
    from squeezenet.workflows.compress_file import compress_file, import_caffe_dc

    import_caffe_dc(
        SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net", folder / "w.safetensors"
    )
    path = folder / "mixed.sqz"
    compress_file(folder / "w.safetensors", path, CompressConfig(bits=parse_bits("mixed")))
    return path


def _alternate(
    engines: dict[str, Any], x: torch.Tensor, rounds: int, seconds: float
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, run in engines.items():
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds or calls < 5:
                run(x)
                calls += 1
            rates[name].append(calls / (time.perf_counter() - start))
    return rates


if __name__ == "__main__":
    main()
