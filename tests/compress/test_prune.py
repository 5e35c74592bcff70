"""Tests for squeezenet.compress.prune: masks, policies, the paper preset."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from squeezenet.compress import (
    PrunePolicy,
    get_masks,
    layer_aliases,
    parse_prune_policy,
    prune_,
    pruning_report,
    remove_pruning_,
)
from squeezenet.errors import ConfigError
from squeezenet.models import create_model

# The released Deep Compression SqueezeNet (data/squeezenet-dc): 415,921 of 1,244,448 weights.
RELEASED_KEPT = 415_921
RELEASED_NUMEL = 1_244_448


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(4, 3, 32, 32, generator=generator)
        y = torch.randint(0, 10, (4,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_uniform_sparsity_counts_per_layer() -> None:
    model = create_model("squeezenet_small", seed=0)
    report = prune_(model, PrunePolicy.uniform(0.5))
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            row = report.by_name()[name]
            assert row.kept == row.numel - round(0.5 * row.numel)
            assert int((module.weight != 0).sum()) == row.kept
            assert int(get_masks(model)[name].sum()) == row.kept
    assert report.sparsity == pytest.approx(0.5, abs=1e-3)


def test_pruned_weights_are_the_smallest() -> None:
    model = create_model("squeezenet_small", seed=0)
    before = model.features[0].weight.detach().clone()
    prune_(model, PrunePolicy.per_layer({"conv1": 0.3}))
    mask = get_masks(model)["features.0"]
    assert before[~mask].abs().max() <= before[mask].abs().min()
    assert list(get_masks(model)) == ["features.0"]  # the other layers stay dense


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_masks_survive_optimiser_steps(kind: str) -> None:
    model = create_model("squeezenet_small", seed=0, dropout=0.0)
    prune_(model, PrunePolicy.uniform(0.6))
    masks = get_masks(model)
    before = {n: m.weight.detach().clone() for n, m in model.named_modules() if n in masks}
    if kind == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    _train(model, opt)
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        weight = modules[name].weight.detach()
        assert torch.all(weight[~mask] == 0), name
        assert not torch.equal(weight[mask], before[name][mask]), name  # the rest trained
    assert get_masks(model).keys() == masks.keys()


def test_paper_preset_matches_released_model() -> None:
    model = create_model("squeezenet1_0", seed=0)
    report = prune_(model, PrunePolicy.paper())
    assert report.numel == RELEASED_NUMEL
    assert report.kept == pytest.approx(RELEASED_KEPT, rel=0.01)
    assert report.sparsity == pytest.approx(1 - RELEASED_KEPT / RELEASED_NUMEL, abs=0.01)
    rows = report.by_name()
    fires = {2: 3, 3: 4, 4: 5, 5: 7, 6: 8, 7: 9, 8: 10, 9: 12}  # fire number -> features index
    for fire, index in fires.items():
        expected = 0.70 if fire >= 8 else 0.67
        assert rows[f"features.{index}.expand3x3"].sparsity == pytest.approx(expected, abs=1e-4)
    assert rows["classifier.1"].sparsity == pytest.approx(0.8, abs=1e-6)
    half = {"features.8.expand1x1", "features.9.squeeze", "features.10.expand1x1"}
    for name in half | {"features.12.squeeze"}:
        assert rows[name].sparsity == pytest.approx(0.5, abs=1e-4)
    dense = [r for r in rows.values() if "expand3x3" not in r.name and r.name != "classifier.1"]
    dense = [r for r in dense if r.name not in half | {"features.12.squeeze"}]
    assert len(dense) == 1 + 8 * 2 - 4
    assert all(r.kept == r.numel for r in dense)


def test_std_threshold_policy() -> None:
    model = create_model("squeezenet_small", seed=0)
    weight = model.classifier[1].weight.detach().clone()
    report = prune_(model, PrunePolicy.std_threshold(0.7, "conv10"))
    keep = weight.abs() >= 0.7 * weight.std()
    assert torch.equal(get_masks(model)["classifier.1"], keep)
    assert report.by_name()["classifier.1"].kept == int(keep.sum())
    assert report.by_name()["features.0"].kept == report.by_name()["features.0"].numel


def test_first_matching_rule_wins() -> None:
    model = create_model("squeezenet_small", seed=0)
    policy = PrunePolicy.per_layer({"fire2.expand3x3": 0.9, "*.expand3x3": 0.1})
    rows = prune_(model, policy).by_name()
    names = {alias: name for name, alias in layer_aliases(model).items()}
    assert rows[names["fire2.expand3x3"]].sparsity == pytest.approx(0.9, abs=1e-3)
    assert rows[names["fire3.expand3x3"]].sparsity == pytest.approx(0.1, abs=1e-3)


def test_pruning_twice_combines_masks() -> None:
    model = create_model("squeezenet_small", seed=0)
    prune_(model, PrunePolicy.uniform(0.5))
    first = get_masks(model)
    report = prune_(model, PrunePolicy.uniform(0.75))
    for name, mask in get_masks(model).items():
        assert not torch.any(mask & ~first[name])
    assert report.sparsity == pytest.approx(0.75, abs=1e-3)


def test_remove_pruning_bakes_zeros_and_restores_keys() -> None:
    model = create_model("squeezenet_small", seed=0)
    plain_keys = set(model.state_dict())
    prune_(model, PrunePolicy.uniform(0.5))
    assert any(".parametrizations." in k for k in model.state_dict())
    effective = {k: v.clone() for k, v in model.state_dict().items()}
    masks = get_masks(model)
    report = remove_pruning_(model)
    assert set(model.state_dict()) == plain_keys
    assert get_masks(model) == {}
    assert report.sparsity == pytest.approx(0.5, abs=1e-3)
    for name, mask in masks.items():
        weight = model.get_submodule(name).weight
        assert isinstance(weight, nn.Parameter)
        assert torch.all(weight[~mask] == 0)
        assert torch.equal(weight, effective[f"{name}.parametrizations.weight.original"] * mask)
    nonzero = sum(int((model.get_submodule(n).weight != 0).sum()) for n in masks)
    assert nonzero == sum(int(m.sum()) for m in masks.values())  # zeros stay, unpinned
    assert pruning_report(model).kept == pruning_report(model).numel


def test_parse_prune_policy() -> None:
    assert parse_prune_policy(0.5) == PrunePolicy.uniform(0.5)
    assert parse_prune_policy("0.25") == PrunePolicy.uniform(0.25)
    assert parse_prune_policy("paper") == PrunePolicy.paper()
    assert parse_prune_policy("std:0.8") == PrunePolicy.std_threshold(0.8)
    text = '{"*.expand3x3": 0.67, "classifier.1": 0.8}'
    assert parse_prune_policy(text).rules == (("*.expand3x3", 0.67), ("classifier.1", 0.8))
    structured = parse_prune_policy({"method": "std", "layers": {"conv10": 1.5}})
    assert structured == PrunePolicy((("conv10", 1.5),), method="std")
    for bad in ("lots", "{not json", {"conv10": "x"}, {"layers": 3}, 1.5, "std:-1"):
        with pytest.raises(ConfigError, match=r"prune policy|PrunePolicy"):
            parse_prune_policy(bad)  # type: ignore[arg-type]


def test_policy_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"PrunePolicy\.method"):
        PrunePolicy((("*", 0.5),), method="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"PrunePolicy\.rules"):
        PrunePolicy((("*", 1.5),))
    with pytest.raises(ConfigError, match=r"PrunePolicy\.rules"):
        PrunePolicy([("*", 0.5)])  # type: ignore[arg-type]
