"""The bias step of ``--bias grid`` (``calibrate.BIAS_STEP_SCALE``), chosen on held-out proxies.

A grid file's weights are kept and only its biases are rounded, to a step of F x the layer's
grid step x the RMS of the layer's inputs on CIFAR-10 mosaics (the ``--calib`` images): for each
factor F, the KL to the uncompressed model on the three held-out sets (``proxy_sets.py``) and the
bytes the biases' levels need (their empirical entropy, without stream overhead). F = 0 keeps
the file's biases. The ImageNet evaluation images are never read.

    python decisions/bias_step.py imported.safetensors FILE.sqz --factors 0,0.25,1 \\
        --out benchmarks/results/sequential/bias_step.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
import proxy_sets

from squeezenet.compress.calibrate import input_rms, proxy_input_stats
from squeezenet.compress.prune import layer_names
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.formats.sqz import read_sqz
from squeezenet.workflows.load import load_any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("sqz")
    parser.add_argument("--factors", default="0,0.25,1")
    parser.add_argument("--out", default="benchmarks/results/sequential/bias_step.json")
    args = parser.parse_args()
    reference_model = load_any(args.weights)
    sets = proxy_sets.held_out(reference_model.preprocess)
    reference = {n: proxy_sets.logits(reference_model.model, b) for n, b in sets.items()}
    rms = input_rms(proxy_input_stats(reference_model, "cifar10"))
    steps = {layer.name: layer.grid.step for layer in read_sqz(args.sqz).layers if layer.grid}
    rows = []
    for factor in [float(f) for f in args.factors.split(",")]:
        model = load_any(args.sqz).model
        bits = 0.0
        for name, _, module in layer_names(model):
            bias = module.bias
            if factor == 0 or bias is None or name not in steps:
                continue
            step = np.float32(factor * rms[name] * steps[name])
            levels = np.round(bias.detach().double().numpy() / float(step))
            with torch.no_grad():
                bias.copy_(torch.from_numpy((levels * float(step)).astype(np.float32)))
            _, counts = np.unique(levels, return_counts=True)
            bits += float(-(counts * np.log2(counts / counts.sum())).sum())
        scores = proxy_sets.score(model, sets, reference)
        rows.append({"factor": factor, "bias_entropy_bytes": round(bits / 8), **scores})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    document = {"command": command_line(sys.argv), "machine": machine(), "rows": rows}
    Path(args.out).write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
