"""`fit`: SGD training with warm-up, schedules, accumulation, exact resume and DDP.

The loop knows nothing about the model beyond ``nn.Module``: pruning masks and shared weights
live in parametrizations, so training a compressed model is ordinary training. Every random
choice (data order, augmentation, dropout) derives from ``(seed, step)``, which is what makes a
resumed run bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from squeezenet.arch.preprocess import Preprocess
from squeezenet.errors import ConfigError
from squeezenet.train.batches import BatchSource, derive_seed
from squeezenet.train.checkpoint import save_checkpoint
from squeezenet.train.collapse import CollapseWatch, collapse_watch_for
from squeezenet.train.config import TrainConfig
from squeezenet.train.evaluate import evaluate
from squeezenet.train.metrics import EMPTY_ACCUM, epoch_record, write_metrics, write_run_config
from squeezenet.train.resume import Counters, resume_counters
from squeezenet.train.schedule import learning_rate

log = logging.getLogger(__name__)


@dataclass
class FitEvent:
    """Progress report sent to the ``callback`` of :func:`fit`."""

    kind: str  # "start", "step", "epoch", "warning" or "end"
    epoch: int
    step: int  # optimiser steps done
    total_steps: int
    steps_per_epoch: int
    batch_size: int
    loss: float = math.nan
    lr: float = math.nan
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class FitResult:
    """What a finished (or stopped) training produced."""

    history: list[dict[str, Any]]  # one record per finished epoch
    steps: int
    collapsed: bool  # a collapse warning was raised
    run_dir: Path | None


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass
class _Session:
    """One call of :func:`fit`: what stays fixed during it, and the counters that move."""

    model: nn.Module
    net: nn.Module  # the model, wrapped in DistributedDataParallel when there are ranks
    optimizer: torch.optim.Optimizer
    source: BatchSource
    config: TrainConfig
    preprocess: Preprocess
    eval_data: Dataset[Any] | None
    run_path: Path | None
    device: torch.device
    rank: int
    world: int
    model_config: dict[str, Any]  # the model's config fields, recorded and checked on resume
    callback: Callable[[FitEvent], None] | None
    watch: CollapseWatch | None
    counters: Counters

    @property
    def collapsed(self) -> bool:
        """The collapse warning fired in this run (before a resume too)."""
        return self.watch is not None and self.watch.fired

    @property
    def steps_per_epoch(self) -> int:
        return self.source.steps_per_epoch()

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    def emit(self, kind: str, **kw: Any) -> None:
        if self.callback is not None and self.rank == 0:
            c = self.counters
            self.callback(
                FitEvent(
                    kind, c.epoch, c.global_step, self.total_steps, self.steps_per_epoch,
                    self.config.batch_size, **kw,
                )
            )  # fmt: skip


def fit(
    model: nn.Module,
    train_data: Dataset[Any],
    config: TrainConfig,
    *,
    preprocess: Preprocess,
    eval_data: Dataset[Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    callback: Callable[[FitEvent], None] | None = None,
    device: str | torch.device = "cpu",
) -> FitResult:
    """Train ``model`` in place on ``train_data``.

    Args:
        model: any classifier ``(N, C, H, W) -> (N, classes)``; parametrized (pruned or
            weight-shared) models train as they are.
        train_data: an in-memory :class:`ArrayDataset` (fast path: batched augmentation) or any
            dataset of ``(image, label)``.
        config: the recipe; ``config.batch_size`` is the global batch over all ranks.
        preprocess: the model's input pipeline (normalisation, crop size).
        eval_data: evaluated every ``config.eval_every`` epochs and after the last.
        run_dir: where checkpoints and metrics go (rank 0 writes); None keeps nothing on disk.
        resume: continue from ``run_dir``'s checkpoint, exactly where it stopped.
        callback: receives :class:`FitEvent` progress reports.
        device: "cpu" or "cuda".

    Raises:
        ConfigError: the batch does not split over the ranks and micro-batches, or is larger
            than the training set.
        CheckpointError: ``resume`` without a checkpoint, or with other settings than it has.
    """
    session = _start(
        model, train_data, config, preprocess, eval_data,
        Path(run_dir) if run_dir is not None else None, resume, callback, torch.device(device),
    )  # fmt: skip
    session.emit("start")
    stopped = _train_epochs(session)
    if stopped:
        _save_checkpoint(session)
    history = session.counters.history
    session.emit("end", metrics=history[-1] if history else {})
    return FitResult(history, session.counters.global_step, session.collapsed, session.run_path)


def _start(
    model: nn.Module,
    train_data: Dataset[Any],
    config: TrainConfig,
    preprocess: Preprocess,
    eval_data: Dataset[Any] | None,
    run_path: Path | None,
    resume: bool,
    callback: Callable[[FitEvent], None] | None,
    device: torch.device,
) -> _Session:
    """Check the batch, move the model, build the optimiser, then resume or start the run."""
    rank, world = _rank_world()
    if config.batch_size % (world * config.accumulate):
        raise ConfigError(
            f"batch_size {config.batch_size} must be divisible by world size {world} x "
            f"accumulate {config.accumulate}"
        )
    source = BatchSource(train_data, preprocess, config, device)
    if source.steps_per_epoch() == 0:
        raise ConfigError(
            f"batch_size {config.batch_size} is larger than the training set ({source.n} images)"
        )
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        weight_decay=config.weight_decay, nesterov=config.nesterov,
        fused=True if config.fused_optimizer else None,
    )  # fmt: skip
    model_config = getattr(model, "config", None)
    model_config_dict = model_config.__dict__ if model_config is not None else {}
    if resume:  # before DDP wraps the model: its construction broadcasts rank 0's weights
        counters = resume_counters(run_path, model, optimizer, config, model_config_dict, world)
    else:
        counters = Counters()
        if run_path is not None and rank == 0:
            write_run_config(run_path, config, model_config_dict, preprocess)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    if config.compile:
        net = cast(nn.Module, torch.compile(net))
    watch = collapse_watch_for(model_config, config, source.steps_per_epoch())
    if watch is not None and resume and "collapse" in counters.extra:
        watch.load_state(counters.extra["collapse"])
    return _Session(
        model, net, optimizer, source, config, preprocess, eval_data, run_path, device, rank,
        world, model_config_dict, callback, watch, counters,
    )  # fmt: skip


def _train_epochs(s: _Session) -> bool:
    """Train until the last epoch ends; True when ``max_steps`` stopped it inside an epoch."""
    c = s.counters
    while c.epoch < s.config.epochs:
        order = s.source.epoch_order(c.epoch)
        s.model.train()
        while c.step_in_epoch < s.steps_per_epoch:
            if s.config.max_steps and c.global_step >= s.config.max_steps:
                return True
            _train_step(s, order)
        _end_epoch(s)
    return False


def _train_step(s: _Session, order: torch.Tensor) -> None:
    """One optimiser step over the global batch (all micro-batches), then its bookkeeping."""
    c, config = s.counters, s.config
    started = time.perf_counter()
    lr = learning_rate(config, c.global_step, s.total_steps, s.steps_per_epoch)
    for group in s.optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(derive_seed(config.seed, 3, c.global_step))  # dropout masks
    indices = s.source.global_indices(order, c.step_in_epoch)
    s.optimizer.zero_grad(set_to_none=True)
    step_loss, step_correct, logits = _forward_backward(s, indices)
    s.optimizer.step()
    c.global_step += 1
    c.step_in_epoch += 1
    local_n = len(indices) // s.world
    c.accum["loss_sum"] += step_loss * local_n
    c.accum["correct"] += step_correct
    c.accum["seen"] += local_n
    c.accum["time"] += time.perf_counter() - started
    _watch_collapse(s, step_loss, logits)
    s.emit("step", loss=step_loss, lr=lr)
    if config.checkpoint_every and c.global_step % config.checkpoint_every == 0:
        _save_checkpoint(s)


def _forward_backward(s: _Session, indices: torch.Tensor) -> tuple[float, int, torch.Tensor]:
    """Accumulate the gradients of this rank's micro-batches (DDP syncs on the last one).

    Returns the step's mean loss, its correct predictions and the last micro-batch's logits.
    """
    step_loss, step_correct = 0.0, 0
    micro = list(s.source.micro_batches(indices, s.counters.global_step, s.rank, s.world))
    for i, (x, y) in enumerate(micro):
        sync = i == len(micro) - 1 or s.world == 1
        ctx = s.net.no_sync() if (s.world > 1 and not sync) else contextlib.nullcontext()  # type: ignore[operator]
        with ctx, torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.config.bf16):
            logits = s.net(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=s.config.label_smoothing)
        (loss / len(micro)).backward()  # type: ignore[no-untyped-call]
        step_loss += float(loss.detach()) / len(micro)
        step_correct += int((logits.argmax(1) == y).sum())
    return step_loss, step_correct, logits


def _watch_collapse(s: _Session, step_loss: float, logits: torch.Tensor) -> None:
    if s.watch is None:
        return
    warning = s.watch.update(step_loss, logits, s.counters.global_step - 1)
    if warning:
        log.warning(warning)
        s.emit("warning", message=warning)


def _end_epoch(s: _Session) -> None:
    """Record the epoch (evaluated when due), checkpoint, write the metrics, report."""
    c, config = s.counters, s.config
    # the LR of the epoch's last step (a pure function of the step, so also right on a resume
    # from a checkpoint written after that step)
    lr = learning_rate(config, c.global_step - 1, s.total_steps, s.steps_per_epoch)
    record = epoch_record(c.epoch, c.global_step, c.accum, lr, s.world)
    due = (c.epoch + 1) % config.eval_every == 0 or c.epoch + 1 == config.epochs
    if s.eval_data is not None and s.rank == 0 and due:
        result = evaluate(
            s.model, s.eval_data, s.preprocess, batch_size=config.eval_batch_size,
            channels_last=config.channels_last, device=s.device,
        )  # fmt: skip
        record.update(eval_loss=result.loss, top1=result.top1, top5=result.top5)
    if s.collapsed:
        record["collapse_warning"] = True
    c.history.append(record)
    c.epoch += 1
    c.step_in_epoch = 0
    c.accum = dict(EMPTY_ACCUM)
    _save_checkpoint(s)
    if s.run_path is not None and s.rank == 0:
        write_metrics(s.run_path, c.history)
    s.emit("epoch", metrics=record)


def _save_checkpoint(s: _Session) -> None:
    if s.run_path is None or s.rank != 0:
        return
    c = s.counters
    state = {
        "epoch": c.epoch,
        "step_in_epoch": c.step_in_epoch,
        "global_step": c.global_step,
        "train_config": s.config.to_dict(),
        "model_config": s.model_config,
        "world_size": s.world,
        "history": c.history,
        "accum": c.accum,
    }
    if s.watch is not None:
        state["collapse"] = s.watch.state()
    save_checkpoint(s.run_path, s.model, s.optimizer, state)
