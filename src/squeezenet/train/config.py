"""Training configuration (a frozen dataclass) and the named recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from squeezenet.errors import ConfigError

Schedule = Literal["poly", "cosine", "step", "constant"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field is recorded in the run folder and checked on resume."""

    epochs: int = 10  # passes over the training set
    batch_size: int = 128  # global batch per optimiser step (all ranks, all accumulation steps)
    accumulate: int = 1  # micro-batches per step (Caffe's iter_size)
    lr: float = 0.05  # base learning rate (after warm-up)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 on every parameter, as Caffe's solver applies it
    nesterov: bool = False  # Nesterov momentum
    schedule: Schedule = "cosine"  # LR decay after warm-up
    poly_power: float = 1.0  # power of the "poly" schedule (the SqueezeNet solver uses 1)
    step_epochs: int = 30  # "step" schedule: decay every this many epochs
    step_gamma: float = 0.1  # "step" schedule: factor per decay
    warmup_epochs: float = 1.0  # linear warm-up from warmup_start * lr (guards against collapse)
    warmup_start: float = 0.01  # first warm-up LR as a fraction of lr
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    augment: bool = True  # random crop + flip on training batches
    channels_last: bool = True  # NHWC memory layout (about 2x faster convolutions on this CPU)
    bf16: bool = False  # bfloat16 autocast for forward/backward
    compile: bool = False  # torch.compile the model for training (inductor)
    fused_optimizer: bool = False  # SGD's fused kernel (one kernel for all parameters)
    seed: int = 0  # data order, augmentation and dropout all derive from (seed, step)
    eval_every: int = 1  # evaluate every N epochs (and after the last)
    eval_batch_size: int = 256  # batch size for evaluation
    checkpoint_every: int = 200  # write a checkpoint every N optimiser steps (0: epochs only)
    max_steps: int = 0  # stop after this many optimiser steps (0: no limit); for tests/probes
    workers: int = 0  # DataLoader workers for file-based datasets
    collapse_patience: int = 50  # steps of loss stuck at ln(classes) before warning

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "accumulate", "eval_every", "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"TrainConfig.{name}: expected an integer >= 1, got {value!r}")
        if self.batch_size % self.accumulate:
            raise ConfigError(
                f"TrainConfig.batch_size: {self.batch_size} is not divisible by accumulate="
                f"{self.accumulate}"
            )
        self._check_optimiser()
        for name in ("checkpoint_every", "max_steps", "workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name}: expected >= 0, got {getattr(self, name)}")

    def _check_optimiser(self) -> None:
        """The SGD and schedule fields."""
        if self.lr <= 0:
            raise ConfigError(f"TrainConfig.lr: expected > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"TrainConfig.momentum: expected in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ConfigError(f"TrainConfig.weight_decay: expected >= 0, got {self.weight_decay}")
        if self.schedule not in get_args(Schedule):
            raise ConfigError(
                "TrainConfig.schedule: expected poly, cosine, step or constant, "
                f"got {self.schedule!r}"
            )
        if self.warmup_epochs < 0 or not 0 < self.warmup_start <= 1:
            raise ConfigError(
                "TrainConfig.warmup_epochs/warmup_start: expected warmup_epochs >= 0 and "
                f"0 < warmup_start <= 1, got {self.warmup_epochs}, {self.warmup_start}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Named recipes. "caffe" is the released SqueezeNet v1.0 solver (PAPER.md): batch 512 as
# 32 x iter_size 16, base LR 0.04, poly power 1, momentum 0.9, weight decay 2e-4; the released
# solver has no warm-up, which we keep short for stability on new data.
RECIPES: dict[str, TrainConfig] = {
    "caffe": TrainConfig(
        epochs=68,
        batch_size=512,
        accumulate=16,
        lr=0.04,
        momentum=0.9,
        weight_decay=2e-4,
        schedule="poly",
        poly_power=1.0,
        warmup_epochs=0.5,
        warmup_start=0.05,
    ),
    # Small images (CIFAR-10, Fashion-MNIST) with the small-input SqueezeNet. bfloat16 autocast
    # is the default: 1.64x faster end to end at 15 epochs on a Xeon with AMX, 0.8275 vs
    # float32's 0.8293 on CIFAR-10 (docs/RESULTS.md, "Training settings on this CPU"). Where the
    # device has no bfloat16 units it would only be emulated: the CLI then trains in float32
    # (:func:`native_bf16`); --bf16/--no-bf16 decide explicitly.
    "small": TrainConfig(
        epochs=15,
        batch_size=128,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="cosine",
        warmup_epochs=1.0,
        warmup_start=0.02,
        bf16=True,
    ),
    # Fine-tuning after pruning or quantization: low LR, no warm-up.
    "finetune": TrainConfig(
        epochs=2,
        batch_size=128,
        lr=0.005,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="cosine",
        warmup_epochs=0.0,
    ),
}


def recipe(name: str, **overrides: Any) -> TrainConfig:
    """A named recipe with fields replaced, e.g. ``recipe("small", epochs=3)``."""
    if name not in RECIPES:
        raise ConfigError(f"unknown training recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"TrainConfig has no field {', '.join(unknown)}")
    return dataclasses.replace(RECIPES[name], **overrides)


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16, AMX or Arm BF16 (Linux flags; elsewhere False). Without, bf16 autocast
    is emulated: slower than float32 and no more exact."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(False))
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags() -> set[str]:
    """This CPU's feature flags (Linux /proc/cpuinfo ``flags``, Arm ``Features``; else empty)."""
    try:
        with open("/proc/cpuinfo") as info:
            return {
                w for line in info if line.startswith(("flags", "Features")) for w in line.split()
            }
    except OSError:
        return set()


def resolve_bf16(config: TrainConfig, device: str, given: bool | None) -> TrainConfig:
    """``config`` with bf16 as ``given`` (the user's explicit choice), else the recipe's where
    ``device`` has bfloat16 units and False where it would only be emulated."""
    bf16 = given if given is not None else config.bf16 and native_bf16(device)
    return dataclasses.replace(config, bf16=bf16)
