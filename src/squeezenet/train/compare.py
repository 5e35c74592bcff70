"""Paired comparison of two models on the same images: the numbers a compression result needs.

Two models evaluated on the same ``n`` images are not independent samples, so the standard
error of their top-1 difference comes from the images only one of them gets right (McNemar's
discordant pairs): with ``d_i = right_candidate_i - right_teacher_i`` in {-1, 0, 1}, the
difference is ``mean(d)`` and its standard error ``std(d, ddof=1) / sqrt(n)``. Top-1
agreement (same predicted class) and the mean KL(teacher || candidate) measure how closely the
candidate follows the teacher, with far less noise than either top-1 alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from squeezenet.arch.preprocess import Preprocess
from squeezenet.train.evaluate import eval_batches


@dataclass(frozen=True)
class Comparison:
    """A candidate model against a teacher on the same ``n`` images (fractions in 0..1)."""

    n: int
    top1: float  # the candidate's
    top5: float
    teacher_top1: float
    teacher_top5: float
    top1_diff: float  # candidate - teacher
    top1_diff_se: float  # paired standard error of top1_diff
    only_candidate: int  # images only the candidate gets right (top-1)
    only_teacher: int  # images only the teacher gets right
    agreement: float  # share of images with the same top-1 class
    top5_agreement: float  # share whose candidate top-1 is in the teacher's top 5
    kl: float  # mean KL(teacher || candidate) in nats, softmax at T = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_se(only_candidate: int, only_teacher: int, n: int) -> float:
    """Standard error of the top-1 difference from the discordant counts (0 when n < 2)."""
    if n < 2:
        return 0.0
    mean = (only_candidate - only_teacher) / n
    ss = only_candidate * (1 - mean) ** 2 + only_teacher * (1 + mean) ** 2
    ss += (n - only_candidate - only_teacher) * mean**2
    return math.sqrt(ss / (n - 1) / n)


class _Tally:
    """Running counts over batches of (candidate logits, teacher logits, labels)."""

    def __init__(self) -> None:
        self.n = self.c1 = self.c5 = self.t1 = self.t5 = 0
        self.only_c = self.only_t = self.agree = self.agree5 = 0
        self.kl = 0.0

    def add(self, cand: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor) -> None:
        k = min(5, cand.shape[1])
        ctop, ttop = cand.topk(k, dim=1).indices, teacher.topk(k, dim=1).indices
        c_right, t_right = ctop[:, 0] == y, ttop[:, 0] == y
        self.n += len(y)
        self.c1 += int(c_right.sum())
        self.t1 += int(t_right.sum())
        self.c5 += int((ctop == y[:, None]).any(1).sum())
        self.t5 += int((ttop == y[:, None]).any(1).sum())
        self.only_c += int((c_right & ~t_right).sum())
        self.only_t += int((t_right & ~c_right).sum())
        self.agree += int((ctop[:, 0] == ttop[:, 0]).sum())
        self.agree5 += int((ttop == ctop[:, :1]).any(1).sum())
        log_p, log_q = F.log_softmax(teacher.double(), 1), F.log_softmax(cand.double(), 1)
        self.kl += float((log_p.exp() * (log_p - log_q)).sum())

    def result(self) -> Comparison:
        n = max(self.n, 1)
        return Comparison(
            n=self.n,
            top1=self.c1 / n,
            top5=self.c5 / n,
            teacher_top1=self.t1 / n,
            teacher_top5=self.t5 / n,
            top1_diff=(self.c1 - self.t1) / n,
            top1_diff_se=paired_se(self.only_c, self.only_t, self.n),
            only_candidate=self.only_c,
            only_teacher=self.only_t,
            agreement=self.agree / n,
            top5_agreement=self.agree5 / n,
            kl=self.kl / n,
        )


def compare_logits(
    candidate: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor
) -> Comparison:
    """The comparison of two ``(n, classes)`` logit tensors against ``(n,)`` labels."""
    tally = _Tally()
    tally.add(candidate, teacher, labels)
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
    tally = _Tally()
    try:
        for x, y in eval_batches(data, preprocess, batch_size, device=device, skip_bad=skip_bad):
            x = x.contiguous(memory_format=torch.channels_last)
            tally.add(candidate(x), teacher(x), y)
            if on_batch is not None:
                on_batch(len(y))
    finally:
        candidate.train(modes[0])
        teacher.train(modes[1])
    return tally.result()
