"""The paired comparison: standard error against a hand count, agreement, KL of identical models."""

from __future__ import annotations

import math

import pytest
import torch

from squeezenet.arch.preprocess import CIFAR10
from squeezenet.data.datasets import synthetic
from squeezenet.models import create_model
from squeezenet.train.compare import compare, compare_logits, paired_se


def _onehot(classes: list[int], width: int = 4) -> torch.Tensor:
    logits = torch.zeros(len(classes), width)
    logits[torch.arange(len(classes)), torch.tensor(classes)] = 5.0
    return logits


def test_paired_se_by_hand() -> None:
    # 10 images: candidate alone right on 3, teacher alone right on 1, the rest tie.
    # d = [1, 1, 1, -1, 0 x 6]: mean 0.2, sum of squared deviations 3*0.64 + 1.44 + 6*0.04 = 3.6
    assert paired_se(3, 1, 10) == pytest.approx(math.sqrt(3.6 / 9 / 10))
    assert paired_se(0, 0, 10) == 0.0
    assert paired_se(1, 0, 1) == 0.0


def test_compare_logits_counts() -> None:
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    teacher = _onehot([0, 1, 2, 0, 1, 1])  # right on images 0, 1, 2, 5
    cand = _onehot([0, 1, 3, 3, 1, 2])  # right on images 0, 1, 3
    result = compare_logits(cand, teacher, labels)
    assert result.n == 6
    assert result.top1 == pytest.approx(3 / 6)
    assert result.teacher_top1 == pytest.approx(4 / 6)
    assert result.top1_diff == pytest.approx(-1 / 6)
    assert (result.only_candidate, result.only_teacher) == (1, 2)
    assert result.top1_diff_se == pytest.approx(paired_se(1, 2, 6))
    assert result.agreement == pytest.approx(3 / 6)  # images 0, 1, 4
    assert result.kl > 0


def test_identical_models_agree_with_zero_kl() -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10).eval()
    data = synthetic(24, num_classes=10, seed=1)
    result = compare(model, model, data, CIFAR10, batch_size=8)
    assert result.n == 24
    assert result.agreement == 1.0 and result.top5_agreement == 1.0
    assert result.kl == pytest.approx(0.0, abs=1e-12)
    assert result.top1_diff == 0.0 and result.top1_diff_se == 0.0
    assert result.top1 == result.teacher_top1


def test_a_changed_model_differs() -> None:
    teacher = create_model("squeezenet_small", seed=0, num_classes=10).eval()
    cand = create_model("squeezenet_small", seed=1, num_classes=10).eval()
    result = compare(cand, teacher, synthetic(32, num_classes=10, seed=1), CIFAR10, batch_size=16)
    assert result.kl > 0
    assert 0.0 <= result.agreement < 1.0
