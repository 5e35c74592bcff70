"""Quantization-aware fine-tuning for the int8 engine, tried on held-out proxies (not adopted).

The float model (the imported published SqueezeNet) is copied and trained by distillation from
itself (KL at T = 1) through a simulation of the int8 engine: per-output-channel int8 weights
(``fake_quantize_per_channel_affine``, nearest rounding, straight-through gradients) and uint8
activations at exactly the scales and zero points ONNX Runtime calibrated for the QDQ model
(input, every ReLU output, every fire's concatenation). Adam, each tensor's learning rate the
base rate times its RMS, cosine-decayed. Training images: CIFAR-10 *training* 2x2 mosaics
(``mosaic``) or 4x4 tiles of native-resolution CIFAR-10 training images (``tiles``, as sharp as
photographs at 227 px). The tuned model is then exported through the package's int8 path
(nearest rounding: the tuning learnt that grid) and scored like ``bench_int8_calibration.py``
on the held-out proxies (CIFAR-10 test, test mosaics, crops of the photographs). The ImageNet
evaluation images are never read.

    python decisions/int8_qat.py --steps 300 --lr 1e-3 --source mosaic    # ~10 minutes here
    python decisions/int8_qat.py --steps 300 --lr 3e-4 --source tiles

Prints JSON lines: the starting int8 model, how close the simulation is to ONNX Runtime, the
loss every 50 steps, the tuned int8 model's proxy scores, and the tuned float model's KL to the
original.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the records beside this one
import proxy_sets
from bench_int8_calibration import proxy_scores

from squeezenet.compress.finetune_common import kd_loss
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.data.sources import load_dataset
from squeezenet.data.transforms import normalize_batch
from squeezenet.deploy.int8 import Int8Config, int8_model_onnx
from squeezenet.deploy.int8_calibration import calibration_batches
from squeezenet.deploy.runtimes import onnx_session
from squeezenet.models.fire import Fire
from squeezenet.workflows.load import load_any


class _FakeWeight(nn.Module):
    """Per-output-channel symmetric int8 rounding at the steps of the starting weights."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        dims = tuple(range(1, w.ndim))
        self.register_buffer("step", (w.detach().abs().amax(dim=dims) / 127).clamp_min(1e-12))
        self.step: torch.Tensor

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(self.step, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, self.step, zero, 0, -127, 127)


def simulate(model: nn.Module, qdq: bytes, probe: torch.Tensor) -> nn.Module:
    """A copy of ``model`` that rounds like the QDQ model ``qdq`` (its activation scales)."""
    init = {
        i.name: onnx.numpy_helper.to_array(i) for i in onnx.load_from_string(qdq).graph.initializer
    }
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            parametrize.register_parametrization(m, "weight", _FakeWeight(m.weight))
    order: list[nn.Module] = []  # the ReLUs in execution order: ONNX names relu, relu_1, ...
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    handles = [r.register_forward_hook(lambda m, a, o: order.append(m)) for r in relus]
    with torch.no_grad():
        model(probe)
    for handle in handles:
        handle.remove()

    def fake(name: str) -> Callable[..., torch.Tensor]:
        scale, zero = float(init[name + "_scale"]), int(init[name + "_zero_point"])
        return lambda m, a, o: torch.fake_quantize_per_tensor_affine(o, scale, zero, 0, 255)

    for k, relu in enumerate(order):
        relu.inplace = False
        relu.register_forward_hook(fake("relu" if k == 0 else f"relu_{k}"))
    fires = [m for m in model.modules() if isinstance(m, Fire)]
    for k, fire in enumerate(fires):
        fire.register_forward_hook(fake("cat" if k == 0 else f"cat_{k}"))
    quantize_input = fake("input")
    model.register_forward_pre_hook(lambda m, a: (quantize_input(m, a, a[0]),))
    return model


def _training_batches(source: str, preprocess: Any, steps: int) -> Iterator[torch.Tensor]:
    train = load_dataset("cifar10", "train")
    if source == "mosaic":
        sampler = ProxySampler(train, preprocess, ProxyConfig(mix="mosaic"), channels_last=True)
        yield from sampler.batches(steps * 16, 16, seed=7)
        return
    images = torch.as_tensor(train.images)
    if images.shape[-1] == 3:
        images = images.permute(0, 3, 1, 2)
    g = torch.Generator().manual_seed(7)
    for _ in range(steps):  # 4x4 tiles of 32-px images, 128 -> 227 px, random flip
        idx = torch.randint(0, len(images), (16, 16), generator=g)
        tiles = images[idx].reshape(16, 4, 4, 3, 32, 32).permute(0, 3, 1, 4, 2, 5)
        x = F.interpolate(tiles.reshape(16, 3, 128, 128).float(), size=(227, 227),
                          mode="bilinear", align_corners=False)  # fmt: skip
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(3)
        yield normalize_batch(x, preprocess).contiguous(memory_format=torch.channels_last)


def _kl(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(
        F.kl_div(a.log_softmax(1), b.log_softmax(1), reduction="batchmean", log_target=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--source", choices=("mosaic", "tiles"), default="mosaic")
    args = parser.parse_args()
    torch.set_num_threads(2)
    clock = time.time()
    teacher = load_any(proxy_sets.imported_weights(Path(tempfile.mkdtemp())))
    assert teacher.preprocess is not None
    model = teacher.model.eval()
    sets = proxy_sets.held_out(teacher.preprocess)
    reference = {n: proxy_sets.logits(model, b) for n, b in sets.items()}
    calibration = calibration_batches("cifar10", teacher.preprocess, images=256)
    start = int8_model_onnx(model, calibration)
    print(json.dumps({"v": "start (GPTQ)", **proxy_scores(start, sets, reference)}), flush=True)
    sim = simulate(model, start, torch.from_numpy(calibration[0][:1]))
    x = sets["photos"][0]
    with torch.no_grad():
        ours, float32 = sim(x), model(x)
    ort = torch.from_numpy(onnx_session(start).run(None, {"input": x.contiguous().numpy()})[0])
    fit = {"sim_vs_float": _kl(ours, float32), "ort_vs_float": _kl(ort, float32),
           "sim_vs_ort": _kl(ours, ort)}  # fmt: skip
    print(json.dumps({"simulation, 100 photograph crops": fit}), flush=True)
    params = list(sim.parameters())
    base = [args.lr * float(p.detach().square().mean().sqrt()) for p in params]
    optimizer = torch.optim.Adam(
        [{"params": [p], "lr": lr} for p, lr in zip(params, base, strict=True)]
    )
    for step, xb in enumerate(_training_batches(args.source, teacher.preprocess, args.steps), 1):
        with torch.no_grad():
            target = model(xb)
        loss = kd_loss(sim(xb), target, 1.0, "kl")
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        decay = 0.5 * (1 + np.cos(np.pi * (step - 1) / args.steps))
        for group, lr in zip(optimizer.param_groups, base, strict=True):
            group["lr"] = lr * decay
        optimizer.step()
        if step % 50 == 0:
            print(json.dumps({"step": step, "loss": float(loss.detach()),
                              "s": round(time.time() - clock)}), flush=True)  # fmt: skip
    tuned = copy.deepcopy(model)
    modules = dict(sim.named_modules())
    with torch.no_grad():
        for name, m in tuned.named_modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(modules[name].parametrizations.weight.original)
                m.bias.copy_(modules[name].bias)
    data = int8_model_onnx(tuned, calibration, Int8Config(rounding="nearest"))
    label = f"tuned {args.steps} steps, lr {args.lr:g}, {args.source}; nearest rounding"
    print(json.dumps({"v": label, **proxy_scores(data, sets, reference)}), flush=True)
    drift = {n: round(_kl(proxy_sets.logits(tuned, b), reference[n]), 5) for n, b in sets.items()}
    print(json.dumps({"tuned float32 vs the original, KL": drift}), flush=True)


if __name__ == "__main__":
    main()
