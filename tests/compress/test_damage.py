"""When quantization wrecks a model: a layer keeping under half its non-zero weights, or a
network weight SQNR under 8 dB."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from squeezenet.compress.damage import MIN_KEPT, assess, weights_before
from squeezenet.models import create_model


def _two_layers() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Conv2d(8, 10, 1))


def test_an_unchanged_model_is_whole() -> None:
    model = _two_layers()
    damage = assess(weights_before(model), model)
    assert damage.network_sqnr_db == math.inf and damage.wreck is None
    assert damage.to_dict() == {"network_sqnr_db": None, "min_kept": 1.0, "wrecked": []}


def test_a_layer_that_keeps_under_half_its_weights_is_named() -> None:
    model = _two_layers()
    before = weights_before(model)
    with torch.no_grad():
        w = model[2].weight
        w[w.abs() < w.abs().flatten().quantile(0.6)] = 0  # the smallest 60 % go
    damage = assess(before, model)
    assert damage.layers[1].kept == pytest.approx(0.4, abs=0.02)
    assert damage.layers[1].kept < MIN_KEPT
    assert damage.wreck == "layer 2 keeps 40 % of its non-zero weights"


def test_noise_summed_over_layers_wrecks_where_no_single_layer_does() -> None:
    """Two layers at 11.1 dB each sum to 8.1 dB (whole); more noise in one: under 8 dB."""
    model = _two_layers()
    before = weights_before(model)
    noises = [torch.randn_like(model[i].weight) for i in (0, 2)]
    with torch.no_grad():
        for i, noise in zip((0, 2), noises, strict=True):
            noise *= model[i].weight.norm() / noise.norm() * 10 ** (-11.1 / 20)
            model[i].weight += noise
    damage = assess(before, model)
    assert [layer.sqnr_db for layer in damage.layers] == pytest.approx([11.1, 11.1])
    assert damage.network_sqnr_db == pytest.approx(11.1 - 10 * math.log10(2))
    assert damage.wreck is None
    with torch.no_grad():
        model[0].weight += noises[0] * 0.2
    reason = assess(before, model).wreck
    assert reason is not None
    assert reason.startswith("its weights' SQNR over all layers is 7.") and "under 8 dB" in reason
    assert reason.endswith("worst layer 0 at 9.5 dB")


def test_table1_names_and_tiny_shares() -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10)
    before = weights_before(model)
    with torch.no_grad():
        w = model.classifier[1].weight
        keep = w.abs() == w.abs().max()
        w[~keep] = 0
    reason = assess(before, model).wreck
    assert reason is not None and reason.startswith("layer conv10 keeps 0.")
    assert "% of its non-zero weights" in reason
