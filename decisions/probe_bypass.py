"""Why the bypass variants of the batch-norm small model trained badly (docs/MODELS.md).

For each variant: the RMS of every Fire module's output at initialisation (one batch of 128
CIFAR-10 training images, train-mode batch norm), then a training at Table 3's old budget
(2 epochs x 12,000 images, batch 128, cosine LR after a 0.5-epoch warm-up, seed 0) and its top-1
on 2,000 test images, and the share of test images whose logits are all zero after it.
Variants: the three bypasses as the model was before the fix (complex shortcut without batch
norm), lower LR, the sum before the ReLU (ResNet's order), and the complex shortcut with batch
norm (the fix now in ``Fire``).

    python decisions/probe_bypass.py > benchmarks/results/bypass/probe.jsonl   # ~6 min here

Prints one JSON line per variant (a probe, not a converged comparison: one seed, 2 epochs).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from torch import nn

from squeezenet.data.transforms import BatchPipeline
from squeezenet.experiments.sweep import parse_grid, trials_for
from squeezenet.models.fire import Fire
from squeezenet.train.config import recipe
from squeezenet.train.loop import fit
from squeezenet.workflows.build import build_for

# (bypass, shortcut batch norm, sum before the ReLU, LR)
VARIANTS = (
    ("none", False, False, 0.05),
    ("simple", False, False, 0.05),
    ("complex", False, False, 0.05),
    ("simple", False, False, 0.01),
    ("complex", False, False, 0.01),
    ("simple", False, True, 0.05),
    ("complex", True, False, 0.05),
    ("complex", True, True, 0.05),
)


def main() -> None:
    # no options, but --help must describe the probe rather than start its 6-minute run
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    for bypass, shortcut_bn, sum_first, lr in VARIANTS:
        train = recipe("small", epochs=2, warmup_epochs=0.5, lr=lr, seed=0, checkpoint_every=0)
        trial = trials_for(
            parse_grid([f"bypass={bypass}"]), model="squeezenet_small", data="cifar10",
            train=train, fixed={"squeeze_ratio": 0.125, "pct_3x3": 0.5},
            train_images=12000, test_images=2000,
        )[0]  # fmt: skip
        run = build_for(trial)
        model = _variant(run.model, shortcut_bn, sum_first)
        images, _ = run.train_split.tensors()
        x = BatchPipeline(run.preprocess, train=False)(images[:128])
        record: dict[str, Any] = {
            "bypass": bypass, "shortcut_bn": shortcut_bn, "sum_before_relu": sum_first, "lr": lr,
            "init": _activations(model, x),
        }  # fmt: skip
        start = time.perf_counter()
        result = fit(model, run.train_split, trial.train, preprocess=run.preprocess,
                     eval_data=run.test_data)  # fmt: skip
        record.update(
            top1=result.history[-1].get("top1"),
            collapsed=result.collapsed,
            losses=[round(r["train_loss"], 3) for r in result.history],
            seconds=round(time.perf_counter() - start),
            dead_logits=_dead_logits(model, run),
        )
        print(json.dumps(record), flush=True)


def _variant(model: nn.Module, shortcut_bn: bool, sum_first: bool) -> nn.Module:
    for fire in model.modules():
        if not isinstance(fire, Fire) or fire.bypass == "none":
            continue
        if not shortcut_bn:
            fire.shortcut_bn = None  # the model as it was before the fix
        if sum_first:
            fire.forward = _sum_first(fire)  # type: ignore[method-assign]
    return model


def _sum_first(m: Fire) -> Any:
    def forward(x: torch.Tensor) -> torch.Tensor:
        assert m.squeeze_bn is not None and m.expand1x1_bn is not None
        assert m.expand3x3_bn is not None
        s = m.squeeze_activation(m.squeeze_bn(m.squeeze(x)))
        e = torch.cat([m.expand1x1_bn(m.expand1x1(s)), m.expand3x3_bn(m.expand3x3(s))], 1)
        if m.shortcut is None:
            return torch.relu(e + x)
        short = m.shortcut(x)
        return torch.relu(e + (m.shortcut_bn(short) if m.shortcut_bn is not None else short))

    return forward


def _dead_logits(model: nn.Module, run: Any) -> float:
    """The share of test images whose logits are all zero (conv10's ReLU dead for every class)."""
    images, _ = run.test_data.tensors()
    x = BatchPipeline(run.preprocess, train=False)(images[:256])
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return round(float((logits == 0).all(1).float().mean()), 3)


def _activations(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    rms: list[tuple[str, float]] = []
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out, n=name: rms.append((n, round(float(out.pow(2).mean().sqrt()), 3)))
        )
        for name, m in model.named_modules()
        if isinstance(m, Fire)
    ]
    model.train()
    with torch.no_grad():
        logits = model(x)
    for hook in hooks:
        hook.remove()
    return {"fire_rms": rms, "logit_rms": round(float(logits.pow(2).mean().sqrt()), 3)}


if __name__ == "__main__":
    main()
