"""The output Fisher (weighting.output_fisher): what a row's error costs in the prediction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from squeezenet.compress.weighting import FisherConfig, output_fisher
from squeezenet.errors import ConfigError


class _Fixed:
    """A stand-in for ProxySampler: the same images every call."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def batches(self, images: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        for i in range(0, min(images, len(self.images)), batch_size):
            yield self.images[i : i + batch_size].clone()


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 5),
    )  # fmt: skip
    with torch.no_grad():
        model[0].bias[0] = -100.0  # channel 0 never passes its ReLU
        model[4].weight.mul_(8.0)  # confident enough that p(1 - p) varies by class
    return model


def test_the_classifier_fisher_is_p_times_one_minus_p() -> None:
    """For the logits, E_y[(p_c - [y = c])^2] with y drawn from p is p_c (1 - p_c)."""
    model = _model().train()
    images = torch.randn(16, 3, 6, 6)
    sampler: Any = _Fixed(images)
    found = output_fisher(model, sampler, FisherConfig(images=16, batch_size=8, labels=600))
    assert all(p.grad is None for p in model.parameters()) and model.training  # as it was
    with torch.no_grad():
        p = torch.softmax(model.eval()(images).double(), dim=1)
    expected = (p * (1 - p)).mean(0).numpy()
    np.testing.assert_allclose(found["4"], expected, rtol=0.1)
    # the conv's output before its in-place ReLU: a channel that never passes it costs nothing
    assert found["0"].shape == (4,) and found["0"][0] == 0.0 and (found["0"][1:] > 0).all()


def test_a_fisher_config_without_images_is_refused() -> None:
    with pytest.raises(ConfigError, match="FisherConfig"):
        FisherConfig(labels=0)
