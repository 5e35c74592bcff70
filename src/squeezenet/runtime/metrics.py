"""Accuracy of one model and the paired comparison of two on the same images, from logits as
numpy arrays (the torch layers hand theirs over as arrays too).

Two models evaluated on the same ``n`` images are not independent samples, so the standard
error of their top-1 difference comes from the images only one of them gets right (McNemar's
discordant pairs): with ``d_i = right_candidate_i - right_teacher_i`` in {-1, 0, 1}, the
difference is ``mean(d)`` and its standard error ``std(d, ddof=1) / sqrt(n)``. Top-1
agreement (same predicted class) and the mean KL(teacher || candidate) measure how closely the
candidate follows the teacher, with far less noise than either top-1 alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EvalResult:
    """Accuracy over ``n`` images; top1/top5 are fractions in 0..1."""

    loss: float
    top1: float
    top5: float
    n: int
    skipped: int = 0  # unreadable images skipped (with skip_bad)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "n": self.n,
            "loss": self.loss,
            "skipped": self.skipped,
        }


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


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest logits of each row, largest first (ties: lower index)."""
    k = min(k, logits.shape[1])
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = logits.astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    result: np.ndarray = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return result


class AccuracyTally:
    """Running top-1 / top-5 / cross-entropy over batches of (logits, labels)."""

    def __init__(self) -> None:
        self.n = self.top1 = self.top5 = 0
        self.loss = 0.0

    def add(self, logits: np.ndarray, labels: np.ndarray) -> None:
        top = top_k(logits, 5)
        self.n += len(labels)
        self.top1 += int((top[:, 0] == labels).sum())
        self.top5 += int((top == labels[:, None]).any(axis=1).sum())
        self.loss -= float(log_softmax(logits)[np.arange(len(labels)), labels].sum())

    def result(self, skipped: int = 0) -> EvalResult:
        n = max(self.n, 1)
        return EvalResult(self.loss / n, self.top1 / n, self.top5 / n, self.n, skipped)


class PairTally:
    """Running counts over batches of (candidate logits, teacher logits, labels)."""

    def __init__(self) -> None:
        self.n = self.c1 = self.c5 = self.t1 = self.t5 = 0
        self.only_c = self.only_t = self.agree = self.agree5 = 0
        self.kl = 0.0

    def add(self, candidate: np.ndarray, teacher: np.ndarray, labels: np.ndarray) -> None:
        ctop, ttop = top_k(candidate, 5), top_k(teacher, 5)
        c_right, t_right = ctop[:, 0] == labels, ttop[:, 0] == labels
        self.n += len(labels)
        self.c1 += int(c_right.sum())
        self.t1 += int(t_right.sum())
        self.c5 += int((ctop == labels[:, None]).any(axis=1).sum())
        self.t5 += int((ttop == labels[:, None]).any(axis=1).sum())
        self.only_c += int((c_right & ~t_right).sum())
        self.only_t += int((t_right & ~c_right).sum())
        self.agree += int((ctop[:, 0] == ttop[:, 0]).sum())
        self.agree5 += int((ttop == ctop[:, :1]).any(axis=1).sum())
        log_p, log_q = log_softmax(teacher), log_softmax(candidate)
        self.kl += float((np.exp(log_p) * (log_p - log_q)).sum())

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
