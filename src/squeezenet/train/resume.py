"""Where a run stands and how it resumes: the counters a checkpoint stores, and the checks that a
resumed run has the settings, model and number of processes of the run it continues (so that it
is bit-identical to an uninterrupted one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenet.train.checkpoint import CheckpointError, load_checkpoint
from squeezenet.train.config import TrainConfig
from squeezenet.train.metrics import EMPTY_ACCUM
from squeezenet.train.run_folder import CHECKPOINT

# TrainConfig fields a resume may change: they do not alter the numbers of the run
RESUME_IGNORED = {
    "max_steps", "workers", "eval_batch_size", "checkpoint_every", "compile", "fused_optimizer",
}  # fmt: skip


@dataclass
class Counters:
    """Where the run stands: what a checkpoint stores, so that a resume continues from here."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0  # optimiser steps done
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    accum: dict[str, Any] = field(default_factory=lambda: dict(EMPTY_ACCUM))  # this epoch's sums
    extra: dict[str, Any] = field(default_factory=dict)  # restored checkpoint state: "collapse"


def resume_counters(
    run_path: Path | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    model_config: dict[str, Any],
    world: int,
) -> Counters:
    """Restore model, optimiser and RNG from the run folder's checkpoint; return its counters."""
    if run_path is None or not (run_path / CHECKPOINT).is_file():
        raise CheckpointError(f"nothing to resume: no {CHECKPOINT} in {run_path}")
    state = load_checkpoint(run_path, model, optimizer)
    check_resume_counters(state, config, model_config, world)
    return Counters(
        state["epoch"], state["step_in_epoch"], state["global_step"], state["history"],
        state["accum"], {"collapse": state["collapse"]} if "collapse" in state else {},
    )  # fmt: skip


def check_resume_counters(
    state: dict[str, Any], config: TrainConfig, model_config: dict[str, Any], world: int
) -> None:
    """Refuse a resume whose settings, model or process count differ from the checkpoint's."""
    saved = state["train_config"]
    for key, value in config.to_dict().items():
        if key not in RESUME_IGNORED and saved.get(key) != value:
            raise CheckpointError(
                f"cannot resume: training config field {key!r} was {saved.get(key)!r} in the "
                f"checkpoint but is {value!r} now; use the same settings or start a new run"
            )
    for key, value in model_config.items():
        if state["model_config"].get(key) != value:
            raise CheckpointError(
                f"cannot resume: model config field {key!r} was {state['model_config'].get(key)!r}"
                f" in the checkpoint but is {value!r} now"
            )
    if state["world_size"] != world:
        raise CheckpointError(
            f"cannot resume: the checkpoint was written by {state['world_size']} processes, "
            f"this run has {world}; resume with the same --nproc-per-node"
        )
