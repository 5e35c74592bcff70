"""The collapse watch of :func:`~squeezenet.train.loop.fit`: a warning when training has stalled
at chance (the loss stuck at ln(classes), or every logit 0 because the last ReLU died)."""

from __future__ import annotations

import math
from typing import Any

import torch

from squeezenet.train.config import TrainConfig


class CollapseWatch:
    """Warns when the loss sits at ln(classes) or the logits are all zero (dead conv10).

    Only the dead-logits test runs during the learning-rate warm-up: there, at 2-12 % of the
    peak rate, a healthy model's loss is still near ln(classes), and counting it cried wolf on
    batch-norm models. The state goes into every checkpoint (:meth:`state`), so a
    resumed run warns exactly when the uninterrupted one would.
    """

    def __init__(
        self, num_classes: int, patience: int, *, warmup_steps: int = 0, batch_norm: bool = False
    ) -> None:
        self.chance = math.log(num_classes)
        self.patience = patience
        self.warmup_steps = warmup_steps  # steps before the loss test starts counting
        self.batch_norm = batch_norm  # the model has batch norm: advise something else
        self.stuck = 0
        self.dead = 0
        self.ema: float | None = None
        self.fired = False

    def state(self) -> dict[str, Any]:
        return {"stuck": self.stuck, "dead": self.dead, "ema": self.ema, "fired": self.fired}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stuck, self.dead = int(state["stuck"]), int(state["dead"])
        self.ema, self.fired = state["ema"], bool(state["fired"])

    def update(self, loss: float, logits: torch.Tensor, step: int = 1 << 62) -> str | None:
        """Count one step (``step``: the global step it was, 0-based); a warning once."""
        self.ema = loss if self.ema is None else 0.9 * self.ema + 0.1 * loss
        at_chance = abs(self.ema - self.chance) < 0.01 * self.chance
        self.stuck = self.stuck + 1 if at_chance and step >= self.warmup_steps else 0
        self.dead = self.dead + 1 if float(logits.detach().abs().max()) == 0.0 else 0
        if self.fired or max(self.stuck, self.dead) < self.patience:
            return None
        self.fired = True
        if self.dead >= self.patience:
            why = f"all logits have been 0 for {self.dead} steps (the last ReLU is dead)"
        else:
            why = (
                f"the loss has stayed at ln(classes) = {self.chance:.4f} for {self.stuck} steps "
                "after the warm-up"
            )
        advice = "lower the learning rate or lengthen the warm-up (warmup_epochs)"
        if not self.batch_norm:
            advice += ", or use batch_norm=True"
        return f"training looks collapsed: {why}; {advice}"


def collapse_watch_for(
    model_config: Any, config: TrainConfig, steps_per_epoch: int
) -> CollapseWatch | None:
    """The run's collapse detector (None for a model without a class count)."""
    num_classes = int(getattr(model_config, "num_classes", 0) or 0)
    if num_classes < 2:
        return None
    warmup = math.ceil(config.warmup_epochs * steps_per_epoch)
    batch_norm = bool(getattr(model_config, "batch_norm", False))
    return CollapseWatch(
        num_classes, config.collapse_patience, warmup_steps=warmup, batch_norm=batch_norm
    )
