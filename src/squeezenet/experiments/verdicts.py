"""Seeds aggregated per design point, and a verdict per paper claim from their intervals.

A sweep trains each point once per seed. :func:`points` groups a series' records by the swept
value: mean and sample standard deviation of top-1 over the seeds. A claim compares two points
by the difference of their means against its standard error ``sqrt(s_a^2/n_a + s_b^2/n_b)``:
*significant* when the difference is more than :data:`Z` standard errors away from zero. A
verdict is "holds" or "does not hold" only on significant differences; anything else, or any
point with fewer than two seeds, is "inconclusive".
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Z = 2.0  # standard errors for a difference to count (about 95 %)
Outcome = Literal["holds", "does not hold", "inconclusive"]


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


def difference(a: Point, b: Point) -> tuple[float, float]:
    """``mean(a) - mean(b)`` and its standard error (NaN when either has one seed)."""
    se = math.sqrt(a.std**2 / len(a.top1) + b.std**2 / len(b.top1))
    return a.mean - b.mean, se


def sign(a: Point, b: Point) -> int | None:
    """+1 / -1: ``a`` significantly above / below ``b``; 0: not significant; None: one seed."""
    d, se = difference(a, b)
    if math.isnan(se):
        return None
    if se == 0:
        return 0 if d == 0 else (1 if d > 0 else -1)
    return 0 if abs(d) <= Z * se else (1 if d > 0 else -1)


def _text(a: Point, b: Point) -> str:
    d, se = difference(a, b)
    interval = "(one seed)" if math.isnan(se) else f"± {100 * se:.2f}"
    return f"{a.value} − {b.value}: {100 * d:+.2f} {interval}"


def _at(pts: Sequence[Point], value: float) -> Point | None:
    return next((p for p in pts if _number(p.value) == value), None)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rise_then_flat(claim: str, low: Point, knee: Point, high: Point) -> Verdict:
    """Holds when ``knee`` beats ``low`` and ``high`` does not beat ``knee``."""
    rise, tail = sign(knee, low), sign(high, knee)
    evidence = f"{_text(knee, low)}; {_text(high, knee)} (points, ± one standard error)"
    if tail == 1 or rise == -1:
        return Verdict(claim, "does not hold", evidence)
    if rise == 1 and tail in (0, -1):
        return Verdict(claim, "holds", evidence)
    return Verdict(claim, "inconclusive", evidence)


def sweep_verdict(name: str, pts: Sequence[Point]) -> Verdict | None:
    """The paper's claim about the ``name`` series, if it makes one and the points are there."""
    numeric = sorted((p for p in pts if _number(p.value) is not None), key=lambda p: p.value)
    if name == "squeeze_ratio" and len(numeric) >= 3:
        knee = _at(numeric, 0.75) or _at(numeric, 0.5)
        if knee is not None and knee not in (numeric[0], numeric[-1]):
            claim = "accuracy rises with SR and flattens from about 0.5–0.75 (Fig. 3a)"
            return _rise_then_flat(claim, numeric[0], knee, numeric[-1])
    if name == "pct_3x3" and len(numeric) >= 3:
        knee = _at(numeric, 0.5)
        if knee is not None and knee not in (numeric[0], numeric[-1]):
            claim = "accuracy plateaus from about 50 % 3x3 filters (Fig. 3b)"
            return _rise_then_flat(claim, numeric[0], knee, numeric[-1])
    if name == "bypass":
        by = {str(p.value): p for p in pts}
        if {"none", "simple", "complex"} <= set(by):
            return _bypass_verdict(by["none"], by["simple"], by["complex"])
    return None


def _bypass_verdict(none: Point, simple: Point, complex_: Point) -> Verdict:
    claim = "simple bypass beats none, complex lies between them (Table 3)"
    evidence = (
        "; ".join([_text(simple, none), _text(complex_, none), _text(simple, complex_)])
        + " (points, ± one standard error)"
    )
    beats, below, above = sign(simple, none), sign(complex_, none), sign(complex_, simple)
    if beats == -1 or below == -1 or above == 1:
        return Verdict(claim, "does not hold", evidence)
    if beats == 1 and below is not None and above is not None:
        return Verdict(claim, "holds", evidence)
    return Verdict(claim, "inconclusive", evidence)


def gain_verdict(claim: str, gains: Sequence[float]) -> Verdict:
    """A claim that a paired gain (one per seed, in points) is positive."""
    if len(gains) < 2:
        return Verdict(claim, "inconclusive", f"{len(gains)} seed: no interval")
    mean, se = statistics.fmean(gains), statistics.stdev(gains) / math.sqrt(len(gains))
    evidence = f"mean gain {mean:+.2f} ± {se:.2f} points over {len(gains)} seeds"
    if abs(mean) <= Z * se:
        return Verdict(claim, "inconclusive", evidence)
    return Verdict(claim, "holds" if mean > 0 else "does not hold", evidence)
