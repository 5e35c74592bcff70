"""Where a quantized model is wrecked: network weight SQNR against top-1 agreement on proxies.

The line ``squeezenet.compress.damage.MIN_NETWORK_SQNR_DB`` is drawn from this measurement, made
on CIFAR-10 *training* images rendered at the model's input size (never the evaluation images).
For each quantization of the imported published weights (k-means at 4-8 bits, ECSQ and the
trellis at fixed lambdas), it prints the file size, the network weight SQNR and
the least share of non-zero weights a layer kept (``squeezenet.compress.damage``), and the
top-1 agreement and mean KL(uncompressed || quantized) on 256 proxy images.

    squeezenet import-caffe-dc ../shared/data/squeezenet-dc/compressed_SqueezeNet.net \
        -o imported.safetensors
    python decisions/wreck_from_proxies.py imported.safetensors > wreck.jsonl   # ~10 min, 1 core

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any

import torch
import torch.nn.functional as F

from squeezenet.compress.config import MIXED_BITS, CompressConfig
from squeezenet.compress.damage import assess, weights_before
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.data.sources import load_dataset
from squeezenet.experiments.provenance import command_line
from squeezenet.workflows.compress_file import compress_model
from squeezenet.workflows.load import load_any

TRELLIS = {"quantizer": "trellis"}
CONFIGS: dict[str, dict[str, Any]] = {
    "kmeans 8": {"bits": 8},
    "kmeans mixed": {"bits": MIXED_BITS},
    "kmeans 6": {"bits": 6},
    "kmeans 5": {"bits": 5},
    "kmeans 4": {"bits": 4},
    # fixed lambdas, not byte targets: a target would now refuse the wrecking ones
    **{f"ecsq {lam:g}": {"rate_lambda": lam} for lam in (1e-5, 2e-5, 4e-5, 6e-5, 8e-5, 1.2e-4)},
    **{f"trellis {lam:g}": {**TRELLIS, "rate_lambda": lam} for lam in (1e-5, 3e-5, 5e-5, 7e-5)},
    **{f"trellis {lam:g}": {**TRELLIS, "rate_lambda": lam} for lam in (1e-4, 2.5e-4, 5e-4)},
}


@torch.no_grad()
def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + 64]) for i in range(0, len(x), 64)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="the imported published weights (.safetensors)")
    parser.add_argument("--images", type=int, default=256, help="proxy images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = load_any(args.weights)
    assert base.preprocess is not None
    before = weights_before(base.model)
    proxy = load_dataset("cifar10", "train")  # the training split: never evaluation images
    sampler = ProxySampler(proxy, base.preprocess, ProxyConfig(augment=False))
    x = torch.cat(list(sampler.batches(args.images, 64, seed=args.seed)))
    reference = _logits(base.model, x)
    for name, fields in CONFIGS.items():
        result = compress_model(copy.deepcopy(base), CompressConfig(**fields))
        damage = assess(before, result.model)
        logits = _logits(result.model, x)
        kl = F.kl_div(
            logits.log_softmax(1), reference.log_softmax(1), log_target=True, reduction="batchmean"
        )
        row = {
            "config": name,
            "bytes": len(result.data),
            **damage.to_dict(),
            "agreement": float((logits.argmax(1) == reference.argmax(1)).float().mean()),
            "kl": float(kl),
            "images": len(x),
            "command": command_line(sys.argv),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
