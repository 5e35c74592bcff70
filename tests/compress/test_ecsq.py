"""Entropy-constrained scalar quantization: k-means at lambda 0, rate falls as lambda rises."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from squeezenet.compress.ecsq import _envelope, ecsq1d, ecsq_quantize_
from squeezenet.compress.plain_data import to_compressed
from squeezenet.compress.weight_sharing import kmeans1d
from squeezenet.formats.sqz import encode_sqz
from squeezenet.models import create_model


def _layer(n: int = 6000, zeros: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.laplace(size=n) * 0.05).astype(np.float32)
    x[rng.random(n) < zeros] = 0.0
    return x


@pytest.mark.parametrize(("seed", "k"), [(0, 4), (1, 16), (2, 64)])
def test_lambda_zero_is_plain_lloyd(seed: int, k: int) -> None:
    x = _layer(seed=seed)
    centroids, codes = kmeans1d(x[x != 0], k)
    used = np.bincount(codes, minlength=len(centroids)) > 0  # k-means keeps empty clusters
    renumber = np.cumsum(used) - 1
    result = ecsq1d(x, k, 0.0, prune=False)
    np.testing.assert_allclose(result.codebook, centroids[used], rtol=0, atol=1e-7)
    assert np.array_equal(result.assignment[x != 0], renumber[codes])
    assert (result.assignment[x == 0] == len(result.codebook)).all()


def test_envelope_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        centres = np.sort(rng.normal(size=8))
        bias = rng.exponential(size=8) * rng.choice([0.0, 0.1, 1.0])
        bias[rng.random(8) < 0.2] = np.inf
        if not np.isfinite(bias).any():
            continue
        w = np.sort(rng.normal(size=400) * 2)
        bounds, winners = _envelope(centres, bias)
        chosen = winners[np.searchsorted(bounds, w, side="left")]
        cost = (w[:, None] - centres[None, :]) ** 2 + bias[None, :]
        best = cost.min(1)
        np.testing.assert_allclose(cost[np.arange(w.size), chosen], best, rtol=0, atol=1e-12)


def test_rate_falls_and_distortion_rises_with_lambda() -> None:
    x = _layer(20000)
    rows = [ecsq1d(x, 64, lam) for lam in (0.0, 1e-5, 1e-4, 1e-3, 1e-2)]
    rates = [r.rate_bits for r in rows]
    distortions = [r.distortion for r in rows]
    assert all(a >= b for a, b in itertools.pairwise(rates)), rates
    assert all(a <= b for a, b in itertools.pairwise(distortions)), distortions
    assert rows[-1].kept < rows[0].kept  # pruning is a rate decision


def test_pruned_weights_stay_zero() -> None:
    x = _layer()
    for lam in (0.0, 1e-3):
        result = ecsq1d(x, 16, lam)
        assert (result.assignment[x == 0] == len(result.codebook)).all()


def test_coded_size_never_grows_with_lambda() -> None:
    sizes = []
    for lam in (0.0, 1e-6, 1e-5, 1e-4, 1e-3):
        model = create_model("squeezenet_small", seed=0, num_classes=10)
        ecsq_quantize_(model, lam, bits=6)
        cm = to_compressed(model, model_name="squeezenet_small")
        sizes.append(len(encode_sqz(cm)))
    assert all(a >= b for a, b in itertools.pairwise(sizes)), sizes
    assert sizes[-1] < sizes[0]


def test_scales_give_sensitive_layers_finer_levels() -> None:
    base = create_model("squeezenet_small", seed=0, num_classes=10)
    first = next(n for n, m in base.named_modules() if isinstance(m, torch.nn.Conv2d))
    plain = create_model("squeezenet_small", seed=0, num_classes=10)
    scaled = create_model("squeezenet_small", seed=0, num_classes=10)
    a = ecsq_quantize_(plain, 1e-4, bits=6).by_name()[first]
    b = ecsq_quantize_(scaled, 1e-4, bits=6, scales={first: 100.0}).by_name()[first]
    assert b.rmse < a.rmse


def test_levels_that_do_not_pay_for_their_entry_are_merged() -> None:
    x = _layer(20000)
    free = ecsq1d(x, 64, 1e-5)
    costly = ecsq1d(x, 64, 1e-5, level_bits=37)
    assert len(costly.codebook) < len(free.codebook)
    assert costly.rate_bits < free.rate_bits  # the entries it saves are counted in the rate
    plain = ecsq1d(x, 16, 0.0, prune=False, level_bits=37)  # lambda 0: entries are free
    assert len(plain.codebook) == len(ecsq1d(x, 16, 0.0, prune=False).codebook)
