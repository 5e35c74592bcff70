"""Trellis-coded (dependent) quantization: the Viterbi search, grids in files, byte targets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from squeezenet.compress.config import CompressConfig
from squeezenet.compress.plain_data import to_compressed
from squeezenet.compress.rate import TOLERANCE
from squeezenet.compress.trellis import (
    TrellisLayer,
    feedback_factor,
    step_for,
    trellis_many,
    trellis_quantize_,
)
from squeezenet.compress.trellis_lanes import Lanes, viterbi
from squeezenet.compress.weight_sharing import centroid_parameters
from squeezenet.formats import decode_sqz, encode_sqz
from squeezenet.formats.grid import DQ_NEXT, GridCode, zigzag
from squeezenet.io.weights import LoadedModel
from squeezenet.models import create_model
from squeezenet.workflows.compress_file import compress_model


def path_cost(
    w: np.ndarray, levels: tuple[int, ...], step: float, lam: float, rates: np.ndarray
) -> float:
    """D + lambda R of one level sequence, the state machine run by hand."""
    state, cost = 0, 0.0
    for x, k in zip(w, levels, strict=True):
        q = state >> 1
        m = 2 * k - int(np.sign(k)) * q
        cost += (x - m * step) ** 2 + lam * rates[0, int(zigzag(np.array(k)))]
        state = int(DQ_NEXT[state][abs(k) % 2])
    return cost


def test_viterbi_finds_the_cheapest_level_sequence() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(scale=0.5, size=5)
    step, lam = 0.25, 0.02
    lanes = Lanes.of([TrellisLayer(w, step, lam)], 16)
    rates = np.log2(2.0 + np.arange(64))[None, :]  # rises with |k|
    levels = viterbi(lanes, rates)[0, :5]
    brute = min(
        itertools.product(range(-3, 4), repeat=5),
        key=lambda seq: path_cost(w, seq, step, lam, rates),
    )
    found = path_cost(w, tuple(int(k) for k in levels), step, lam, rates)
    assert found == pytest.approx(path_cost(w, brute, step, lam, rates), abs=1e-12)


def test_exact_zeros_stay_zero_and_values_follow_the_grid() -> None:
    rng = np.random.default_rng(1)
    w = rng.laplace(scale=0.05, size=(16, 300))
    w[rng.random(w.shape) < 0.6] = 0
    code = trellis_many([TrellisLayer(w, 0.01, 0.3 * 0.01**2)], period_log2=6)[0]
    assert (code.levels[w.reshape(-1) == 0] == 0).all()
    values = code.values()
    assert np.abs(values - w.reshape(-1)).max() <= 2 * 0.01 + 1e-7  # within one Q spacing
    assert code.values().dtype == np.float32


def test_the_trellis_beats_rounding_at_equal_rate() -> None:
    """Dependent quantization at step d against uniform rounding at the step of equal rate:
    lower squared error (the trellis's granular gain)."""
    rng = np.random.default_rng(2)
    w = rng.laplace(scale=0.05, size=40_000)

    def entropy(levels: np.ndarray) -> float:
        counts = np.bincount(zigzag(levels)).astype(float)
        counts = counts[counts > 0]
        return float(-(counts * np.log2(counts / counts.sum())).sum())

    d = 0.01
    code = trellis_many([TrellisLayer(w, d, 0.3 * d * d)])[0]
    rate, error = entropy(code.levels), float(np.square(code.values() - w).sum())
    lo, hi = d, 8 * d  # the uniform step whose rounding has the trellis's entropy
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if entropy(np.rint(w / mid).astype(np.int64)) > rate else (lo, mid)
    uniform = float(np.square(np.rint(w / hi) * hi - w).sum())
    assert error < 0.9 * uniform


TINY = {"base_e": 16, "incr_e": 16}


def _loaded() -> LoadedModel:
    # a squeezenet_small of ~20k parameters: each probe of a byte target quantizes and encodes
    # the whole model, and the search, the sizes and the wrecking are the same at this width
    config = {"num_classes": 10, **TINY}
    model = create_model("squeezenet_small", seed=0, **config)
    return LoadedModel(model, "squeezenet_small", config, None, None, None)  # type: ignore[arg-type]


def test_trellis_layers_are_written_as_grids_and_decode_to_the_model() -> None:
    model = _loaded().model
    trellis_quantize_(model, 1e-5)
    cm = to_compressed(model, model_name="squeezenet_small")
    assert all(layer.grid is not None for layer in cm.layers)
    data = encode_sqz(cm, bias_dtype="float16")
    assert data[4] == 3
    back = decode_sqz(data)
    modules = dict(model.named_modules())
    for layer in back.layers:
        expected = modules[layer.name].weight.detach().numpy()
        assert np.array_equal(layer.dense_weight(), expected)
        assert isinstance(layer.grid, GridCode)
    # Centroids that move (e.g. distillation) are no longer a grid: stored as a codebook.
    with torch.no_grad():
        next(iter(centroid_parameters(model).values())).add_(1e-3)
    moved = to_compressed(model, model_name="squeezenet_small")
    assert moved.layers[0].grid is None and moved.layers[1].grid is not None


def test_a_larger_lambda_never_gives_a_larger_file() -> None:
    sizes = [
        len(compress_model(_loaded(), CompressConfig(quantizer="trellis", rate_lambda=lam)).data)
        for lam in (1e-7, 1e-6, 1e-5, 1e-4)
    ]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


# Below about half the lossless size the trellis wrecks this random model (its conv10,
# initialised 100x smaller than the other layers, is zeroed first): such targets are refused.
# Slow (a trellis run per probe: ~13 s for 0.6). In the default suite, the search itself is
# test_rate.py::test_bisection_meets_a_byte_target (the same bisection, with ECSQ), and what it
# relies on, a file that shrinks as lambda grows, is test_a_larger_lambda_never_gives_a_larger_file
# with the trellis; with them this test covers no line of src/ more (coverage.py).
@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.6, 0.55])
def test_bisection_meets_a_byte_target_with_the_trellis(fraction: float) -> None:
    lossless = len(compress_model(_loaded(), CompressConfig(bits=8)).data)
    target = int(lossless * fraction)
    config = CompressConfig(quantizer="trellis", target_bytes=target, bias_dtype="float16")
    result = compress_model(_loaded(), config)
    assert (1 - TOLERANCE) * target <= len(result.data) <= target
    assert result.report.rate is not None
    assert result.data[4] == 3


def test_step_follows_lambda() -> None:
    assert step_for(0.3 * 0.25**2) == 0.25
    assert step_for(4e-6) > step_for(1e-6)


def _correlated(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pruned weights (32, 72) and the Hessian of correlated, unevenly scaled inputs."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(32, 72)) * 0.05
    w[rng.random(w.shape) < 0.6] = 0.0
    x = rng.normal(size=(4000, 72)) @ (np.eye(72) + 0.6 * rng.normal(size=(72, 72)) / 8.5)
    x[:, :8] *= 4.0
    return w, x.T @ x / len(x)


def _output_error(code: GridCode, w: np.ndarray, hessian: np.ndarray) -> float:
    d = code.values().reshape(w.shape) - w
    return float(np.einsum("ok,kl,ol->", d, hessian, d))


def _bits(code: GridCode) -> float:
    counts = np.bincount(zigzag(code.levels).ravel())
    counts = counts[counts > 0]
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def test_identity_feedback_is_the_plain_trellis() -> None:
    """With uncorrelated unit inputs no error moves another weight: the same levels."""
    w, _ = _correlated()
    lam = 2e-4
    plain = trellis_many([TrellisLayer(w, step_for(lam), lam)], period_log2=8)[0]
    u = feedback_factor(np.eye(72), 0.0)
    fed = trellis_many([TrellisLayer(w, step_for(lam), lam, feedback=u)], period_log2=8)[0]
    np.testing.assert_array_equal(plain.levels, fed.levels)


def test_feedback_factor_is_the_damped_inverse_cholesky() -> None:
    _, h = _correlated()
    u = feedback_factor(h, 0.1)
    damped = h + 0.1 * np.diag(h).mean() * np.eye(len(h))
    np.testing.assert_allclose(u.T @ u, np.linalg.inv(damped), rtol=1e-8, atol=1e-10)
    assert np.allclose(u, np.triu(u))


def test_error_feedback_lowers_the_output_error_at_equal_rate() -> None:
    """Against the trellis weighted by each input's energy (the Hessian's diagonal), feedback
    through the whole Hessian gives less output error at equal bits; pruned weights stay zero."""
    w, h = _correlated()
    energy = np.broadcast_to(np.diag(h) / np.diag(h).mean(), w.shape)
    u = feedback_factor(h, 0.01)
    curve = []
    for lam in (1e-4, 3e-4, 1e-3):
        layer = TrellisLayer(w, step_for(lam), lam, importance=energy)
        code = trellis_many([layer], period_log2=8)[0]
        curve.append((_bits(code), _output_error(code, w, h)))
    fed = trellis_many([TrellisLayer(w, step_for(3e-4), 3e-4, feedback=u)], period_log2=8)[0]
    assert (fed.values().reshape(w.shape)[w == 0] == 0).all()
    bits, error = _bits(fed), _output_error(fed, w, h)
    curve.sort()
    plain_at = float(np.interp(bits, [b for b, _ in curve], [e for _, e in curve]))
    assert curve[0][0] < bits < curve[-1][0]
    assert error < 0.95 * plain_at, (error, plain_at)


@pytest.mark.parametrize("fed", [False, True])
def test_a_row_scale_spends_the_bits_on_the_rows_that_cost_more(fed: bool) -> None:
    """Two copies of the same rows, one weighted 30x: its error falls and the other's grows
    (with the plain trellis and with error feedback alike)."""
    w, h = _correlated()
    half = len(w) // 2
    twin = np.concatenate([w[:half], w[:half]])
    lam = 3e-4
    u = feedback_factor(h, 0.1) if fed else None
    scale = np.r_[np.full(half, 30.0), np.ones(half)]
    plain = trellis_many([TrellisLayer(twin, step_for(lam), lam, feedback=u)], period_log2=8)[0]
    layer = TrellisLayer(twin, step_for(lam), lam, feedback=u, row_scale=scale)
    weighed = trellis_many([layer], period_log2=8)[0]

    def errors(code: GridCode) -> tuple[float, float]:  # what the trellis weighs: output error
        e = code.values().reshape(twin.shape) - twin
        m = h if fed else np.eye(len(h))
        return tuple(float(np.einsum("ok,kl,ol->", d, m, d)) for d in (e[:half], e[half:]))  # type: ignore[return-value]

    (a0, b0), (a1, b1) = errors(plain), errors(weighed)
    # the weighted rows got the bits (down to the rounding error of the one step the rows share)
    assert a1 / b1 < 0.75 * a0 / b0
    with pytest.raises(ValueError, match="row_scale"):
        trellis_many([TrellisLayer(twin, step_for(lam), lam, row_scale=scale[:3])])
