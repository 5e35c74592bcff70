"""Grid layers fitted to the teacher (step + bias), and activation-aware trellis weighting."""

from __future__ import annotations

import copy
from typing import cast

import numpy as np
import pytest
import torch
from torch import nn

from squeezenet.compress.bias_correct import correct_bias_
from squeezenet.compress.distill import DistillConfig, distill_
from squeezenet.compress.finetune_common import proxy_kl
from squeezenet.compress.grid_fit import grid_of
from squeezenet.compress.plain_data import to_compressed
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.compress.reconstruct import ReconstructConfig, reconstruct_
from squeezenet.compress.trellis import TrellisLayer, trellis_many, trellis_quantize_
from squeezenet.compress.weight_sharing import quantize_, weight_share_of
from squeezenet.compress.weighting import ImportanceConfig, input_statistics, weight_importance
from squeezenet.data import CIFAR10, ArrayDataset, Preprocess, load_dataset, normalize_batch
from squeezenet.errors import ConfigError
from squeezenet.formats import encode_sqz
from squeezenet.formats.grid import GridCode
from squeezenet.models import SqueezeNet, create_model

TINY = {"base_e": 16, "incr_e": 16}
# The trellis takes one numpy step per index of its state period, whatever the layer's size:
# these tests fit grids, not periods, so their layers (at most a few thousand weights) take a
# period of 1,024 instead of the default 4,096.
PERIOD_LOG2 = 10
PRESET = Preprocess("custom", 0, 6, (120.0,) * 3, (60.0,) * 3, value_scale=255.0)


def _images(n: int) -> torch.Tensor:
    data = load_dataset("synthetic", synthetic_size=n)
    assert isinstance(data, ArrayDataset)
    return data.tensors()[0]


def _teacher() -> nn.Module:
    model = create_model("squeezenet_small", seed=0, **TINY).eval()
    with torch.no_grad():
        x = normalize_batch(_images(32), CIFAR10)
        cast(SqueezeNet, model).final_conv.weight.mul_(3.0 / model(x).std())
    return model


def _trellis_student(teacher: nn.Module, rate_lambda: float = 3e-4) -> nn.Module:
    student = create_model("squeezenet_small", **TINY)
    student.load_state_dict(teacher.state_dict())
    trellis_quantize_(student, rate_lambda, period_log2=PERIOD_LOG2)
    return student


def _grids(model: nn.Module) -> list[GridCode | None]:
    return [layer.grid for layer in to_compressed(model, model_name="squeezenet_small").layers]


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_step_and_bias_are_the_least_squares_solution(kind: str) -> None:
    """With ridge 0 the step scale and bias equal lstsq on the explicit design matrix, and the
    layer stays a grid with the new step."""
    torch.manual_seed(0)
    layers: list[nn.Module] = (
        [nn.Conv2d(3, 5, 3, stride=2, padding=1)]
        if kind == "conv"
        else [nn.Flatten(), nn.Linear(108, 7)]
    )
    teacher = nn.Sequential(*layers)
    student = nn.Sequential(*[copy.deepcopy(m) for m in layers])
    trellis_quantize_(student, 2e-3, period_log2=PERIOD_LOG2)
    module = student[-1]
    grid = grid_of(module)
    assert grid is not None
    images = torch.randint(0, 256, (40, 3, 6, 6), dtype=torch.uint8)
    config = ReconstructConfig(
        images=40, batch_size=16, ridge=0.0, train="step+bias",
        proxy=ProxyConfig(augment=False), monitor_images=0,
    )  # fmt: skip
    x = ProxySampler(images, PRESET, config.proxy).batch(40, torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = teacher(x).double()
        w0 = cast(torch.Tensor, module.weight).detach()
        outputs = w0.shape[0]
        if kind == "conv":
            y0 = nn.functional.conv2d(x, w0, None, 2, 1)
            ones = [
                torch.zeros_like(y0).index_fill_(1, torch.tensor([o]), 1.0) for o in range(outputs)
            ]
        else:
            y0 = nn.functional.linear(x.flatten(1), w0)
            ones = [
                torch.zeros_like(y0).index_fill_(1, torch.tensor([o]), 1.0) for o in range(outputs)
            ]
        design = torch.stack([y0.flatten(), *(z.flatten() for z in ones)], 1).double()
        expected = torch.linalg.lstsq(design, target.flatten()[:, None]).solution.flatten()
    reconstruct_(student, teacher, images, PRESET, config)
    after = grid_of(module)
    assert after is not None and np.array_equal(after.levels, grid.levels)
    weight = cast(torch.Tensor, module.weight).detach().numpy().reshape(-1)
    assert np.array_equal(weight.view(np.uint32), after.values().view(np.uint32))
    assert after.step == pytest.approx(grid.step * float(expected[0]), rel=1e-6)
    assert after.step == float(np.float32(after.step))
    assert torch.allclose(cast(torch.Tensor, module.bias).double(), expected[1:], atol=1e-5)


def test_grid_refit_keeps_every_grid_and_the_file_size() -> None:
    teacher = _teacher()
    student = _trellis_student(teacher)
    images = _images(96)
    before = _grids(student)
    size = len(
        encode_sqz(to_compressed(student, model_name="squeezenet_small"), bias_dtype="float16")
    )
    config = ReconstructConfig(images=64, batch_size=32, train="step+bias", monitor_images=64)
    report = reconstruct_(student, teacher, images, CIFAR10, config)
    after = _grids(student)
    assert all(g is not None for g in after)
    for old, new in zip(before, after, strict=True):
        assert old is not None and new is not None
        assert np.array_equal(old.levels, new.levels)
    assert any(old.step != new.step for old, new in zip(before, after, strict=True))  # type: ignore[union-attr]
    for row in report.layers:
        assert row.mse_after <= row.mse_before * (1 + 1e-9)
    assert report.kl_after < report.kl_before
    cm = to_compressed(student, model_name="squeezenet_small")
    assert len(encode_sqz(cm, bias_dtype="float16")) == size


def test_distillation_moves_steps_and_biases_only() -> None:
    teacher = _teacher()
    student = _trellis_student(teacher, 1e-3)
    images = _images(96)
    before = _grids(student)
    assignments = {
        name: weight_share_of(m).assignment.clone()  # type: ignore[union-attr]
        for name, m in student.named_modules() if weight_share_of(m) is not None
    }  # fmt: skip
    sampler = ProxySampler(images, CIFAR10, ProxyConfig())
    kl_before = proxy_kl(student, teacher, sampler, 64, 5)
    config = DistillConfig(images=256, batch_size=16, lr=3e-3, train="step+bias", monitor_images=0)
    report = distill_(student, teacher, images, CIFAR10, config)
    assert report.trained_values == len(before) + sum(
        cast(torch.Tensor, m.bias).numel() for _, m in student.named_modules()
        if weight_share_of(m) is not None
    )  # fmt: skip
    after = _grids(student)
    assert all(g is not None for g in after)
    assert any(o.step != n.step for o, n in zip(before, after, strict=True))  # type: ignore[union-attr]
    for name, m in student.named_modules():
        share = weight_share_of(m)
        if share is not None:
            assert torch.equal(share.assignment, assignments[name])
    assert proxy_kl(student, teacher, sampler, 64, 5) < kl_before


def test_step_and_bias_need_grid_layers() -> None:
    teacher = _teacher()
    student = create_model("squeezenet_small", **TINY)
    student.load_state_dict(teacher.state_dict())
    quantize_(student, 3)
    images = _images(32)
    with pytest.raises(ValueError, match="not a grid layer"):
        reconstruct_(
            student, teacher, images, CIFAR10, ReconstructConfig(images=16, train="step+bias")
        )
    with pytest.raises(ConfigError, match="on a grid"):
        distill_(student, teacher, images, CIFAR10, DistillConfig(images=16, train="step+bias"))


def test_weight_importance_is_the_rms_input_per_channel() -> None:
    """A linear layer fed fixed inputs: importance of w[o, i] is rms(x_i), mean 1 over the stored
    weights; a pruned weight keeps its value but does not count in the mean."""
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight[0, 0] = 0.0
    model = nn.Sequential(nn.Flatten(), layer)
    images = torch.randint(0, 256, (20, 1, 2, 2), dtype=torch.uint8)
    preset = Preprocess("custom", 0, 2, (100.0,), (50.0,), value_scale=255.0, channels=1)
    proxy = ProxyConfig(augment=False)
    h = weight_importance(model, ProxySampler(images, preset, proxy), ImportanceConfig(images=20))
    x = torch.cat(list(ProxySampler(images, preset, proxy).batches(20, 64, 0))).flatten(1).double()
    rms = x.square().mean(0).sqrt().numpy()
    expected = np.broadcast_to(rms, (3, 4)).copy()
    stored = layer.weight.detach().numpy() != 0
    expected /= expected[stored].mean()
    assert set(h) == {"1"}
    np.testing.assert_allclose(h["1"], expected, rtol=1e-6)


def test_trellis_importance_moves_error_to_unimportant_weights() -> None:
    rng = np.random.default_rng(3)
    w = rng.laplace(scale=0.05, size=(8, 512))
    step, lam = 0.01, 0.3 * 0.01**2
    # one state period per row of w (512, not the default 4,096): the search takes one numpy
    # step per index of a period, and the weighting's effect is the same (0.99 and 1.29 below)
    period = 9
    plain = trellis_many([TrellisLayer(w, step, lam)], period_log2=period)[0]
    ones = trellis_many([TrellisLayer(w, step, lam, np.ones_like(w))], period_log2=period)[0]
    assert np.array_equal(plain.levels, ones.levels)
    h = np.ones_like(w)
    h[:4] = 1.8
    h[4:] = 0.2  # mean 1
    weighted = trellis_many([TrellisLayer(w, step, lam, h)], period_log2=period)[0]
    err_plain = np.square(plain.values().reshape(w.shape) - w)
    err_weighted = np.square(weighted.values().reshape(w.shape) - w)
    # The step is the layer's; importance moves the rate-distortion decisions (which weights
    # drop to zero, which neighbouring level): error leaves the important rows.
    assert err_weighted[:4].sum() < err_plain[:4].sum()
    assert err_weighted[4:].sum() > 1.2 * err_plain[4:].sum()

    def cost(code: GridCode, err: np.ndarray) -> float:  # weighted D + lambda R, order-0 rate
        counts = np.unique(code.levels, return_counts=True)[1].astype(float)
        bits = float(-(counts * np.log2(counts / counts.sum())).sum())
        return float((h * err).sum()) + lam * bits

    assert cost(weighted, err_weighted) < cost(plain, err_plain)


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_bias_correction_removes_the_mean_output_error(kind: str) -> None:
    """After the correction the student's mean output over the proxies equals the teacher's
    (exactly for a linear layer; for a padded conv up to its border positions)."""
    torch.manual_seed(1)
    layer: nn.Module = nn.Conv2d(3, 4, 1) if kind == "conv" else nn.Linear(108, 5)
    teacher = (
        nn.Sequential(nn.Identity(), layer)
        if kind == "conv"
        else nn.Sequential(nn.Flatten(), layer)
    )
    student = copy.deepcopy(teacher)
    quantize_(student, 2)
    images = torch.randint(0, 256, (48, 3, 6, 6), dtype=torch.uint8)
    sampler = ProxySampler(images, PRESET, ProxyConfig(augment=False))
    stats = input_statistics(teacher, sampler, ImportanceConfig(images=48))
    x = torch.cat(list(sampler.batches(48, 64, 0)))
    with torch.no_grad():
        dims = (0, 2, 3) if kind == "conv" else (0,)
        gap_before = (student(x) - teacher(x)).double().mean(dims).abs().max()
        rows = correct_bias_(student, teacher, stats.mean)
        gap_after = (student(x) - teacher(x)).double().mean(dims).abs().max()
    assert [r.name for r in rows] == ["1"]
    assert gap_before > 1e-2
    assert gap_after < 1e-5 * max(1.0, float(gap_before))
