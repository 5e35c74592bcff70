"""Tests for squeezenet.compress.weight_sharing: 1-D k-means and trainable weight sharing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress import (
    PrunePolicy,
    WeightShare,
    centroid_parameters,
    get_masks,
    kmeans1d,
    prune_,
    quantize_,
    remove_quantization_,
)
from squeezenet.errors import ConfigError, InputError
from squeezenet.models import create_model


def _lloyd_reference(
    values: np.ndarray, c: np.ndarray, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Textbook Lloyd: nearest centroid by exhaustive distances, means by masks."""
    v = values.astype(np.float64)
    c = np.sort(c.astype(np.float64))
    previous = None
    for _ in range(iters):
        a = np.argmin(np.abs(v[:, None] - c[None, :]), axis=1)
        if previous is not None and np.array_equal(a, previous):
            break
        previous = a
        for j in range(c.size):
            if np.any(a == j):
                c[j] = v[a == j].mean()
    return c, np.argmin(np.abs(v[:, None] - c[None, :]), axis=1)


def _init_reference(values: np.ndarray, k: int, init: str) -> np.ndarray:
    s = np.sort(values.astype(np.float64))
    if init == "linear":
        return np.linspace(s[0], s[-1], k)
    return s[((np.arange(k) + 0.5) / k * s.size).astype(np.int64)]


def _sse(values: np.ndarray, centroids: np.ndarray, assignment: np.ndarray) -> float:
    return float(((values.astype(np.float64) - centroids[assignment]) ** 2).sum())


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    k=st.integers(1, 9),
    init=st.sampled_from(["linear", "density"]),
    iters=st.sampled_from([1, 3, 1000]),
)
def test_kmeans1d_matches_exhaustive_lloyd(
    seed: int, n: int, k: int, init: str, iters: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n) * rng.uniform(0.01, 10)  # continuous: no ties
    if k >= n:
        k = n - 1 if n > 1 else 1
    centroids, assignment = kmeans1d(values, k, init=init, iters=iters)  # type: ignore[arg-type]
    ref_c, ref_a = _lloyd_reference(values, _init_reference(values, k, init), iters)
    np.testing.assert_allclose(centroids, ref_c, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(assignment, ref_a)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-20, 20).map(lambda i: i / 4), min_size=1, max_size=40),
    k=st.integers(1, 6),
    init=st.sampled_from(["linear", "density", "random"]),
)
def test_kmeans1d_converges_to_a_lloyd_fixed_point(values: list[float], k: int, init: str) -> None:
    """With duplicates and ties: nearest-centroid assignment, centroids are member means."""
    x = np.array(values)
    centroids, assignment = kmeans1d(x, k, init=init, iters=10_000, seed=1)  # type: ignore[arg-type]
    assert centroids.size <= k and np.all(np.diff(centroids) >= 0)
    distance = np.abs(x[:, None] - centroids[None, :])
    own = distance[np.arange(x.size), assignment]
    assert np.all(own <= distance.min(axis=1) + 1e-12)
    for j in np.unique(assignment):
        assert centroids[j] == pytest.approx(x[assignment == j].mean(), abs=1e-12)
    assert _sse(x, centroids, assignment) >= _optimal_sse(sorted(values), k) - 1e-9


def _optimal_sse(s: list[float], k: int) -> float:
    """Optimal 1-D k-means cost by dynamic programming over contiguous runs (tiny inputs)."""
    n = len(s)

    def cost(i: int, j: int) -> float:  # s[i:j] as one cluster
        run = np.array(s[i:j])
        return float(((run - run.mean()) ** 2).sum())

    best = [0.0] + [np.inf] * n
    for _ in range(min(k, n)):
        best = [0.0] + [min(best[i] + cost(i, j) for i in range(j)) for j in range(1, n + 1)]
    return best[n]


def test_kmeans1d_optimal_on_two_clear_groups() -> None:
    x = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 5.3])
    centroids, assignment = kmeans1d(x, 2)
    np.testing.assert_allclose(centroids, [0.1, 5.15])
    assert _sse(x, centroids, assignment) == pytest.approx(_optimal_sse(list(x), 2))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_kmeans1d_is_lossless_with_few_distinct_values(bits: int) -> None:
    rng = np.random.default_rng(bits)
    distinct = rng.standard_normal(2**bits).astype(np.float32)
    x = rng.choice(distinct, size=(300, 7))
    centroids, assignment = kmeans1d(x, 2**bits, init="linear", iters=5)
    assert centroids.dtype == np.float32 and assignment.shape == x.shape
    np.testing.assert_array_equal(centroids, np.unique(x))
    np.testing.assert_array_equal(centroids[assignment], x)


def test_kmeans1d_keeps_empty_clusters() -> None:
    # Linear init between 0 and 100 leaves the middle centroids without members.
    x = np.concatenate([np.linspace(0, 1, 50), [100.0]])
    centroids, assignment = kmeans1d(x, 4, init="linear")
    assert centroids.size == 4 and np.all(np.isfinite(centroids))
    assert set(np.unique(assignment)) <= {0, 1, 2, 3}
    assert centroids[assignment[-1]] == 100.0


def test_kmeans1d_random_init_is_seeded() -> None:
    x = np.random.default_rng(0).standard_normal(1000)
    a = kmeans1d(x, 8, init="random", iters=2, seed=3)
    b = kmeans1d(x, 8, init="random", iters=2, seed=3)
    np.testing.assert_array_equal(a[0], b[0])


def test_kmeans1d_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="k must"):
        kmeans1d(np.ones(3), 0)
    with pytest.raises(ValueError, match="init"):
        kmeans1d(np.ones(3), 2, init="kmeans++")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        kmeans1d(np.array([1.0, np.nan]), 2)
    centroids, assignment = kmeans1d(np.zeros(0), 4)
    assert centroids.size == 0 and assignment.size == 0


def _small(seed: int = 0) -> nn.Module:
    return create_model("squeezenet_small", seed=seed, dropout=0.0)


def _batches(steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        (torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g))
        for _ in range(steps)
    ]


def test_quantize_shares_weights_and_keeps_pruned_zeros() -> None:
    model = _small()
    prune_(model, PrunePolicy.uniform(0.6))
    masks = get_masks(model)
    report = quantize_(model, 4)
    modules = dict(model.named_modules())
    for row in report.layers:
        weight = modules[row.name].weight.detach()
        mask = masks[row.name]
        assert torch.all(weight[~mask] == 0)
        assert torch.unique(weight[mask]).numel() <= 16
        assert row.stored == int(mask.sum()) and row.clusters == 16
    assert get_masks(model).keys() == masks.keys()  # still readable after sharing


def test_centroid_gradient_is_sum_of_member_gradients() -> None:
    model = _small().eval()
    prune_(model, PrunePolicy.uniform(0.5))
    quantize_(model, 3)
    x, y = _batches(1)[0]
    with parametrize.cached():  # one weight tensor per layer, so its gradient can be kept
        dense = {n: model.get_submodule(n).weight for n in centroid_parameters(model)}
        for weight in dense.values():
            weight.retain_grad()
        nn.functional.cross_entropy(model(x), y).backward()
    for name, centroids in centroid_parameters(model).items():
        share = model.get_submodule(name).parametrizations["weight"][0]
        assert isinstance(share, WeightShare)
        dense_grad = dense[name].grad
        assert dense_grad is not None and torch.any(dense_grad != 0)
        expected = torch.zeros(share.num_centroids + 1).index_add_(
            0, share.assignment.flatten(), dense_grad.flatten()
        )[:-1]
        assert centroids.grad is not None
        torch.testing.assert_close(centroids.grad, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_fine_tuning_moves_centroids_only(kind: str) -> None:
    model = _small()
    prune_(model, PrunePolicy.paper())
    masks = get_masks(model)
    quantize_(model, 5)
    shares = {n: m.parametrizations["weight"][0] for n, m in model.named_modules() if n in masks}
    assignments = {n: s.assignment.clone() for n, s in shares.items()}
    before = {n: c.detach().clone() for n, c in centroid_parameters(model).items()}
    if kind == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    model.train()
    for x, y in _batches(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    after = centroid_parameters(model)
    assert any(not torch.equal(before[n], after[n]) for n in before)
    for name, mask in masks.items():
        module = model.get_submodule(name)
        assert torch.equal(shares[name].assignment, assignments[name])
        assert torch.all(module.weight[~mask] == 0)
        assert torch.unique(module.weight.detach()).numel() <= 2**5 + 1  # codebook + zero


def test_mixed_bits_patterns_and_callable() -> None:
    model = _small()
    report = quantize_(model, {"*.expand3x3": 4, "conv10": 6})
    rows = report.by_name()
    conv10 = next(n for n, _ in model.named_modules() if n == "classifier.1")
    assert rows[conv10].bits == 6 and rows[conv10].clusters == 64
    assert all(r.bits == 4 for n, r in rows.items() if n.endswith("expand3x3"))
    assert isinstance(model.get_submodule("features.0").weight, nn.Parameter)  # stays float
    other = _small()
    report = quantize_(other, lambda name, module: 2 if module.weight.dim() == 4 else None)
    assert {r.bits for r in report.layers} == {2}
    with pytest.raises(ValueError, match="already weight-shared"):
        quantize_(other, 2)


def test_quantize_layers_filter_and_bad_bits() -> None:
    model = _small()
    report = quantize_(model, 8, layers=["conv1"])
    assert [r.name for r in report.layers] == ["features.0"]
    with pytest.raises(ConfigError, match="bits"):
        quantize_(_small(), 17)


def test_quantize_names_a_layer_with_nan_weights() -> None:
    model = _small()
    with torch.no_grad():
        model.features[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match=r"features\.0: the weights hold NaN"):
        quantize_(model, 4)


def test_remove_quantization_bakes_in_and_keeps_masks() -> None:
    model = _small()
    plain_keys = set(model.state_dict())
    prune_(model, PrunePolicy.uniform(0.5))
    masks = get_masks(model)
    quantize_(model, 4)
    shared = {n: model.get_submodule(n).weight.detach().clone() for n in masks}
    remove_quantization_(model)
    assert centroid_parameters(model) == {}
    assert get_masks(model).keys() == masks.keys()
    for name, weight in shared.items():
        assert torch.equal(model.get_submodule(name).weight, weight)
    remove_quantization_(model)  # nothing left to remove
    from squeezenet.compress import remove_pruning_

    remove_pruning_(model)
    assert set(model.state_dict()) == plain_keys


def test_lossless_quantization_of_a_layer_with_few_values() -> None:
    model = _small()
    conv = model.get_submodule("features.0")
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-3, 4, conv.weight.shape).float() / 8)
    original = conv.weight.detach().clone()
    quantize_(model, 3, layers=["features.0"])
    assert torch.equal(conv.weight, original)
