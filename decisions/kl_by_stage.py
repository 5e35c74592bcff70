"""Where the KL of a compressed file comes from, on the held-out proxies: the frozen error-feedback
recipe (``compress --weighting hessian --calib cifar10``) at a fixed lambda, then the uncompressed
model with only one group of stages replaced by their quantized weights and corrected biases.

It decided what to try next for issue 32: on the photographs the groups' KLs add up to the whole
file's (the errors barely interact), and the classifier (conv10) gives the largest share there
though not on CIFAR-10. The ImageNet evaluation images are never read.

    python decisions/kl_by_stage.py SQ.safetensors --rate-lambda 1.9869724993175742e-05 \\
        > benchmarks/results/sequential/kl_by_stage.json

With ``--finer F`` it measures instead where bits pay: the whole file again, once per group
with that group's lambda times F (a finer grid there), against the file without: the bytes
each group's extra precision costs and the KL it saves on each held-out set.

    python decisions/kl_by_stage.py SQ.safetensors --finer 0.5 \\
        > benchmarks/results/sequential/bits_by_stage.json

With ``--sequential`` too, the same for the sequential recipe (``--weighting sequential``, its
classifier at lambda / 2 as shipped): the group's stages at ``SequentialConfig.stage_scales``
1 / F, at the frozen recipe's lambda.

    python decisions/kl_by_stage.py SQ.safetensors --finer 0.5 --sequential --rate-lambda 2.1e-5 \\
        > benchmarks/results/sequential/bits_by_stage_sequential.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
import proxy_sets

from squeezenet.compress.calibrate import _mosaics, calibrate
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.prune import layer_names
from squeezenet.compress.sequential import Sequential, SequentialConfig
from squeezenet.formats.sqz import decode_sqz
from squeezenet.workflows.compress_file import compress_model
from squeezenet.workflows.load import load_any

GROUPS = {  # state-dict prefixes of SqueezeNet v1.0's stages
    "conv1": ("features.0.",),
    "fire2-4": ("features.3.", "features.4.", "features.5."),
    "fire5-6": ("features.7.", "features.8."),
    "fire7-8": ("features.9.", "features.10."),
    "fire9": ("features.12.",),
    "conv10": ("classifier.1.",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--rate-lambda", type=float, default=1.9869724993175742e-05)
    parser.add_argument("--finer", type=float, default=None)
    parser.add_argument("--sequential", action="store_true")
    args = parser.parse_args()
    if args.finer is not None and args.sequential:
        finer_sequential(args.weights, args.rate_lambda, args.finer)
        return
    if args.finer is not None:
        finer(args.weights, args.rate_lambda, args.finer)
        return
    loaded, sets, reference = _held_out(args.weights)
    config = CompressConfig(
        quantizer="trellis", rate_lambda=args.rate_lambda, bias_dtype="float16",
        weighting="hessian",
    )  # fmt: skip
    calibration = calibrate(loaded, config, "cifar10")
    fresh = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    result = compress_model(
        fresh, config, distill=calibration.correct, feedback=calibration.feedback
    )
    quantized = {layer.name: layer for layer in decode_sqz(result.data).layers}
    names = [name for name, _, _ in layer_names(loaded.model)]
    out: dict[str, object] = {"bytes": len(result.data), "rate_lambda": args.rate_lambda}
    groups = {**{g: [n for n in names if (n + ".").startswith(p)] for g, p in GROUPS.items()}}
    for group, members in {**groups, "all": names}.items():
        model = copy.deepcopy(loaded.model)
        modules = dict(model.named_modules())
        with torch.no_grad():
            for name in members:
                layer, module = quantized[name], modules[name]
                module.weight.copy_(
                    torch.from_numpy(layer.dense_weight()).reshape_as(module.weight)
                )
                if layer.bias is not None and module.bias is not None:
                    module.bias.copy_(torch.from_numpy(layer.bias))
        out[group] = proxy_sets.score(model, sets, reference)
        print(group, json.dumps(out[group]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


def _held_out(weights: str) -> tuple[Any, Any, Any]:
    """The model, the held-out proxy sets and its logits on them (the reference)."""
    loaded = load_any(weights)
    sets = proxy_sets.held_out(loaded.preprocess)
    return loaded, sets, {n: proxy_sets.logits(loaded.model, b) for n, b in sets.items()}


def finer(weights: str, rate_lambda: float, factor: float) -> None:
    """``--finer``: per group, the file with that group's lambda x ``factor``."""
    loaded, sets, reference = _held_out(weights)
    config = CompressConfig(
        quantizer="trellis", rate_lambda=rate_lambda, bias_dtype="float16", weighting="hessian"
    )
    calibration = calibrate(loaded, config, "cifar10")
    names = [name for name, _, _ in layer_names(loaded.model)]
    out: dict[str, object] = {"rate_lambda": rate_lambda, "factor": factor}
    for group, prefixes in {"none": (), **GROUPS}.items():
        scales = {n: 1 / factor for n in names if (n + ".").startswith(prefixes)}
        fresh = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
        result = compress_model(
            fresh, config, distill=calibration.correct, scales=scales,
            feedback=calibration.feedback,
        )  # fmt: skip
        out[group] = {"bytes": len(result.data), **proxy_sets.score(result.model, sets, reference)}
        print(group, json.dumps(out[group]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


STAGES = {  # the same groups by SqueezeNet.stages() names
    "conv1": ("conv1",),
    "fire2-4": ("fire2", "fire3", "fire4"),
    "fire5-6": ("fire5", "fire6"),
    "fire7-8": ("fire7", "fire8"),
    "fire9": ("fire9",),
    "conv10": ("conv10",),
}


def finer_sequential(weights: str, rate_lambda: float, factor: float) -> None:
    """``--finer --sequential``: per group, the sequential file with its stages at lambda x
    ``factor``."""
    loaded, sets, reference = _held_out(weights)
    config = CompressConfig(quantizer="trellis", rate_lambda=rate_lambda, bias_dtype="float16")
    out: dict[str, object] = {"rate_lambda": rate_lambda, "factor": factor}
    for group, stages in {"none": (), **STAGES}.items():
        walk = Sequential(
            _mosaics(loaded, "cifar10"),
            SequentialConfig(stage_scales=tuple((s, 1 / factor) for s in stages)),
        )
        fresh = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
        result = compress_model(fresh, config, sequential=walk)
        out[group] = {"bytes": len(result.data), **proxy_sets.score(result.model, sets, reference)}
        print(group, json.dumps(out[group]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
