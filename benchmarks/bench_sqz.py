"""Time and size the lossless .sqz re-encoding of the published Deep Compression SqueezeNet.

Usage: python benchmarks/bench_sqz.py [--repeat 5]; prints one JSON object.
Targets set for the lossless re-encoder: encode <= 2 s, decode <= 0.3 s, <= 560,000 bytes
(measured: docs/FORMAT.md section 12).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from squeezenet.formats import decode_sqz, encode_sqz, inspect_sqz, read_caffe_dc

PUBLISHED = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/squeezenet-dc/compressed_SqueezeNet.net"
)


def best_of(repeat: int, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def _worst_ratios(info: dict) -> dict[str, float]:  # type: ignore[type-arg]
    """Per stream kind and codec: the largest payload / entropy over streams of >= 256 B."""
    worst: dict[str, float] = {}
    for layer in info["layers"]:
        for kind in ("codes", "positions"):
            key = f"{kind}_{layer[f'{kind}_codec']}"
            if key.endswith("raw") or layer[f"{kind}_entropy_bytes"] < 256:
                continue
            worst[key] = round(max(worst.get(key, 0.0), layer[f"{kind}_entropy_ratio"]), 4)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the best counts")
    args = parser.parse_args()
    if not PUBLISHED.is_file():
        print(json.dumps({"skipped": f"{PUBLISHED} not found"}))
        return 0
    read_s, model = best_of(args.repeat, read_caffe_dc, PUBLISHED)
    results: dict[str, object] = {
        "published_bytes": PUBLISHED.stat().st_size,
        "read_caffe_dc_s": read_s,
    }
    decode_sqz(encode_sqz(model))  # warm-up: imports, class-name list
    for label, options in [
        ("auto", {}),
        ("huffman_gap4", {"codec": "huffman", "gap_bits": 4}),
        ("raw_gap4", {"codec": "raw", "gap_bits": 4}),
        ("rans", {"codec": "rans"}),
        ("auto_float16", {"codebook_dtype": "float16"}),
    ]:
        enc_s, data = best_of(args.repeat, encode_sqz, model, **options)
        dec_s, _ = best_of(args.repeat, decode_sqz, data)
        info = inspect_sqz(data)
        totals = info["totals"]
        results[label] = {
            "bytes": len(data),
            "encode_s": round(enc_s, 4),
            "decode_s": round(dec_s, 4),
            "header_bytes": info["header_bytes"],
            "codebook_bytes": totals["codebook_bytes"],
            "bias_bytes": totals["bias_bytes"],
            "codes_bytes": totals["codes_bytes"],
            "codes_entropy_bytes": round(totals["codes_entropy_bytes"]),
            "positions_bytes": totals["positions_bytes"],
            "positions_entropy_bytes": round(totals["positions_entropy_bytes"]),
            "worst_entropy_ratio": _worst_ratios(info),
        }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
