"""Tests for squeezenet.compress.distill: codebook distillation and layer-wise reconstruction."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, cast

import pytest
import torch
from torch import nn

from squeezenet.compress import PrunePolicy, centroid_parameters, prune_, quantize_
from squeezenet.compress.distill import DistillConfig, DistillProgress, distill_, distiller
from squeezenet.compress.finetune_common import shared_layers
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler, dead_leaves
from squeezenet.compress.reconstruct import ReconstructConfig, reconstruct_
from squeezenet.data import CIFAR10, ArrayDataset, Preprocess, load_dataset, normalize_batch
from squeezenet.errors import ConfigError, InputError, UserError
from squeezenet.models import SqueezeNet, create_model

TINY = {"base_e": 16, "incr_e": 16}


@pytest.fixture(scope="module")
def proxies() -> torch.Tensor:
    """uint8 (N, 3, 32, 32) synthetic images: unlabeled proxies."""
    return _synthetic(96)


def _synthetic(n: int) -> torch.Tensor:
    data = load_dataset("synthetic", synthetic_size=n)
    assert isinstance(data, ArrayDataset)
    return data.tensors()[0]


def _teacher() -> nn.Module:
    """A tiny SqueezeNet whose class scores spread over a few units (random init gives ~1e-4)."""
    model = create_model("squeezenet_small", seed=0, **TINY).eval()
    x = normalize_batch(_synthetic(32), CIFAR10)
    with torch.no_grad():
        cast(SqueezeNet, model).final_conv.weight.mul_(3.0 / model(x).std())
    return model


def _student(teacher: nn.Module, bits: int = 3, *, prune: bool = False) -> nn.Module:
    """Rebuilt from the teacher's state dict (never a deep copy of a parametrized model)."""
    student = create_model("squeezenet_small", **TINY)
    student.load_state_dict(teacher.state_dict())
    if prune:
        prune_(student, PrunePolicy.uniform(0.5))
    quantize_(student, bits)
    return student


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _kd(**changes: Any) -> DistillConfig:
    base = DistillConfig(images=64, batch_size=16, monitor_images=0, log_every=2)
    return dataclasses.replace(base, **changes)


def _recon(**changes: Any) -> ReconstructConfig:
    return dataclasses.replace(
        ReconstructConfig(images=32, batch_size=16, monitor_images=0), **changes
    )


def test_distill_moves_centroids_only(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    student = _student(teacher, prune=True)
    before = _snapshot(student)
    pruned = {n: s.mask.logical_not() for n, _, s in shared_layers(student)}
    student.train()
    report = distill_(student, teacher, proxies, CIFAR10, _kd(lr=1e-2))
    after = _snapshot(student)
    for key, value in before.items():
        if key.endswith("parametrizations.weight.original"):
            assert not torch.equal(value, after[key]), f"{key} did not move"
        else:  # assignments, biases, batch-norm parameters and statistics
            assert torch.equal(value, after[key]), f"{key} changed"
    for name, module, _ in shared_layers(student):
        assert (cast(torch.Tensor, module.weight)[pruned[name]] == 0).all()
        assert pruned[name].any()
    assert student.training  # mode restored
    assert all(p.requires_grad for p in student.parameters())  # flags restored
    assert report.steps == 4 and report.images == 64
    assert report.trained_values == sum(p.numel() for p in centroid_parameters(student).values())
    assert report.centroid_change > 0


def test_distill_trains_biases_when_asked(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    student = _student(teacher)
    before = _snapshot(student)
    distill_(student, teacher, proxies, CIFAR10, _kd(train="centroids+bias"))
    after = _snapshot(student)
    for name, _, _ in shared_layers(student):
        assert not torch.equal(before[f"{name}.bias"], after[f"{name}.bias"])
        assert torch.equal(
            before[f"{name}.parametrizations.weight.0.assignment"],
            after[f"{name}.parametrizations.weight.0.assignment"],
        )


def test_teacher_untouched(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    teacher.train()
    state = _snapshot(teacher)
    student = _student(teacher)
    distill_(student, teacher, proxies, CIFAR10, _kd())
    reconstruct_(student, teacher, proxies, CIFAR10, _recon())
    assert teacher.training
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_kl_to_teacher_decreases(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    student = _student(teacher, bits=2)
    seen: list[DistillProgress] = []
    config = _kd(images=320, lr=1e-2, monitor_images=64)
    report = distill_(student, teacher, proxies, CIFAR10, config, callback=seen.append)
    assert report.kl_before > 1e-3
    assert report.kl_after < 0.7 * report.kl_before
    assert [p.step for p in seen] == list(range(2, 21, 2))
    assert [row[0] for row in report.history] == [p.step for p in seen]
    assert report.history[-1][1] < report.history[0][1]


def test_distill_is_deterministic(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    a, b = _student(teacher), _student(teacher)
    distill_(a, teacher, proxies, CIFAR10, _kd(proxy=ProxyConfig(mix="cutmix")))
    distill_(b, teacher, proxies, CIFAR10, _kd(proxy=ProxyConfig(mix="cutmix")))
    for key, value in _snapshot(a).items():
        assert torch.equal(value, b.state_dict()[key]), key


def _layer_errors(
    student: nn.Module, teacher: nn.Module, name: str, sampler: ProxySampler, config: Any
) -> float:
    """Direct squared error of the first layer's output over the reconstruction images."""
    s_layer, t_layer = student.get_submodule(name), teacher.get_submodule(name)
    with torch.no_grad():
        return sum(
            float((s_layer(x) - t_layer(x)).double().square().sum())
            for x in sampler.batches(config.images, config.batch_size, config.seed)
        )


def test_reconstruct_reduces_layer_output_error(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    student = _student(teacher, bits=2, prune=True)
    before = _snapshot(student)
    config = _recon(monitor_images=64)
    sampler = ProxySampler(proxies, CIFAR10, config.proxy)
    first = shared_layers(student)[0][0]
    direct_before = _layer_errors(student, teacher, first, sampler, config)
    report = reconstruct_(student, teacher, proxies, CIFAR10, config)
    direct_after = _layer_errors(student, teacher, first, sampler, config)
    assert [row.name for row in report.layers] == [n for n, _, _ in shared_layers(student)]
    for row in report.layers:
        assert row.mse_after <= row.mse_before
    assert sum(r.relative_after for r in report.layers) < 0.9 * sum(
        r.relative_before for r in report.layers
    )
    # The closed form's error (from second moments) is the error a forward pass measures.
    row = report.layers[0]
    assert direct_after < direct_before
    assert direct_after / direct_before == pytest.approx(row.mse_after / row.mse_before, rel=1e-4)
    assert report.kl_after < report.kl_before
    after = _snapshot(student)
    for key, value in before.items():
        if "assignment" in key:
            assert torch.equal(value, after[key])
    for _, module, share in shared_layers(student):
        assert (cast(torch.Tensor, module.weight)[~share.mask] == 0).all()


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_reconstruct_is_the_least_squares_solution(kind: str) -> None:
    """With ridge 0 the centroids and bias equal lstsq on the explicit design matrix."""
    torch.manual_seed(0)
    layers: list[nn.Module] = (
        [nn.Conv2d(3, 5, 3, stride=2, padding=1)]
        if kind == "conv"
        else [nn.Flatten(), nn.Linear(3 * 6 * 6, 7)]
    )
    teacher = nn.Sequential(*layers)
    student = nn.Sequential(*[copy.deepcopy(m) for m in layers])  # plain modules: safe to copy
    quantize_(student, 2)
    preset = Preprocess("custom", 0, 6, (120.0,) * 3, (60.0,) * 3, value_scale=255.0)
    images = torch.randint(0, 256, (40, 3, 6, 6), dtype=torch.uint8)
    config = ReconstructConfig(
        images=40, batch_size=16, ridge=0.0, proxy=ProxyConfig(augment=False), monitor_images=0
    )
    name, module, share = shared_layers(student)[0]
    assignment = cast(torch.Tensor, share.assignment)
    outputs = assignment.shape[0]
    x = ProxySampler(images, preset, config.proxy).batch(40, torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = teacher(x).double().flatten()
        zero = torch.zeros(assignment.shape)
        columns = [  # d output / d centroid k, then d output / d bias o
            _apply(module, (assignment == k).float(), torch.zeros(outputs), x)
            for k in range(share.num_centroids)
        ] + [_apply(module, zero, torch.eye(outputs)[o], x) for o in range(outputs)]
        design = torch.stack(columns, 1).double()
        expected = torch.linalg.lstsq(design, target[:, None]).solution.flatten()
    start = centroid_parameters(student)[name].detach().clone().double()
    reconstruct_(student, teacher, images, preset, config)
    assert not torch.allclose(start, expected[: len(start)], rtol=1e-2)  # k-means is not it
    bias = cast(torch.Tensor, module.bias)
    got = torch.cat([centroid_parameters(student)[name].detach(), bias.detach()]).double()
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def _apply(
    module: nn.Module, weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """The layer's output on ``x`` with its weight and bias replaced, flattened."""
    if isinstance(module, nn.Conv2d):
        return nn.functional.conv2d(x, weight, bias, module.stride, module.padding).flatten()
    return nn.functional.linear(x.flatten(1), weight, bias).flatten()


def test_sampler_shapes_determinism_and_plain_path(proxies: torch.Tensor) -> None:
    for mix in ("none", "mixup", "cutmix", "mosaic"):
        sampler = ProxySampler(proxies, CIFAR10, ProxyConfig(mix=mix, mix_prob=1.0))
        a = sampler.batch(5, torch.Generator().manual_seed(3))
        b = sampler.batch(5, torch.Generator().manual_seed(3))
        assert a.shape == (5, 3, 32, 32) and a.dtype == torch.float32
        assert torch.equal(a, b) and torch.isfinite(a).all()
    big = dataclasses.replace(CIFAR10, crop=227)
    assert ProxySampler(proxies, big, ProxyConfig()).batch(2, torch.Generator()).shape[-1] == 227
    plain = ProxySampler(proxies, CIFAR10, ProxyConfig(augment=False))
    batch = plain.batch(4, torch.Generator().manual_seed(0))
    index = torch.randint(len(proxies), (4,), generator=torch.Generator().manual_seed(0))
    expected = normalize_batch(proxies[index], CIFAR10)
    assert torch.allclose(batch, expected, atol=1e-5)  # same size, no augmentation: identity


def test_dead_leaves_paint_discs_in_the_proxy_colours(proxies: torch.Tensor) -> None:
    x = dead_leaves(proxies, 3, 64, torch.Generator().manual_seed(1))
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x, dead_leaves(proxies, 3, 64, torch.Generator().manual_seed(1)))
    palette = {tuple(c) for c in proxies.permute(0, 2, 3, 1).reshape(-1, 3).tolist()}
    colours = {tuple(c) for c in x.permute(0, 2, 3, 1).reshape(-1, 3).int().tolist()}
    assert colours <= palette  # every pixel is a proxy pixel's colour
    assert all(len(set(map(tuple, image.reshape(3, -1).T.tolist()))) > 10 for image in x)
    # flat discs: most neighbouring pixels are equal, unlike noise
    assert float((x[..., 1:] == x[..., :-1]).float().mean()) > 0.5


def test_sampler_replaces_the_leaves_fraction(proxies: torch.Tensor) -> None:
    preset = dataclasses.replace(CIFAR10, crop=48)
    plain = ProxySampler(proxies, preset, ProxyConfig(mix="mosaic"))
    some = ProxySampler(proxies, preset, ProxyConfig(mix="mosaic", leaves=0.5))
    every = ProxySampler(proxies, preset, ProxyConfig(leaves=1.0))
    a, b = (s.batch(64, torch.Generator().manual_seed(0)) for s in (plain, some))
    same = (a == b).flatten(1).all(1)
    assert 10 < int(same.sum()) < 54  # about half replaced, the rest as without leaves
    flat = every.batch(8, torch.Generator().manual_seed(0))
    assert float((flat[..., 1:] == flat[..., :-1]).float().mean()) > 0.5


def test_mosaic_tiles_are_views_of_k_by_k_images(proxies: torch.Tensor) -> None:
    preset = dataclasses.replace(CIFAR10, crop=48)
    two = ProxySampler(proxies, preset, ProxyConfig(mix="mosaic", mix_prob=1.0))
    also_two = ProxySampler(proxies, preset, ProxyConfig(mix="mosaic", mix_prob=1.0, tiles=(2,)))
    a, b = (s.batch(3, torch.Generator().manual_seed(5)) for s in (two, also_two))
    assert torch.equal(a, b)  # the default is the 2x2 mosaic, drawn as before
    plain = dataclasses.replace(ProxyConfig(), augment=False)
    four = ProxySampler(proxies, preset, dataclasses.replace(plain, mix="mosaic", tiles=(4,)))
    grid = four._grid(2, 4, torch.Generator().manual_seed(1))  # 4 x 4 tiles of 12 px
    assert grid.shape == (2, 3, 48, 48)
    # without augmentation each tile is a whole proxy image, downscaled to 12 px
    small = nn.functional.interpolate(proxies.float(), size=12, mode="bilinear", antialias=False)
    tiles = (
        grid.unfold(2, 12, 12).unfold(3, 12, 12).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, 12, 12)
    )
    distance = (tiles[:, None] - small[None]).abs().flatten(2).amax(2)  # (tiles, proxies)
    assert bool((distance.amin(1) < 1.0).all())
    mixed = ProxySampler(proxies, preset, ProxyConfig(mix="mosaic", mix_prob=1.0, tiles=(1, 4)))
    x = mixed.batch(32, torch.Generator().manual_seed(2))
    seam = (x[..., 11] - x[..., 12]).abs().flatten(1).mean(1)  # across a 4x4 tile seam
    inside = (x[..., 10] - x[..., 11]).abs().flatten(1).mean(1)  # one pixel before it
    assert 4 <= int((seam > 2 * inside).sum()) <= 28  # about half are 4x4 mosaics
    assert x.shape == (32, 3, 48, 48) and bool(torch.isfinite(x).all())


@pytest.mark.parametrize(
    ("factory", "changes", "field"),
    [
        (DistillConfig, {"images": 0}, "images"),
        (DistillConfig, {"lr": -1.0}, "lr"),
        (DistillConfig, {"temperature": 0.0}, "temperature"),
        (DistillConfig, {"train": "all"}, "train"),
        (DistillConfig, {"optimizer": "lbfgs"}, "optimizer"),
        (ReconstructConfig, {"ridge": -1.0}, "ridge"),
        (ReconstructConfig, {"batch_size": 0}, "batch_size"),
        (ProxyConfig, {"mix": "blend"}, "mix"),
        (ProxyConfig, {"min_scale": 0.0}, "min_scale"),
        (ProxyConfig, {"leaves": 1.5}, "leaves"),
        (ProxyConfig, {"tiles": ()}, "tiles"),
        (ProxyConfig, {"tiles": (2, 0)}, "tiles"),
    ],
)
def test_configs_name_the_bad_field(factory: Any, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"{factory.__name__}\.{field}: expected"):
        factory(**changes)


def test_errors_a_user_can_cause(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    plain = create_model("squeezenet_small", **TINY)
    with pytest.raises(ConfigError, match="quantize_"):
        distill_(plain, teacher, proxies, CIFAR10, _kd())
    other = create_model("squeezenet_small", base_e=32, incr_e=16)
    with pytest.raises(ValueError, match="uncompressed model"):
        reconstruct_(_student(teacher), other, proxies, CIFAR10, _recon())
    with pytest.raises(InputError, match="proxy images"):
        ProxySampler(proxies[0], CIFAR10, ProxyConfig())
    with pytest.raises(UserError, match="preprocessing"):
        distiller(proxies, _kd())(_student(teacher), teacher, None)


def test_distiller_hook_runs_both(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    hook = distiller(proxies, _kd(), reconstruct=_recon())
    out = hook(_student(teacher), teacher, CIFAR10)
    assert set(out) == {"reconstruct", "distill"}
    assert out["distill"]["steps"] == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(proxies: torch.Tensor) -> None:
    teacher = _teacher()
    student = _student(teacher)
    reconstruct_(student, teacher, proxies, CIFAR10, _recon(device="cuda"))
    report = distill_(student, teacher, proxies, CIFAR10, _kd(device="cuda", amp=True))
    assert report.steps == 4
    assert next(iter(centroid_parameters(student).values())).is_cuda
