"""Batch-1 latency of the shipped model in ONNX Runtime: the graph built from its layer list
(squeezenet.runtime.onnx_graph, no torch at run time) against torch's ONNX export of the module
(the "onnxruntime" engine), with the same thread count, in one process.

    python benchmarks/bench_onnx_graph.py --threads 1 2 --out benchmarks/results/onnx_graph.json

Per thread count: ``--warmup`` calls of each, then ``--runs`` calls of each in blocks of
``--block`` that take turns (so drift hits both alike); reports each one's median and the
built / exported ratio, and both sessions' max abs logit difference from the torch module.
Prints one JSON document.

Blocks, not single calls, take turns: after a run, ONNX Runtime's pool threads spin for a
while, and on a 2-core machine the other session's spinning threads halve its 2-thread speed
(measured: 8.2 ms alone, 16.4 ms when the two alternate call by call, for both graphs alike).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from squeezenet.arch.layers import layer_list
from squeezenet.deploy.export import onnx_bytes
from squeezenet.deploy.runtimes import onnxruntime_runner
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.io.weights import plain_state_dict
from squeezenet.runtime.onnx_graph import OnnxRuntimeNetwork
from squeezenet.workflows.load import load_pretrained

SHAPE = (3, 227, 227)  # the shipped v1.0's input (its preprocessing's crop)


def main() -> None:
    args = _parse()
    model = load_pretrained(args.model).model.eval()
    layers = layer_list(model.config)
    weights = {k: v.numpy() for k, v in plain_state_dict(model).items()}
    x = torch.rand(1, *SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    exported = onnx_bytes(model, torch.zeros(1, *SHAPE))
    results = {}
    for threads in args.threads:
        runs = {
            "built": OnnxRuntimeNetwork(layers, weights, SHAPE, threads=threads),
            "exported": onnxruntime_runner(exported, threads=threads),
        }
        ms = _alternate(runs, x.numpy(), args.warmup, args.runs, args.block)
        medians = {name: statistics.median(times) for name, times in ms.items()}
        results[str(threads)] = {
            "median_ms": {name: round(value, 3) for name, value in medians.items()},
            "built_over_exported": round(medians["built"] / medians["exported"], 3),
            "max_abs_diff_vs_torch": {
                name: float(np.abs(run(x.numpy()) - reference).max()) for name, run in runs.items()
            },
        }
    document = {
        "command": command_line(sys.argv),
        "machine": machine(),
        "cpu": _cpu_name(),
        "onnxruntime": __import__("onnxruntime").__version__,
        "model": args.model,
        "input": [1, *SHAPE],
        "warmup": args.warmup,
        "runs": args.runs,
        "block": args.block,
        "by_threads": results,
    }
    text = json.dumps(document, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


def _alternate(
    runs: dict[str, Callable[[np.ndarray], np.ndarray]],
    x: np.ndarray,
    warmup: int,
    count: int,
    block: int,
) -> dict[str, list[float]]:
    """Milliseconds of each of ``count`` calls per run, the runs taking turns by blocks."""
    for run in runs.values():
        for _ in range(warmup):
            run(x)
    times: dict[str, list[float]] = {name: [] for name in runs}
    while any(len(t) < count for t in times.values()):
        for name, run in runs.items():
            for _ in range(min(block, count - len(times[name]))):
                start = time.perf_counter()
                run(x)
                times[name].append(1000 * (time.perf_counter() - start))
    return times


def _cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "Model name" in line]
    return names[0] if names else platform.processor()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="squeezenet1_0-dc")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--out", default=None)
    return parser.parse_args()


if __name__ == "__main__":
    main()
