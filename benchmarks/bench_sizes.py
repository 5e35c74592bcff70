"""The paper's Table 2 regenerated on the published Deep Compression SqueezeNet: bytes, ratio to
AlexNet and (with --eval) top-1 / top-5 on the ImageNet sample, without any retraining.

Usage: python benchmarks/bench_sizes.py [--eval] [--data MANIFEST] [--markdown FILE]

Prints one JSON object; --markdown also writes the table for docs/RESULTS.md. Every .sqz row
runs the same library calls as `squeezenet import-caffe-dc` + `squeezenet compress`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from squeezenet.atomic import atomic_write_json
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.sizes import ALEXNET_DENSE_BYTES
from squeezenet.compress.spellings import parse_bits, parse_policy
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.experiments.sizes_report import sizes_markdown
from squeezenet.workflows.compress_file import compress_file, import_caffe_dc
from squeezenet.workflows.load import load_any

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PUBLISHED = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
SAMPLE = SHARED / "imagenet-sample" / "manifest.csv"

# (label, --policy, --bits) of our files: all keep the published positions (no new pruning).
VARIANTS = (
    ("ours, lossless 8-bit", "none", "8"),
    ("ours, 6-bit", "none", "6"),
    ("ours, mixed 8/6-bit", "none", "mixed"),
)
# The paper's Table 2 (SqueezeNet Sec. 4): size as printed, reduction vs AlexNet, top-1, top-5.
PAPER = {
    "AlexNet, dense 32-bit": ("240 MB", "1x", 0.572, 0.803),
    "SqueezeNet, dense 32-bit": ("4.8 MB", "50x", 0.575, 0.803),
    "published Deep Compression 8-bit": ("0.66 MB", "363x", 0.575, 0.803),
    "ours, 6-bit": ("0.47 MB", "510x", 0.575, 0.803),
}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _evaluate(path: Path, data: Path) -> dict[str, Any]:
    from squeezenet.data.sources import load_dataset
    from squeezenet.train.evaluate import evaluate

    loaded = load_any(path)
    assert loaded.preprocess is not None
    start = time.perf_counter()
    result = evaluate(loaded.model, load_dataset(str(data), "test"), loaded.preprocess)
    return {**result.to_dict(), "eval_s": round(time.perf_counter() - start, 1)}


def measure(folder: Path, data: Path | None) -> dict[str, Any]:
    """All rows; ``data``: evaluate every distinct SqueezeNet variant on this manifest."""
    dense = folder / "squeezenet.safetensors"
    imported = import_caffe_dc(PUBLISHED, dense)
    rows: list[dict[str, Any]] = [
        {"model": "AlexNet, dense 32-bit", "bytes": ALEXNET_DENSE_BYTES, "file": None},
        {"model": "SqueezeNet, dense 32-bit", "bytes": 4 * imported.params, "file": str(dense)},
        {
            "model": "published Deep Compression 8-bit",
            "bytes": PUBLISHED.stat().st_size,
            "file": str(PUBLISHED),
        },
    ]
    reference = load_any(dense).model
    for label, policy, bits in VARIANTS:
        out = folder / f"{bits}.sqz"
        config = CompressConfig(policy=parse_policy(policy), bits=parse_bits(bits))
        report = compress_file(dense, out, config).report
        row = {"model": label, "bytes": report.file_bytes, "file": str(out), "bits": report.bits}
        row["lossless"] = _same_weights(load_any(out).model, reference)
        row["seconds"] = report.seconds
        rows.append(row)
    for row in rows:
        row["mib"] = row["bytes"] / 2**20
        row["ratio_alexnet"] = ALEXNET_DENSE_BYTES / row["bytes"]
        paper = PAPER.get(row["model"])
        row["paper"] = (
            dict(zip(("size", "ratio", "top1", "top5"), paper, strict=True)) if paper else None
        )
    if data is not None:
        # The published file, its dense import and our lossless re-encoding hold the same
        # weights (checked above for ours): one evaluation serves the three rows.
        base = _evaluate(dense, data)
        for row in rows[1:]:
            same = row["file"] in (str(dense), str(PUBLISHED)) or row.get("lossless", False)
            row["accuracy"] = base if same else _evaluate(Path(row["file"]), data)
    return {
        "published": str(PUBLISHED),
        "data": str(data) if data else None,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", action="store_true", help="top-1/top-5 on the sample images")
    parser.add_argument("--data", type=Path, default=SAMPLE, help="CSV manifest to evaluate on")
    parser.add_argument("--markdown", type=Path, help="also write the markdown table here")
    parser.add_argument(
        "--out", type=Path, help="also write OUT/sizes.json (for `squeezenet report OUT`)"
    )
    args = parser.parse_args()
    if not PUBLISHED.is_file():
        print(json.dumps({"skipped": f"{PUBLISHED} not found"}))
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = measure(Path(folder), args.data if args.eval else None)
    result["seconds"] = round(time.perf_counter() - start, 1)
    for row in result["rows"]:  # temporary files are gone: keep only the names
        if row["file"] and row["file"].startswith(folder):
            row["file"] = Path(row["file"]).name
    result["meta"] = {"command": command_line(sys.argv), "machine": machine()}
    print(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.write_text(sizes_markdown(result))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out / "sizes.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
