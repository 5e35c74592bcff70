"""Error feedback (GPTQ / OBC) inside the trellis quantizer, chosen on held-out proxies only.

Each candidate quantizes the imported published SqueezeNet to one byte target with the trellis
and ``--calib cifar10`` (bias correction from input means), and differs only in how the errors
are weighed: the shipped activation weighting (RMS input per channel), or error feedback through
each layer's input Hessian, measured on 2x2 mosaics of CIFAR-10 *training* images, at a damping
(fraction of the mean diagonal added before inverting). Scored like ``bench_proxies.py --score``
on the three held-out sets (CIFAR-10 test plain and mosaic, photograph crops): KL to the
uncompressed model and top-1 agreement. Two proxy seeds (the calibration images, positions and
the held-out sets stay fixed), so a step counts only if it beats its spread. Further candidates
(``--candidates``) add the step + bias refit and distillation of ``--distill cifar10`` on top
(``feedback 0.1 distill``), measure the Hessian on more images (``feedback 0.1 images 1024``)
or temper the feedback's cost weights (``feedback 0.1 power 0.5``).
The ImageNet evaluation images are never read.

    python decisions/bench_feedback.py SQ.safetensors --target 340000 --damping 0.01,0.1,1 \\
        --seeds 0,1 --out benchmarks/results/feedback     # resumable: finished rows are kept
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
import proxy_sets

from squeezenet.compress import trellis_feedback
from squeezenet.compress.calibrate import (
    bias_corrector,
    proxy_distiller,
    proxy_hessians,
    proxy_input_stats,
)
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.trellis import feedback_factor
from squeezenet.compress.weighting import HessianConfig, importance_from
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.workflows.compress_file import compress_model
from squeezenet.workflows.load import load_any


def main() -> None:
    args = _parse()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.json"
    rows: list[dict[str, Any]] = json.loads(rows_path.read_text()) if rows_path.exists() else []
    done = {(r["candidate"], r["seed"], r["target"]) for r in rows}
    loaded = load_any(args.weights)
    sets = proxy_sets.held_out(loaded.preprocess)
    reference = {name: proxy_sets.logits(loaded.model, b) for name, b in sets.items()}
    candidates = args.candidates.split(",") if args.candidates else [
        "activation", *(f"feedback {d}" for d in args.damping.split(","))
    ]  # fmt: skip
    for seed in [int(s) for s in args.seeds.split(",")]:
        stats = None
        hessians: dict[int, Any] = {}  # by image count
        for candidate in candidates:
            if (candidate, seed, args.target) in done:
                continue
            start = time.perf_counter()
            if stats is None:
                stats = proxy_input_stats(loaded, "cifar10", seed=seed)
            config = CompressConfig(
                quantizer="trellis", target_bytes=args.target, bias_dtype="float16", seed=seed
            )
            words = candidate.split()
            importance = feedback = None
            if words[0] == "activation":
                importance = importance_from(loaded.model, stats)
            else:
                images = int(words[words.index("images") + 1]) if "images" in words else 256
                if images not in hessians:
                    hessians[images] = proxy_hessians(
                        loaded, "cifar10", HessianConfig(images=images, seed=seed)
                    )
                damping = float(words[1])
                feedback = {n: feedback_factor(h, damping) for n, h in hessians[images].items()}
            # "power P": the feedback's cost weights tempered (trellis_feedback.COST_POWER)
            power = float(words[words.index("power") + 1]) if "power" in words else 1.0
            trellis_feedback.COST_POWER = power
            hook = bias_corrector(stats)
            if "distill" in words:  # the step + bias refit, then distillation (--distill)
                hook = proxy_distiller("cifar10", config)
            fresh = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
            result = compress_model(
                fresh, config, distill=hook, importance=importance, feedback=feedback
            )
            name = f"{candidate.replace(' ', '_')}_s{seed}_{args.target}.sqz"
            (out / name).write_bytes(result.data)
            scores = proxy_sets.score(result.model, sets, reference)
            kls = [s["kl"] for s in scores.values()]
            agreements = [s["agreement"] for s in scores.values()]
            rows.append({
                "candidate": candidate, "seed": seed, "target": args.target,
                "bytes": len(result.data), "seconds": round(time.perf_counter() - start, 1),
                **scores, "mean_kl": round(float(np.mean(kls)), 5),
                "mean_agreement": round(float(np.mean(agreements)), 4),
            })  # fmt: skip
            rows_path.write_text(json.dumps(rows, indent=1))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    document = {"command": command_line(sys.argv), "machine": machine(), "rows": rows}
    print(json.dumps(document, indent=2))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--target", type=int, default=340_000)
    parser.add_argument("--damping", default="0.01,0.1,1")
    parser.add_argument(
        "--candidates", default=None,
        help='comma-separated, e.g. "feedback 0.1 distill,feedback 0.1 images 1024"',
    )  # fmt: skip
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default="benchmarks/results/feedback")
    return parser.parse_args()


if __name__ == "__main__":
    main()
