"""Paired comparison of two models on the same images: the numbers a compression result needs
(the arithmetic, and why the standard error is paired: :mod:`squeezenet.runtime.metrics`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from squeezenet.arch.preprocess import Preprocess
from squeezenet.runtime.metrics import Comparison, PairTally, paired_se
from squeezenet.train.evaluate import eval_batches

__all__ = ["Comparison", "compare", "compare_logits", "paired_se"]


def _array(t: torch.Tensor) -> np.ndarray:
    """Logits or labels as a numpy array (logits as float32)."""
    t = t.detach().cpu()
    return (t.float() if t.is_floating_point() else t).numpy()


def compare_logits(
    candidate: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor
) -> Comparison:
    """The comparison of two ``(n, classes)`` logit tensors against ``(n,)`` labels."""
    tally = PairTally()
    tally.add(_array(candidate), _array(teacher), _array(labels))
    return tally.result()


@torch.no_grad()
def compare(
    candidate: nn.Module,
    teacher: nn.Module,
    data: Dataset[tuple[object, int]],
    preprocess: Preprocess,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    skip_bad: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> Comparison:
    """Evaluate both models on the same batches of ``data`` and compare them.

    Both models see exactly the same inputs (``preprocess``: the teacher's, which a compressed
    candidate shares). The models are left in the train / eval mode they were in.
    """
    modes = candidate.training, teacher.training
    candidate.eval()
    teacher.eval()
    tally = PairTally()
    try:
        for x, y in eval_batches(data, preprocess, batch_size, device=device, skip_bad=skip_bad):
            x = x.contiguous(memory_format=torch.channels_last)
            tally.add(_array(candidate(x)), _array(teacher(x)), _array(y))
            if on_batch is not None:
                on_batch(len(y))
    finally:
        candidate.train(modes[0])
        teacher.train(modes[1])
    return tally.result()
