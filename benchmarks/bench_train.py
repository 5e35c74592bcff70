"""Train the small-input SqueezeNet on a real dataset and print one JSON document.

    python benchmarks/bench_train.py --data cifar10 --epochs 15
    python benchmarks/bench_train.py --data fashion-mnist --epochs 10
    python benchmarks/bench_train.py --data cifar10 --epochs 15 --train bf16=true   # a setting

Results and the commands that produced them go to docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import torch

from squeezenet.train.config import recipe
from squeezenet.workflows.train_run import RunSpec, run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--model", default="squeezenet_small")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], help="model config KEY=VALUE")
    parser.add_argument(
        "--train", action="append", default=[], help="training config KEY=VALUE (e.g. bf16=true)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None, help="run folder")
    args = parser.parse_args()
    overrides: dict[str, Any] = {}
    for pair in args.set:
        key, _, value = pair.partition("=")
        overrides[key] = json.loads(value)
    changes: dict[str, Any] = {"epochs": args.epochs, "batch_size": args.batch_size}
    if args.lr is not None:
        changes["lr"] = args.lr
    for pair in args.train:
        key, _, value = pair.partition("=")
        changes[key] = json.loads(value)
    config = recipe("small", **changes)
    spec = RunSpec(args.model, args.data, config, args.data_dir, overrides)
    started = time.perf_counter()
    outcome = run_training(spec, args.out, device=args.device)
    history = outcome.result.history
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    )
    json.dump(
        {
            "benchmark": "train",
            "data": args.data,
            "model": args.model,
            "overrides": overrides,
            "train_config": config.to_dict(),
            "device": device or args.device,
            "torch": torch.__version__,
            "seconds": round(time.perf_counter() - started, 1),
            "final_top1": history[-1].get("top1"),
            "final_top5": history[-1].get("top5"),
            "best_top1": max(r.get("top1", 0.0) for r in history),
            "collapsed": outcome.result.collapsed,
            "history": history,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
