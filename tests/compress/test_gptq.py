"""GPTQ rounding onto per-channel integer grids."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from squeezenet.deploy.gptq import GptqConfig, _gptq_levels, gptq_, input_covariances
from squeezenet.models import create_model


def _correlated(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix


def test_with_uncorrelated_inputs_gptq_is_nearest_rounding() -> None:
    w = torch.randn(6, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    step = w.abs().amax(1) / 7
    h = torch.diag(torch.rand(20, dtype=torch.float64) + 0.5)
    levels = _gptq_levels(w, h, step, GptqConfig(qmax=7, damp=1e-9))
    assert torch.equal(levels, (w / step[:, None]).round().clamp(-7, 7))


def test_levels_are_integers_on_the_grid_and_beat_nearest_on_correlated_inputs() -> None:
    layer = nn.Linear(24, 8)
    x = _correlated(4000, 24).float()
    w0 = layer.weight.detach().clone()
    cov = input_covariances(layer, [x])
    rows = gptq_(layer, {"": cov[""]}, GptqConfig(qmax=7))
    (row,) = rows
    levels = layer.weight.detach() / row.step[:, None]
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert levels.round().abs().max() <= 7
    assert torch.equal(row.step, (w0.abs().amax(1) / 7))
    assert row.error < 0.8 * row.nearest_error  # 3-bit grid, correlated inputs: 0.62 here
    with torch.no_grad():
        out_err = (layer(x) - nn.functional.linear(x, w0, layer.bias)).square().mean()
        nearest = (w0 / row.step[:, None]).round().clamp(-7, 7) * row.step[:, None]
        near_err = (nn.functional.linear(x, nearest) - nn.functional.linear(x, w0)).square().mean()
    assert out_err < near_err


def test_conv_covariance_is_the_im2col_second_moment() -> None:
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 5, 5)
    cov = input_covariances(conv, [x])[""]
    patches = nn.functional.unfold(x, 3, padding=1).transpose(1, 2).reshape(-1, 27).double()
    assert cov.shape == (27, 27)
    assert torch.allclose(cov, patches.T @ patches / len(patches))


def test_a_whole_model_keeps_its_function_closely_at_8_bits() -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    x = torch.randn(16, 3, 32, 32)
    student = copy.deepcopy(model)
    rows = gptq_(student, input_covariances(model, [x]))
    assert len(rows) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert all(r.error <= r.nearest_error * 1.01 for r in rows)
    with torch.no_grad():
        assert torch.allclose(student(x), model(x), rtol=0.05, atol=0.05 * model(x).abs().max())


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="qmax"):
        GptqConfig(qmax=0)
    with pytest.raises(ValueError, match="damp"):
        GptqConfig(damp=0)
