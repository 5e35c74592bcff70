"""How the trellis calibration was chosen: every variant scored on held-out proxy images only.

The rule of docs/RESULTS.md ("Which images chose, which measured"): choose on data kept apart
from the evaluation. Each variant quantizes the imported published SqueezeNet to a byte target
with the trellis quantizer and is scored by top-1 agreement with, and mean KL(uncompressed ||
variant) to, the uncompressed model on three held-out proxy sets that no variant is fitted on:

* ``c10plain``: 1,000 CIFAR-10 *test* images, upscaled whole (calibration uses the training split);
* ``c10mosaic``: 1,000 2x2 mosaics of CIFAR-10 test images;
* ``photos``: 1,000 random crops (15-100 % of the side) of the natural photographs that
  scikit-image and matplotlib ship (a second image family; skipped without scikit-image).

Part ``weighting``: how ``--calib`` weighs squared weight error inside each layer (none, the
input-channel energy ``E[x^2] ** p`` for p = 0.5, 1, 1.5, and a K-FAC-style Fisher diagonal
``E[x^2] * (E[g^2] + d * mean)``), measured on CIFAR-10 training mosaics. Part ``calibration``:
what runs after quantization (bias correction from input means, the layer-wise step + bias
refit, and distillation on top). The ImageNet evaluation images are never read.

    python decisions/bench_proxies.py --out benchmarks/results/proxies     # about 30 minutes
    python decisions/bench_proxies.py --score A.sqz B.sqz ...   # files on the held-out proxies

``--score`` ranks finished files by the same held-out proxy metrics (mean KL over the three
sets first): how the shipped model is chosen among candidate recipes, without evaluation images.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
import proxy_sets

from squeezenet.compress.bias_correct import correct_bias_
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.distill import GRID_REFIT, KD_GRID_RECIPE, distill_
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.compress.prune import layer_names
from squeezenet.compress.reconstruct import reconstruct_
from squeezenet.compress.weighting import ImportanceConfig, importance_from, input_statistics
from squeezenet.data.sources import load_dataset
from squeezenet.experiments.provenance import command_line, machine
from squeezenet.workflows.compress_file import compress_model
from squeezenet.workflows.load import load_any


def main() -> None:
    args = _parse()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = load_any(proxy_sets.imported_weights(out))
    assert teacher.preprocess is not None
    sets = proxy_sets.held_out(teacher.preprocess)
    reference = {name: proxy_sets.logits(teacher.model, batches) for name, batches in sets.items()}
    if args.score:
        _score_files(args.score, sets, reference)
        return
    train = load_dataset("cifar10", "train")
    sampler = ProxySampler(train, teacher.preprocess, ProxyConfig(mix="mosaic"), channels_last=True)
    stats = input_statistics(teacher.model, sampler, ImportanceConfig())
    bench = _Bench(teacher, sets, reference, train, stats)
    rows: list[dict[str, Any]] = []
    if "weighting" in args.parts:
        rows += _weighting(bench, sampler, [int(t) for t in args.targets.split(",")])
    if "calibration" in args.parts:
        rows += _calibration(bench, args.calibration_target)
    document = {
        "command": command_line(sys.argv),
        "machine": machine(),
        "held_out": {name: len(torch.cat(b)) for name, b in sets.items()},
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/proxies")
    parser.add_argument("--parts", default="weighting,calibration")
    parser.add_argument("--targets", default="350000,400000,460000")
    parser.add_argument("--calibration-target", type=int, default=400_000)
    parser.add_argument("--score", nargs="+", default=None, help=".sqz files to score")
    return parser.parse_args()


def _score_files(
    files: list[str], sets: dict[str, list[torch.Tensor]], reference: dict[str, torch.Tensor]
) -> None:
    """Print the held-out proxy metrics of each file, ranked by mean KL (lowest first)."""
    bench = _Bench(None, sets, reference, None, None)
    rows = []
    for path in files:
        scores = bench.score(load_any(path).model)
        mean_kl = float(np.mean([s["kl"] for s in scores.values()]))
        mean_agree = float(np.mean([s["agreement"] for s in scores.values()]))
        summary = {"mean_kl": round(mean_kl, 5), "mean_agreement": round(mean_agree, 4)}
        rows.append({"file": path, "bytes": Path(path).stat().st_size, **scores, **summary})
    rows.sort(key=lambda r: r["mean_kl"])
    document = {"command": command_line(sys.argv), "machine": machine(), "ranked": rows}
    print(json.dumps(document, indent=2))


class _Bench:
    def __init__(
        self, teacher: Any, sets: dict[str, list[torch.Tensor]], reference: dict[str, Any],
        train: Any, stats: Any,
    ) -> None:  # fmt: skip
        self.teacher, self.sets, self.reference = teacher, sets, reference
        self.train, self.stats = train, stats

    def score(self, model: nn.Module) -> dict[str, dict[str, float]]:
        return proxy_sets.score(model, self.sets, self.reference)

    def trellis(self, target: int, importance: dict[str, np.ndarray] | None) -> Any:
        config = CompressConfig(quantizer="trellis", target_bytes=target, bias_dtype="float16")
        return compress_model(copy.deepcopy(self.teacher), config, importance=importance)


def _row(part: str, name: str, target: int, size: int, scores: Any, seconds: float) -> Any:
    row = {"part": part, "variant": name, "target": target, "bytes": size,
           "seconds": round(seconds, 1), **scores}  # fmt: skip
    summary = "  ".join(f"{k} {v['agreement']:.3f}/{v['kl']:.4f}" for k, v in scores.items())
    print(f"{part:>11} {name:>22} {size:>8,} B  {summary}", file=sys.stderr)
    return row


def _weighting(bench: _Bench, sampler: ProxySampler, targets: list[int]) -> list[Any]:
    model = bench.teacher.model
    fisher = _kfac(copy.deepcopy(model), list(sampler.batches(512, 64, 7)))
    energy = bench.stats.mean_square
    variants: dict[str, Callable[[], dict[str, np.ndarray] | None]] = {
        "none": lambda: None,
        "activation p=0.5": lambda: importance_from(model, bench.stats, 0.5),
        "activation p=1": lambda: importance_from(model, bench.stats, 1.0),
        "activation p=1.5": lambda: importance_from(model, bench.stats, 1.5),
        "fisher d=1": lambda: _normalised(model, _damped(fisher, energy, 1.0)),
    }
    rows = []
    for target in targets:
        for name, make in variants.items():
            if target != targets[len(targets) // 2] and name not in ("none", "activation p=0.5"):
                continue  # the other targets check the chosen variant against none only
            start = time.perf_counter()
            result = bench.trellis(target, make())
            scores = bench.score(result.model)
            seconds = time.perf_counter() - start
            rows.append(_row("weighting", name, target, len(result.data), scores, seconds))
    return rows


def _calibration(bench: _Bench, target: int) -> list[Any]:
    importance = importance_from(bench.teacher.model, bench.stats)
    base = bench.trellis(target, importance)
    size, teacher = len(base.data), bench.teacher.model
    rows = [_row("calibration", "none", target, size, bench.score(base.model), 0.0)]
    start = time.perf_counter()
    corrected = copy.deepcopy(base.model)
    correct_bias_(corrected, teacher, bench.stats.mean)
    seconds = time.perf_counter() - start
    rows.append(
        _row("calibration", "bias correction", target, size, bench.score(corrected), seconds)
    )
    start = time.perf_counter()
    refit = copy.deepcopy(base.model)
    reconstruct_(refit, teacher, bench.train, bench.teacher.preprocess, GRID_REFIT)
    seconds = time.perf_counter() - start
    rows.append(_row("calibration", "step+bias refit", target, size, bench.score(refit), seconds))
    start = time.perf_counter()
    distill_(refit, teacher, bench.train, bench.teacher.preprocess, KD_GRID_RECIPE)
    seconds += time.perf_counter() - start
    rows.append(
        _row("calibration", "refit + distillation", target, size, bench.score(refit), seconds)
    )
    return rows


def _kfac(model: nn.Module, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per layer, E[g_o^2] per output channel (summed over positions) of the cross-entropy to
    labels sampled from the model's own softmax (the output half of a K-FAC diagonal)."""
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # backward hooks need the outputs intact
    grads: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, _, module in layer_names(model):

        def hook(mod: nn.Module, gin: Any, gout: Any, name: str = name) -> None:
            grads.setdefault(name, []).append(gout[0].detach().square().sum((2, 3)).mean(0))

        handles.append(module.register_full_backward_hook(hook))
    generator = torch.Generator().manual_seed(0)
    model.eval()
    for x in batches:
        out = model(x)
        labels = torch.multinomial(F.softmax(out.detach(), 1), 1, generator=generator)[:, 0]
        model.zero_grad(set_to_none=True)
        F.cross_entropy(out, labels, reduction="sum").backward()
    for handle in handles:
        handle.remove()
    return {name: torch.stack(g).mean(0).double() for name, g in grads.items()}


def _damped(
    grads: dict[str, torch.Tensor], energy: dict[str, torch.Tensor], damping: float
) -> dict[str, torch.Tensor]:
    """E[x_i^2] * (E[g_o^2] + damping * mean) as (out, in) per layer."""
    return {
        name: (g + damping * g.mean())[:, None] * energy[name][None, :] for name, g in grads.items()
    }


def _normalised(model: nn.Module, per_pair: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    out = {}
    for name, _, module in layer_names(model):
        weight = module.weight.detach()
        h = per_pair[name].reshape(*per_pair[name].shape, *([1] * (weight.ndim - 2)))
        h = h.expand(weight.shape).numpy().copy()
        stored = weight.numpy() != 0
        out[name] = h / h[stored].mean()
    return out


if __name__ == "__main__":
    main()
