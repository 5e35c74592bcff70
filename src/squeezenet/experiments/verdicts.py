"""Seeds aggregated per design point, and a verdict per paper claim from their intervals.

A sweep trains each point once per seed. :func:`points` groups a series' records by the swept
value: mean and sample standard deviation of top-1 over the seeds. Seeds scatter about as much
at every point of a series, so :func:`pooled` pools their variance over the series' points
(degrees of freedom: seeds minus one, summed). A claim compares two points by the difference of
their means against its standard error ``s_pooled * sqrt(1/n_a + 1/n_b)``: *significant* when
the difference is beyond the two-sided 95 % quantile of Student's t at the pooled degrees of
freedom (12.7 standard errors with one, 2.45 with six: few seeds prove little). A verdict is
"holds" or "does not hold" only on significant differences; anything else, or any point with
fewer than two seeds, is "inconclusive".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
Outcome = Literal["holds", "does not hold", "inconclusive"]


def critical(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``df`` degrees of freedom (beyond 30, the
    value at the next tabulated df below: 2.042 / 2.021 / 2.000 / 1.980 from 30 / 40 / 60 / 120)."""
    if df < 1:
        return math.inf
    if df <= len(T975):
        return T975[df - 1]
    return 2.042 if df < 40 else 2.021 if df < 60 else 2.000 if df < 120 else 1.980


@dataclass(frozen=True)
class Point:
    """One swept value: top-1 of each seed's training."""

    value: Any
    seeds: tuple[int, ...]
    top1: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.top1)

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (NaN with one seed)."""
        return statistics.stdev(self.top1) if len(self.top1) > 1 else math.nan


@dataclass(frozen=True)
class Verdict:
    claim: str
    outcome: Outcome
    evidence: str  # the differences it rests on, in points


def by_value(name: str, records: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records of one series grouped by their value of ``name`` (first-seen order), each
    group sorted by seed."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(repr(record["trial"]["overrides"][name]), []).append(record)
    return [
        sorted(members, key=lambda r: int(r["trial"]["train"]["seed"]))
        for members in groups.values()
    ]


def points(name: str, records: Sequence[dict[str, Any]]) -> list[Point]:
    """One :class:`Point` per group of :func:`by_value`."""
    return [
        Point(
            members[0]["trial"]["overrides"][name],
            tuple(int(r["trial"]["train"]["seed"]) for r in members),
            tuple(float(r["top1"]) for r in members),
        )
        for members in by_value(name, records)
    ]


@dataclass(frozen=True)
class Noise:
    """Seed-to-seed standard deviation of top-1, pooled over points, and its degrees of freedom."""

    std: float
    df: int


def pooled(pts: Sequence[Point]) -> Noise | None:
    """The seed noise pooled over ``pts`` (None when no point has two seeds)."""
    df = sum(len(p.top1) - 1 for p in pts)
    if df < 1:
        return None
    squares = sum((len(p.top1) - 1) * p.std**2 for p in pts if len(p.top1) > 1)
    return Noise(math.sqrt(squares / df), df)


def difference(a: Point, b: Point, noise: Noise | None = None) -> tuple[float, float]:
    """``mean(a) - mean(b)`` and its standard error from ``noise`` (default: pooled over the two
    points); NaN when either point has one seed."""
    noise = noise if noise is not None else pooled([a, b])
    if noise is None or len(a.top1) < 2 or len(b.top1) < 2:
        return a.mean - b.mean, math.nan
    return a.mean - b.mean, noise.std * math.sqrt(1 / len(a.top1) + 1 / len(b.top1))


def sign(a: Point, b: Point, noise: Noise | None = None) -> int | None:
    """+1 / -1: ``a`` significantly above / below ``b``; 0: not significant; None: one seed."""
    noise = noise if noise is not None else pooled([a, b])
    d, se = difference(a, b, noise)
    if math.isnan(se) or noise is None:
        return None
    if se == 0:
        return 0 if d == 0 else (1 if d > 0 else -1)
    return 0 if abs(d) <= critical(noise.df) * se else (1 if d > 0 else -1)


def _text(a: Point, b: Point, noise: Noise | None) -> str:
    d, se = difference(a, b, noise)
    interval = "(one seed)" if math.isnan(se) else f"± {100 * se:.2f}"
    return f"{a.value} − {b.value}: {100 * d:+.2f} {interval}"


def _method(noise: Noise | None) -> str:
    if noise is None:
        return " (points)"
    return (
        f" (points, ± one standard error from the seed std pooled over the series' points, "
        f"{100 * noise.std:.2f} points with {noise.df} df; significant beyond "
        f"{critical(noise.df):.2f} standard errors)"
    )


def _at(pts: Sequence[Point], value: float) -> Point | None:
    return next((p for p in pts if _number(p.value) == value), None)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rise_then_flat(
    claim: str, low: Point, knee: Point, high: Point, noise: Noise | None
) -> Verdict:
    """Holds when ``knee`` beats ``low`` and ``high`` does not beat ``knee``."""
    rise, tail = sign(knee, low, noise), sign(high, knee, noise)
    evidence = f"{_text(knee, low, noise)}; {_text(high, knee, noise)}" + _method(noise)
    if tail == 1 or rise == -1:
        return Verdict(claim, "does not hold", evidence)
    if rise == 1 and tail in (0, -1):
        return Verdict(claim, "holds", evidence)
    return Verdict(claim, "inconclusive", evidence)


CLAIMS = {
    "squeeze_ratio": "accuracy rises with SR and flattens from about 0.5–0.75 (Fig. 3a)",
    "pct_3x3": "accuracy plateaus from about 50 % 3x3 filters (Fig. 3b)",
    "bypass": "simple bypass beats none, complex lies between them (Table 3)",
}
NEEDS = {
    "squeeze_ratio": "a point below the knee, the knee (0.75 or 0.5) and a point above it",
    "pct_3x3": "a point below 0.5, 0.5 itself and a point above it",
    "bypass": "none, simple and complex",
}


def sweep_verdict(name: str, pts: Sequence[Point]) -> Verdict | None:
    """The paper's claim about the ``name`` series (None if it makes none): "inconclusive",
    saying which points are missing, until the series has the points the claim compares."""
    if name not in CLAIMS:
        return None
    verdict = _sweep_verdict(name, pts, pooled(pts))
    if verdict is None:
        have = ", ".join(str(p.value) for p in pts) or "none"
        evidence = f"not enough points yet: the claim needs {NEEDS[name]}; so far {have}"
        return Verdict(CLAIMS[name], "inconclusive", evidence)
    return verdict


def _sweep_verdict(name: str, pts: Sequence[Point], noise: Noise | None) -> Verdict | None:
    numeric = sorted((p for p in pts if _number(p.value) is not None), key=lambda p: p.value)
    if name == "squeeze_ratio" and len(numeric) >= 3:
        knee = _at(numeric, 0.75) or _at(numeric, 0.5)
        if knee is not None and knee not in (numeric[0], numeric[-1]):
            return _rise_then_flat(CLAIMS[name], numeric[0], knee, numeric[-1], noise)
    if name == "pct_3x3" and len(numeric) >= 3:
        knee = _at(numeric, 0.5)
        if knee is not None and knee not in (numeric[0], numeric[-1]):
            return _rise_then_flat(CLAIMS[name], numeric[0], knee, numeric[-1], noise)
    if name == "bypass":
        by = {str(p.value): p for p in pts}
        if {"none", "simple", "complex"} <= set(by):
            return _bypass_verdict(by["none"], by["simple"], by["complex"], noise)
    return None


def _bypass_verdict(none: Point, simple: Point, complex_: Point, noise: Noise | None) -> Verdict:
    claim = CLAIMS["bypass"]
    pairs = ((simple, none), (complex_, none), (simple, complex_))
    evidence = "; ".join(_text(a, b, noise) for a, b in pairs) + _method(noise)
    beats, below = sign(simple, none, noise), sign(complex_, none, noise)
    above = sign(complex_, simple, noise)
    if beats == -1 or below == -1 or above == 1:
        return Verdict(claim, "does not hold", evidence)
    if beats == 1 and below is not None and above is not None:
        return Verdict(claim, "holds", evidence)
    return Verdict(claim, "inconclusive", evidence)


def gain_verdict(claim: str, gains: Sequence[float]) -> Verdict:
    """A claim that a paired gain (one per seed, in points) is positive: Student's t with
    ``len(gains) - 1`` degrees of freedom."""
    if len(gains) < 2:
        return Verdict(claim, "inconclusive", f"{len(gains)} seed: no interval")
    mean, se = statistics.fmean(gains), statistics.stdev(gains) / math.sqrt(len(gains))
    t = critical(len(gains) - 1)
    evidence = (
        f"mean gain {mean:+.2f} ± {se:.2f} points over {len(gains)} seeds (significant beyond "
        f"{t:.2f} standard errors)"
    )
    if abs(mean) <= t * se:
        return Verdict(claim, "inconclusive", evidence)
    return Verdict(claim, "holds" if mean > 0 else "does not hold", evidence)
