"""Codebook fine-tuning without the training set: knowledge distillation.

Deep Compression Sec. 3.3 retrains the shared centroids on ImageNet. Offline we have only the
uncompressed model (the teacher) and unlabeled proxy images (e.g. CIFAR-10 upscaled to 227 px),
so the centroids are fitted to the teacher instead of to labels:

* :func:`distill_`: knowledge distillation (Hinton et al. 2015): minimise the KL divergence
  between the teacher's and the student's class scores softened at temperature T, by gradient
  descent on the centroids (and optionally the biases) of a weight-shared student. SqueezeNet's
  scores are post-ReLU average-pooled maps; they serve as logits, as in Caffe.
* :func:`~squeezenet.compress.reconstruct.reconstruct_` (in :mod:`squeezenet.compress.reconstruct`):
  layer-wise output reconstruction in closed form.
* :func:`distiller`: the ``--distill`` hook of the compress pipeline, running either or both.

Both only write the centroid parameters and biases: the assignment (a buffer of the
:class:`~squeezenet.compress.weight_sharing.WeightShare` parametrization) and the pruned zeros never
change. Proxy batches are rendered on the device by :class:`ProxySampler`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.finetune_common import (
    TRAINS,
    Frozen,
    Train,
    kd_loss,
    proxy_kl,
    shared_layers,
    trainable_params,
)
from squeezenet.compress.grid_fit import StepScales, grid_of
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxyData, ProxySampler, field_error
from squeezenet.compress.reconstruct import ReconstructConfig, reconstruct_
from squeezenet.compress.weight_sharing import centroids_of
from squeezenet.errors import ConfigError, InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation of a weight-shared student (:func:`distill_`)."""

    images: int = 20_000  # proxy images seen in total; steps = ceil(images / batch_size)
    batch_size: int = 64  # proxy images per step
    optimizer: Literal["adam", "sgd"] = "adam"  # Adam copes with per-layer gradient scales
    # Peak learning rate, cosine-decayed to 0. With relative_lr it is multiplied by each
    # tensor's RMS value, so one rate suits conv1 and conv10 (weights 100x apart in scale).
    lr: float = 1e-3
    relative_lr: bool = True
    # Linear warm-up over this fraction of the steps: Adam's first steps move every centroid
    # by the full lr (sign-like), which hurts more than it helps on noisy proxy batches.
    warmup: float = 0.05
    momentum: float = 0.9  # SGD only
    temperature: float = 2.0  # softens both distributions (Hinton et al. 2015); loss x T^2
    loss: Literal["kl", "mse"] = "kl"  # "mse": squared error of the raw class scores
    train: Train = "centroids"  # "centroids+bias" also trains the shared layers' biases
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    monitor_images: int = 256  # fixed proxy images for the KL before/after (0: skip)
    log_every: int = 50  # steps between loss read-backs (a device sync) and callbacks
    max_seconds: float | None = None  # stop early after this long (the schedule is cut)
    amp: bool = False  # bfloat16 autocast on CUDA (faster; the loss stays float32)
    seed: int = 0  # proxy sampling
    device: str = "cpu"  # both models are moved here
    # Both models and every batch in channels_last layout: on this project's 2-core CPU a
    # distillation step at 227 px ran 1.4x faster (8.1 vs 5.9 images/s, batch 32).
    channels_last: bool = True

    def __post_init__(self) -> None:
        for name in ("images", "batch_size", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise field_error("DistillConfig", name, "an integer >= 1", getattr(self, name))
        checks = (  # (field, valid, what it expects), in field order
            ("optimizer", self.optimizer in ("adam", "sgd"), "adam or sgd"),
            ("lr", self.lr > 0, "a positive number"),
            ("warmup", 0.0 <= self.warmup < 1.0, "a fraction in [0, 1)"),
            ("temperature", self.temperature > 0, "a positive number"),
            ("loss", self.loss in ("kl", "mse"), "kl or mse"),
            ("train", self.train in TRAINS, " or ".join(TRAINS)),
            ("monitor_images", self.monitor_images >= 0, ">= 0"),
            ("max_seconds", self.max_seconds is None or self.max_seconds > 0, "None or > 0"),
        )
        for name, valid, expected in checks:
            if not valid:
                raise field_error("DistillConfig", name, expected, getattr(self, name))

    @property
    def steps(self) -> int:
        return -(-self.images // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DistillProgress:
    """What :func:`distill_` passes to its callback every ``log_every`` steps."""

    step: int  # steps done
    steps: int  # steps planned
    loss: float  # mean training loss since the previous report
    lr: float  # current learning-rate factor (0..1): linear warm-up, then cosine decay


@dataclass(frozen=True)
class DistillReport:
    """Outcome of :func:`distill_`; KL values are mean KL(teacher || student) at T = 1, in nats,
    on ``monitor_images`` fixed proxy images (NaN when not measured)."""

    steps: int
    images: int
    seconds: float
    kl_before: float
    kl_after: float
    centroid_change: float  # RMS change of the trained tensors / their RMS value, all layers
    trained_values: int  # scalars trained (centroids, plus biases)
    history: tuple[tuple[int, float], ...]  # (step, mean loss) every log_every steps
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["history"] = [list(row) for row in self.history]
        return out


def distill_(
    student: nn.Module,
    teacher: nn.Module,
    proxy_data: ProxyData,
    preprocess: Preprocess,
    config: DistillConfig,
    *,
    callback: Callable[[DistillProgress], None] | None = None,
) -> DistillReport:
    """Fine-tune the student's shared centroids to match the teacher (Deep Compression Sec.
    3.3 with the teacher's soft outputs in place of labels).

    Only the ``(K,)`` centroid tensors (and, with ``train="centroids+bias"``, the biases of the
    shared layers) change; autograd gives each centroid the sum of its members' gradients.

    Args:
        student: a weight-shared model (:func:`~squeezenet.compress.quantize_`), changed in place.
        teacher: the uncompressed model; its outputs are the targets. Never changed.
        proxy_data: unlabeled images, never the evaluation images.
        preprocess: the models' input pipeline (``crop`` sets the proxy size).
        config: see :class:`DistillConfig`; both models are moved to ``config.device``.
        callback: called with a :class:`DistillProgress` every ``config.log_every`` steps.
    """
    device = torch.device(config.device)
    layout = torch.channels_last if config.channels_last else torch.contiguous_format
    student.to(device).to(memory_format=layout)
    teacher.to(device).to(memory_format=layout)
    trained = trainable_params(student, config.train)
    grid = _step_scales(student) if config.train == "step+bias" else None
    sampler = ProxySampler(
        proxy_data, preprocess, config.proxy, device=device, channels_last=config.channels_last
    )
    monitor_seed = config.seed + 1_000_003  # monitor images differ from the training images
    start = [p.detach().clone() for p in trained]
    history: list[tuple[int, float]] = []
    clock = time.perf_counter()
    with Frozen(student, teacher, trained):
        kl_before = proxy_kl(student, teacher, sampler, config.monitor_images, monitor_seed)
        steps = _train_loop(student, teacher, sampler, trained, config, history, callback, grid)
        if grid is not None:
            grid.finish()
        kl_after = proxy_kl(student, teacher, sampler, config.monitor_images, monitor_seed)
    centroid_change = _relative_change(trained, start)
    seconds = time.perf_counter() - clock
    logger.info(
        "distilled %d steps in %.1f s: KL %.4f -> %.4f", steps, seconds, kl_before, kl_after
    )
    return DistillReport(
        steps=steps,
        images=steps * config.batch_size,
        seconds=round(seconds, 3),
        kl_before=kl_before,
        kl_after=kl_after,
        centroid_change=centroid_change,
        trained_values=_trained_values(trained, grid),
        history=tuple(history),
        config=config.to_dict(),
    )


@torch.no_grad()
def _relative_change(now: list[nn.Parameter], before: list[torch.Tensor]) -> float:
    """RMS over tensors of ``rms(now - before) / rms(before)``."""
    ratios = [
        (p - b).square().mean() / b.square().mean().clamp_min(1e-30)
        for p, b in zip(now, before, strict=True)
    ]
    return float(torch.stack(ratios).mean().sqrt())


def _step_scales(student: nn.Module) -> StepScales:
    """``train="step+bias"``: one scale per grid layer (every shared layer must be one)."""
    layers = [(module, centroids_of(module)) for _, module, _ in shared_layers(student)]
    if any(grid_of(module) is None for module, _ in layers):
        raise ConfigError(
            "distillation with train='step+bias' needs every shared layer on a grid "
            "(compress --quantizer trellis)"
        )
    return StepScales(layers)


def _trained_values(trained: list[nn.Parameter], grid: StepScales | None) -> int:
    """Scalars trained: centroids and biases, or with ``step+bias`` one scale per layer and the
    biases."""
    if grid is None:
        return sum(p.numel() for p in trained)
    shared = {id(c) for *_, c, _, _ in grid.layers}
    return len(grid.layers) + sum(p.numel() for p in trained if id(p) not in shared)


def _train_loop(
    student: nn.Module,
    teacher: nn.Module,
    sampler: ProxySampler,
    trained: list[nn.Parameter],
    config: DistillConfig,
    history: list[tuple[int, float]],
    callback: Callable[[DistillProgress], None] | None,
    grid: StepScales | None = None,
) -> int:
    """Run the optimisation; returns the steps done (fewer when ``max_seconds`` ran out).
    With ``grid``, the optimiser moves its scales (and the biases) instead of the centroids."""
    if grid is not None:
        shared = {id(c) for *_, c, _, _ in grid.layers}
        trained = [*grid.scales, *(p for p in trained if id(p) not in shared)]
    optimizer = _optimizer(trained, config)
    generator = torch.Generator().manual_seed(config.seed)
    device_type = sampler.images.device.type
    amp = config.amp and device_type == "cuda"
    running = torch.zeros((), device=sampler.images.device)
    clock, steps, factor = time.perf_counter(), config.steps, 1.0
    warm = max(1, round(config.warmup * steps))
    for step in range(steps):
        factor = min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        x = sampler.batch(config.batch_size, generator)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            with torch.no_grad():
                target = teacher(x)
            loss = kd_loss(student(x), target, config.temperature, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if grid is not None:
            grid.after_backward()
        optimizer.step()
        if grid is not None:
            grid.after_step()
        running += loss.detach()
        done = step + 1
        out_of_time = config.max_seconds is not None and (
            time.perf_counter() - clock > config.max_seconds
        )
        if done % config.log_every == 0 or done == steps or out_of_time:
            since = done - (history[-1][0] if history else 0)
            history.append((done, float(running) / since))
            running.zero_()
            if callback is not None:
                callback(DistillProgress(done, steps, history[-1][1], factor))
        if out_of_time:
            logger.warning("distill_: stopped after %d of %d steps (max_seconds)", done, steps)
            return done
    return steps


def _optimizer(trained: list[nn.Parameter], config: DistillConfig) -> torch.optim.Optimizer:
    """One parameter group per tensor, each with its ``base_lr`` (scaled by its RMS value when
    ``config.relative_lr``)."""
    groups = []
    for p in trained:
        scale = float(p.detach().float().square().mean().sqrt()) if config.relative_lr else 1.0
        groups.append({"params": [p], "base_lr": config.lr * (scale if scale > 0 else 1.0)})
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def distiller(
    proxy_data: ProxyData,
    config: DistillConfig | None = None,
    *,
    reconstruct: ReconstructConfig | None = None,
    callback: Callable[[DistillProgress], None] | None = None,
) -> Callable[[nn.Module, nn.Module, Preprocess | None], dict[str, Any]]:
    """A ``distill(student, teacher, preprocess)`` hook for the compress pipeline: layer-wise
    reconstruction first (if configured), then distillation (if configured; ``callback``
    receives its progress)."""

    def run(
        student: nn.Module, teacher: nn.Module, preprocess: Preprocess | None
    ) -> dict[str, Any]:
        if preprocess is None:
            raise InputError(
                "distillation needs the model's preprocessing (input size, normalisation) and "
                "this model records none; save the weights with their preprocessing first"
            )
        out: dict[str, Any] = {}
        if reconstruct is not None:
            report = reconstruct_(student, teacher, proxy_data, preprocess, reconstruct)
            out["reconstruct"] = report.to_dict()
        if config is not None:
            distilled = distill_(
                student, teacher, proxy_data, preprocess, config, callback=callback
            )
            out["distill"] = distilled.to_dict()
        return out

    return run


# The recipe `squeezenet compress --distill` uses: measured on the published weights (H100 run
# in docs/RESULTS.md), uniform 6 bits went from top-1 -2.2 to -0.6 points with it.
KD_RECIPE = DistillConfig(
    images=40_000, batch_size=128, optimizer="adam", lr=3e-4, temperature=2.0,
    train="centroids", proxy=ProxyConfig(mix="mosaic"),
)  # fmt: skip


# The first stage of `compress --quantizer trellis --distill DATA`: each grid layer's step and
# bias refitted in closed form, layer after layer, to the uncompressed model's layer outputs on
# 256 proxy mosaics (mosaics gave lower held-out proxy KL than single images, and 512 images no
# lower than 256; docs/RESULTS.md).
GRID_REFIT = ReconstructConfig(images=256, train="step+bias", proxy=ProxyConfig(mix="mosaic"))

# `compress --quantizer trellis --distill DATA`: after GRID_REFIT, the steps and biases
# distilled end to end (one scale per layer: the levels, and so the file size, stay).
KD_GRID_RECIPE = DistillConfig(
    images=4096, batch_size=32, optimizer="adam", lr=1e-3, temperature=2.0,
    train="step+bias", proxy=ProxyConfig(mix="mosaic"),
)  # fmt: skip
