"""Seeds per point and the verdict per paper claim."""

from __future__ import annotations

import math
from typing import Any

import pytest

from squeezenet.experiments.verdicts import (
    Point,
    critical,
    gain_verdict,
    points,
    pooled,
    sign,
    sweep_verdict,
)


def _rec(name: str, value: Any, seed: int, top1: float) -> dict[str, Any]:
    return {"trial": {"overrides": {name: value}, "train": {"seed": seed}}, "top1": top1}


def test_points_group_seeds_by_value_with_mean_and_sample_std() -> None:
    records = [_rec("pct_3x3", 0.5, 1, 0.80), _rec("pct_3x3", 0.25, 0, 0.7),
               _rec("pct_3x3", 0.5, 0, 0.82)]  # fmt: skip
    half, quarter = points("pct_3x3", records)
    assert half.value == 0.5 and half.seeds == (0, 1) and half.top1 == (0.82, 0.80)
    assert half.mean == pytest.approx(0.81) and half.std == pytest.approx(math.sqrt(2e-4))
    assert quarter.seeds == (0,) and math.isnan(quarter.std)


def test_significance_is_a_t_test_on_the_pooled_seed_noise_and_needs_two_seeds() -> None:
    a, b = Point(1, (0, 1), (0.80, 0.82)), Point(2, (0, 1), (0.70, 0.72))
    assert sign(a, b) == 1 and sign(b, a) == -1
    assert sign(a, Point(3, (0, 1), (0.79, 0.83))) == 0
    assert sign(a, Point(4, (0,), (0.5,))) is None
    noise = pooled([a, b])  # both stds sqrt(2e-4), 1 df each
    assert noise is not None and noise.df == 2 and noise.std == pytest.approx(math.sqrt(2e-4))
    # 3 standard errors apart: significant at Z = 2, not at t with 2 df (4.30)
    c = Point(5, (0, 1), (0.80 + 3 * noise.std + 0.01, 0.82 + 3 * noise.std - 0.01))
    assert sign(c, a) == 0
    many = [Point(i, (0, 1, 2, 3), (0.80, 0.82, 0.80, 0.82)) for i in range(8)]  # 24 df
    assert sign(Point(9, (0, 1, 2, 3), (0.83, 0.85, 0.83, 0.85)), many[0], pooled(many)) == 1
    assert critical(1) == 12.706 and critical(6) == 2.447 and critical(45) == 2.021


def _series(values: list[Any], means: list[float], seeds: int = 2) -> list[Point]:
    jitter = [0.001 * (-1) ** s for s in range(seeds)]
    return [Point(v, tuple(range(seeds)), tuple(m + j for j in jitter))
            for v, m in zip(values, means, strict=True)]  # fmt: skip


def test_fig3a_holds_when_the_curve_rises_then_flattens() -> None:
    srs = [0.125, 0.25, 0.5, 0.75, 1.0]
    verdict = sweep_verdict("squeeze_ratio", _series(srs, [0.70, 0.75, 0.80, 0.81, 0.811]))
    assert verdict is not None and verdict.outcome == "holds"
    still = sweep_verdict("squeeze_ratio", _series(srs, [0.70, 0.75, 0.80, 0.81, 0.85]))
    assert still is not None and still.outcome == "does not hold"
    one = sweep_verdict("squeeze_ratio", _series(srs, [0.70, 0.75, 0.80, 0.81, 0.811], seeds=1))
    assert one is not None and one.outcome == "inconclusive" and "one seed" in one.evidence


def test_fig3b_plateau_and_table3_ordering() -> None:
    pcts = [0.01, 0.25, 0.5, 0.75, 0.99]
    verdict = sweep_verdict("pct_3x3", _series(pcts, [0.6, 0.75, 0.8, 0.8, 0.79]))
    assert verdict is not None and verdict.outcome == "holds"
    table = _series(["none", "simple", "complex"], [0.80, 0.83, 0.81])
    assert (v := sweep_verdict("bypass", table)) is not None and v.outcome == "holds"
    worse = _series(["none", "simple", "complex"], [0.80, 0.70, 0.81])
    assert (v := sweep_verdict("bypass", worse)) is not None and v.outcome == "does not hold"
    partial = sweep_verdict("bypass", table[:2])
    assert partial is not None and partial.outcome == "inconclusive"
    assert "needs none, simple and complex" in partial.evidence


def test_a_claim_without_its_points_says_what_is_missing() -> None:
    low = _series([0.01, 0.25, 0.5], [0.6, 0.75, 0.8])
    verdict = sweep_verdict("pct_3x3", low)
    assert verdict is not None and verdict.outcome == "inconclusive"
    assert "a point above it" in verdict.evidence and "so far 0.01, 0.25, 0.5" in verdict.evidence
    assert sweep_verdict("dropout", low) is None


def test_gain_verdict() -> None:
    assert gain_verdict("DSD", [1.0, 1.2, 0.9]).outcome == "holds"
    assert gain_verdict("DSD", [-1.0, -1.2, -0.9]).outcome == "does not hold"
    assert gain_verdict("DSD", [1.0, -1.0, 0.2]).outcome == "inconclusive"
    assert gain_verdict("DSD", [1.0]).outcome == "inconclusive"
