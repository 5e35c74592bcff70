"""Sequential error feedback (compress.sequential): stage order, the asymmetric refit, biases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from squeezenet.compress import PrunePolicy, prune_
from squeezenet.compress.config import CompressConfig
from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.compress.prune import layer_names
from squeezenet.compress.quantizers import QuantizeJob, Trellis
from squeezenet.compress.rate import REFINE_PROBES, TOLERANCE
from squeezenet.compress.sequential import (
    Sequential,
    SequentialConfig,
    _refit,
    sequential_codes,
    walk_scales,
)
from squeezenet.compress.trellis import GRID_ATTRIBUTE, feedback_factor, step_for
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.compress.weighting import HessianConfig, input_hessians
from squeezenet.data import CIFAR10, ArrayDataset, load_dataset
from squeezenet.errors import ConfigError
from squeezenet.io.weights import LoadedModel
from squeezenet.models import create_model
from squeezenet.workflows.compress_file import compress_model

TINY = {"base_e": 16, "incr_e": 16}
# one lambda for every layer (the shipped final_scale gives the classifier a finer grid)
SMALL = SequentialConfig(images=16, batch_size=8, positions=64, final_scale=1.0)


@pytest.fixture(scope="module")
def sampler() -> ProxySampler:
    data = load_dataset("synthetic", synthetic_size=64)
    assert isinstance(data, ArrayDataset)
    return ProxySampler(data.tensors()[0], CIFAR10, ProxyConfig(mix="mosaic"))


def _model(prune: bool = True) -> nn.Module:
    torch.manual_seed(0)
    model = create_model("squeezenet_small", **TINY).eval()
    with torch.no_grad():
        for _, _, module in layer_names(model):
            if module.bias is not None:
                module.bias.normal_(0.0, 0.05)
    if prune:
        prune_(model, PrunePolicy.uniform(0.5))
        from squeezenet.compress.prune import remove_pruning_

        remove_pruning_(model)
    return model


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_every_layer_is_coded_on_its_grid_and_pruned_weights_stay_zero(
    sampler: ProxySampler,
) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lam = 1e-4
    found = sequential_codes(model, sampler, lam, SMALL)
    assert set(found) == {name for name, _, _ in layer_names(model)}
    for name, _, module in layer_names(model):
        values = found[name].code.values().reshape(module.weight.shape)
        assert np.all(values[module.weight.detach().numpy() == 0] == 0)
        multiples = values / step_for(lam)
        assert np.allclose(multiples, np.round(multiples), atol=1e-3)
        assert found[name].bias is not None and found[name].bias.shape == module.bias.shape
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the source is left as it was


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_a_fine_grid_keeps_weights_and_biases(sampler: ProxySampler) -> None:
    model = _model()
    for asymmetric in (False, True):
        config = dataclasses.replace(SMALL, asymmetric=asymmetric)
        found = sequential_codes(model, sampler, 3e-9, config)  # step 1e-4
        for name, _, module in layer_names(model):
            weight = module.weight.detach().numpy()
            values = found[name].code.values().reshape(weight.shape)
            assert np.abs(values - weight).max() < 5e-4  # a few steps: the feedback moves
            bias = found[name].bias
            assert bias is not None
            assert np.allclose(bias, module.bias.detach().numpy(), atol=1e-3)


def test_the_refit_is_the_damped_least_squares_solution_on_stored_weights() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    xq = x + 0.1 * rng.normal(size=x.shape)
    w = rng.normal(size=(3, 6))
    w[0, [1, 4]] = 0.0
    hq, cross = xq.T @ xq / len(x), x.T @ xq / len(x)
    found = _refit(w, hq, cross, 0.1)
    d = 0.1 * np.mean(np.diag(hq))
    for r in range(3):
        s = w[r] != 0
        # minimise |x w - xq[:, s] v|^2 / n + d |v - w_s|^2 directly
        a = np.vstack([xq[:, s] / np.sqrt(len(x)), np.sqrt(d) * np.eye(int(s.sum()))])
        b = np.concatenate([x @ w[r] / np.sqrt(len(x)), np.sqrt(d) * w[r, s]])
        expected = np.linalg.lstsq(a, b, rcond=None)[0]
        assert np.allclose(found[r, s], expected, atol=1e-8)
        assert np.all(found[r, ~s] == 0)
    regrown = _refit(w, hq, cross, 0.1, regrow=True)
    for r in range(3):  # every weight refitted: the dense damped least squares
        a = np.vstack([xq / np.sqrt(len(x)), np.sqrt(d) * np.eye(6)])
        b = np.concatenate([x @ w[r] / np.sqrt(len(x)), np.sqrt(d) * w[r]])
        assert np.allclose(regrown[r], np.linalg.lstsq(a, b, rcond=None)[0], atol=1e-8)
    assert (regrown[0, [1, 4]] != 0).all()
    # without an error upstream (x~ = x) nothing moves: the zeros stay zeros
    same = _refit(w, x.T @ x / len(x), x.T @ x / len(x), 0.1, regrow=True)
    assert np.allclose(same, w, atol=1e-12)


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_regrow_fills_an_unmasked_layers_zeros_but_keeps_a_prune_mask(
    sampler: ProxySampler,
) -> None:
    model = _model(prune=False)
    prune_(model, PrunePolicy.uniform(0.5))  # masks: the user's pruning stays
    masked = {n: (m.weight.detach() == 0).numpy() for n, _, m in layer_names(model)}
    found = sequential_codes(model, sampler, 1e-5, dataclasses.replace(SMALL, regrow=True))
    for name, zero in masked.items():
        assert (found[name].code.values().reshape(zero.shape)[zero] == 0).all()
    plain = _model()  # the same zeros as values only: some of them come back
    zeros = {n: (m.weight.detach() == 0).numpy() for n, _, m in layer_names(plain)}
    found = sequential_codes(plain, sampler, 1e-5, dataclasses.replace(SMALL, regrow=True))
    values = {n: found[n].code.values().reshape(z.shape) for n, z in zeros.items()}
    assert sum(int((values[n][z] != 0).sum()) for n, z in zeros.items()) > 0


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_the_quantizer_leaves_grid_layers_and_corrected_biases(sampler: ProxySampler) -> None:
    model = _model(prune=False)
    prune_(model, PrunePolicy.uniform(0.5))  # pruned with masks, as compress hands it over
    expected = sequential_codes(model, sampler, 1e-4, SMALL)
    report = Trellis().quantize_(
        model, QuantizeJob(rate_lambda=1e-4, sequential=Sequential(sampler, SMALL))
    )
    assert len(report.layers) == len(layer_names(model))
    for name, _, module in layer_names(model):
        code = getattr(module, GRID_ATTRIBUTE)
        values = module.weight.detach().numpy().reshape(-1)
        assert np.array_equal(values, code.values().reshape(-1))
        assert np.array_equal(code.values(), expected[name].code.values())
        assert np.allclose(module.bias.detach().numpy(), expected[name].bias)


def test_a_model_without_stages_is_refused(sampler: ProxySampler) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.raises(ConfigError, match="--weighting hessian"):
        sequential_codes(model, sampler, 1e-4, SMALL)
    with pytest.raises(ConfigError, match=r"SequentialConfig\.final_scale: expected"):
        SequentialConfig(final_scale=0.0)
    with pytest.raises(ConfigError, match=r"SequentialConfig\.stage_scales: fire2 expected"):
        SequentialConfig(stage_scales=(("fire2", -1.0),))


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_a_byte_target_is_searched_with_the_feedback_standing_in(sampler: ProxySampler) -> None:
    config = {"num_classes": 10, **TINY}
    big = dataclasses.replace(CIFAR10, crop=32)

    def loaded() -> LoadedModel:
        model = create_model("squeezenet_small", seed=0, **config)
        return LoadedModel(model, "squeezenet_small", config, big, None, None)  # type: ignore[arg-type]

    walk = Sequential(sampler, SMALL)
    calls: list[float] = []

    def counted(model: nn.Module, lam: float) -> QuantizeReport:
        calls.append(lam)
        return walk(model, lam)

    lossless = len(
        compress_model(loaded(), CompressConfig(quantizer="trellis", rate_lambda=1e-9)).data
    )
    target = int(lossless * 0.7)
    hessians = input_hessians(loaded().model, sampler, HessianConfig(images=16, positions=64))
    feedback = {n: feedback_factor(h, 0.1) for n, h in hessians.items()}
    trellis = CompressConfig(quantizer="trellis", target_bytes=target)
    result = compress_model(loaded(), trellis, feedback=feedback, sequential=counted)
    assert (1 - TOLERANCE) * target <= len(result.data) <= target
    assert result.report.rate is not None
    probes = result.report.rate["probes"]
    assert len(calls) == len(probes) + 1 <= REFINE_PROBES + 1  # the probes, then the model
    lam = result.report.rate["rate_lambda"]
    again = compress_model(
        loaded(), dataclasses.replace(trellis, target_bytes=None, rate_lambda=lam), sequential=walk
    )
    assert again.data == result.data


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_the_final_scale_gives_the_classifier_a_finer_grid(sampler: ProxySampler) -> None:
    model = _model()
    names = [name for name, _, _ in layer_names(model)]
    first, last = names[0], names[-1]
    plain = sequential_codes(model, sampler, 1e-3, SMALL)
    finer = sequential_codes(model, sampler, 1e-3, dataclasses.replace(SMALL, final_scale=100.0))
    assert SequentialConfig().final_scale == 2.0  # the recipe chosen on held-out proxies
    assert finer[last].code.step == pytest.approx(plain[last].code.step / 10, rel=1e-6)
    assert finer[first].code.step == plain[first].code.step


def test_walk_scales_give_each_layer_its_stage_and_classifier_divisor() -> None:
    model = _model(prune=False)
    config = dataclasses.replace(
        SMALL, final_scale=2.0, stage_scales=(("fire2", 3.0), ("conv10", 5.0))
    )
    scales = walk_scales(model, config)
    fire2 = {"features.4.squeeze", "features.4.expand1x1", "features.4.expand3x3"}  # small: BN
    assert {n for n, s in scales.items() if s == 3.0} == fire2
    assert scales["classifier.1"] == 10.0  # the stage's 5 times the classifier's 2
    assert len(scales) == 4  # every other layer at 1 is left out
    assert walk_scales(model, SMALL) == {}


@pytest.mark.slow  # each walk runs the trellis's 4,096 steps per group (~20 s)
def test_stage_scales_give_a_stage_a_finer_grid(sampler: ProxySampler) -> None:
    model = _model()
    plain = sequential_codes(model, sampler, 1e-3, SMALL)
    config = dataclasses.replace(SMALL, stage_scales=(("fire3", 100.0),))
    finer = sequential_codes(model, sampler, 1e-3, config)
    for name in plain:
        ratio = 10.0 if name.startswith("features.5.") else 1.0  # fire3
        assert finer[name].code.step == pytest.approx(plain[name].code.step / ratio, rel=1e-6)
