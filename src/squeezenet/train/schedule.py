"""Learning-rate schedules with linear warm-up: poly (Caffe), cosine, step, constant."""

from __future__ import annotations

import math

from squeezenet.train.config import TrainConfig


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """LR for optimiser step ``step`` (0-based) of ``total_steps``.

    Warm-up rises linearly from ``warmup_start * lr`` to ``lr`` over ``warmup_epochs``; then
    poly: ``lr * (1 - t/T) ** power`` (Caffe's "poly"), cosine: ``lr * (1 + cos(pi t/T)) / 2``,
    step: ``lr * gamma ** floor(epoch / step_epochs)``, where t counts steps after warm-up.
    """
    warmup = min(round(config.warmup_epochs * steps_per_epoch), max(total_steps - 1, 0))
    if step < warmup:
        start = config.warmup_start
        return config.lr * (start + (1.0 - start) * step / warmup)
    t, span = step - warmup, max(total_steps - warmup, 1)
    if config.schedule == "poly":
        return float(config.lr * max(1.0 - t / span, 0.0) ** config.poly_power)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(t / span, 1.0)))
    if config.schedule == "step":
        return config.lr * config.step_gamma ** (
            step // max(steps_per_epoch, 1) // config.step_epochs
        )
    return config.lr
