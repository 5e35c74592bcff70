"""Quantization to a rate: one ``lambda``, or the ``lambda`` that meets a byte target, found by
bisection on the real encoded size, for any rate quantizer (:mod:`squeezenet.compress.quantizers`).

The size of a ``.sqz`` file falls as ``lambda`` rises (ECSQ trades squared error for bits), so a
bisection in log ``lambda`` finds the file of at most ``target_bytes`` that is closest to it:
each probe quantizes a copy of the model and encodes it, about a second for SqueezeNet v1.0.
The damage rises with ``lambda`` too: a target met only by a ``lambda`` that wrecks the model
(:mod:`squeezenet.compress.damage`) is an error naming the smallest file that does not.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from squeezenet.compress.damage import assess, weights_before
from squeezenet.compress.quantizers import QuantizeJob, Quantizer
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.errors import ConfigError

TOLERANCE = 0.01  # a target is met by a file of (1 - TOLERANCE) * target .. target bytes
MAX_PROBES = 48  # encodes a search may take
LAMBDA_START = 1e-6  # squared-error units per bit: the first probe
LAMBDA_FLOOR = 1e-12  # below this lambda ECSQ is k-means with a zero level
# Where the target's lambda wrecks the model, the largest lambda that does not is bisected to a
# factor of 1.01 (a file size within a fraction of a percent), in at most 12 more encodes.
WRECK_RESOLUTION = 1.01
MAX_WRECK_PROBES = 12
# The error then describes a wrecking file within 10 % below the target, found in <= 4 encodes.
DESCRIBE_WITHIN = 0.1
DESCRIBE_PROBES = 4


@dataclass(frozen=True)
class RateOutcome:
    """What the rate stage chose."""

    rate_lambda: float
    target_bytes: int | None
    probes: tuple[tuple[float, int], ...] = field(default=())  # (lambda, bytes) tried

    def to_dict(self) -> dict[str, object]:
        return {
            "rate_lambda": self.rate_lambda,
            "target_bytes": self.target_bytes,
            "probes": [list(p) for p in self.probes],
        }


def quantize_to_rate_(
    model: nn.Module,
    size_of: Callable[[nn.Module], int],
    quantizer: Quantizer,
    job: QuantizeJob,
    *,
    rate_lambda: float | None = None,
    target_bytes: int | None = None,
    advice: str = "",
) -> tuple[QuantizeReport, RateOutcome]:
    """Quantize ``model`` in place with a rate quantizer (ECSQ, the trellis...) at
    ``rate_lambda``, or at the lambda whose file is the largest of at most ``target_bytes``.

    Args:
        model: the (possibly pruned) model; changed in place.
        size_of: the encoded bytes of a quantized model (what the file will be).
        quantizer: a rate quantizer (:mod:`squeezenet.compress.quantizers`).
        job: what it is given besides lambda: bit caps, per-layer scales, per-weight
            importance, the cost of a codebook entry (each quantizer uses what it needs).
        rate_lambda: a fixed trade-off (squared-error units per bit).
        target_bytes: a byte target instead (exactly one of the two is given).
        advice: appended to the fix a :class:`TargetWrecksError` suggests (e.g. another codec).

    Raises:
        ConfigError: neither or both given, or no lambda reaches ``target_bytes``.
        TargetWrecksError: only lambdas that wreck the model
            (:mod:`squeezenet.compress.damage`) reach ``target_bytes``.
    """
    if (rate_lambda is None) == (target_bytes is None):
        raise ConfigError("give exactly one of --rate-lambda and --target-bytes")
    probes: list[tuple[float, int]] = []

    def quantize(trial: nn.Module, lam: float, given: QuantizeJob = job) -> QuantizeReport:
        return quantizer.quantize_(trial, dataclasses.replace(given, rate_lambda=lam))

    if target_bytes is not None:
        prober = _Prober(model, size_of, quantize, probes, job.importance)
        if job.sequential is None:
            rate_lambda = _search(prober, target_bytes, advice)
        else:  # searched with the rest of the job standing in, then met by a few probes
            fast = dataclasses.replace(job, sequential=None)
            stand_in = _Prober(
                model, size_of, lambda t, lam: quantize(t, lam, fast), [], job.importance
            )
            start = _search(stand_in, target_bytes, advice)
            rate_lambda = _refine(prober, target_bytes, start, stand_in) or _search(
                prober, target_bytes, advice
            )
    assert rate_lambda is not None
    report = quantize(model, rate_lambda)
    return report, RateOutcome(rate_lambda, target_bytes, tuple(probes))


REFINE_PROBES = 3  # probes of the real quantizer after a stand-in's search


def _refine(prober: _Prober, target: int, start: float, stand_in: _Prober) -> float | None:
    """From the lambda ``start`` a stand-in quantizer found for ``target``, at most
    :data:`REFINE_PROBES` probes of the real one, each scaling lambda by the stand-in's size
    slope (d log bytes / d log lambda near ``start``), aiming at the middle of the tolerance.
    None: no probe met the target whole within the tolerance (the caller searches in full)."""
    near = sorted(stand_in.sizes, key=lambda lam: abs(math.log(lam / start)))[:2]
    sizes, slope = stand_in.sizes, -0.1
    if len(near) == 2 and sizes[near[0]] != sizes[near[1]]:
        a, b = near
        slope = math.log(sizes[a] / sizes[b]) / math.log(a / b)
    slope = min(slope, -0.01)  # bytes fall as lambda rises
    aim = (1 - TOLERANCE / 2) * target
    lam = start
    for _ in range(REFINE_PROBES):
        size = prober.size(lam)
        if (1 - TOLERANCE) * target <= size <= target and prober.wreck(lam) is None:
            return lam
        lam *= (size / aim) ** (-1 / slope)
    return None


class TargetWrecksError(ConfigError):
    """A byte target that no quantization meets without wrecking the model
    (:mod:`squeezenet.compress.damage`); the message names the smallest file that does not.

    Attributes:
        target: the byte target.
        at_bytes, reason: the wrecked file nearest the target (below it when one was found)
            and why it is wrecked.
        smallest: the smallest file found that does not wreck the model (None: none found).
    """

    def __init__(
        self, target: int, at_bytes: int, reason: str, smallest: int | None, advice: str = ""
    ) -> None:
        if at_bytes <= target:
            problem = f"can only be met by wrecking the model (at {at_bytes:,} bytes: {reason})"
        else:
            problem = f"cannot be met: even a wrecked model takes {at_bytes:,} bytes ({reason})"
        if smallest is None:
            fix = "every quantization tried wrecks the model; raise --bits"
        else:
            fix = (
                f"the smallest file that does not wreck it is {smallest:,} bytes: "
                f"raise --target-bytes{advice}"
            )
        super().__init__(f"--target-bytes {target:,} {problem}; {fix}")
        self.target, self.at_bytes, self.reason, self.smallest = target, at_bytes, reason, smallest


@dataclass
class _Prober:
    """Quantizes copies of ``model`` at a lambda, once each: the file size and the damage."""

    model: nn.Module
    size_of: Callable[[nn.Module], int]
    quantize: Callable[[nn.Module, float], QuantizeReport]
    probes: list[tuple[float, int]]  # (lambda, bytes) in the order tried
    importance: Mapping[str, np.ndarray] | None  # the quantizer's error weights, if any
    wrecks: dict[float, str | None] = field(default_factory=dict)  # lambda -> why wrecked
    sizes: dict[float, int] = field(default_factory=dict)  # lambda -> bytes

    def __post_init__(self) -> None:
        self.before = weights_before(self.model)  # what each probe's damage is measured from

    def size(self, lam: float) -> int:
        if lam not in self.sizes:
            trial = copy.deepcopy(self.model)
            self.quantize(trial, lam)
            self.sizes[lam] = self.size_of(trial)
            self.wrecks[lam] = assess(self.before, trial, self.importance).wreck
            self.probes.append((lam, self.sizes[lam]))
        return self.sizes[lam]

    def wreck(self, lam: float) -> str | None:
        self.size(lam)
        return self.wrecks[lam]


def _search(prober: _Prober, target: int, advice: str) -> float:
    """The lambda whose file is the largest of at most ``target`` bytes and does not wreck the
    model. A larger lambda gives a smaller file and more damage, so a wrecked probe larger
    than the target proves that no lambda meets it whole."""
    met = _meet(prober, target)
    if met is not None and prober.wreck(met) is None:
        return met
    return _within_wreck_limit(prober, target, advice)


def _meet(prober: _Prober, target: int) -> float | None:
    """Bisection in log lambda for the file of at most ``target`` bytes closest to it (None: a
    wrecked probe was still larger than the target)."""
    size, probes = prober.size, prober.probes
    lo, hi = LAMBDA_START, LAMBDA_START  # bracket: size(lo) > target >= size(hi)
    while size(hi) > target:
        if prober.wreck(hi) is not None:
            return None
        lo, hi = hi, hi * 8
        stalled = len(probes) >= 3 and len({b for _, b in probes[-3:]}) == 1
        if stalled or len(probes) >= MAX_PROBES:  # every weight already on the zero level
            raise ConfigError(
                f"--target-bytes {target:,}: the coarsest quantization tried is larger "
                f"({probes[-1][1]:,} bytes); raise the target or prune first (--policy)"
            )
    while size(lo) <= target:
        if lo < LAMBDA_FLOOR:
            return lo  # even (almost) lossless sharing fits
        lo, hi = lo / 8, lo
    while len(probes) < MAX_PROBES and size(hi) < (1 - TOLERANCE) * target:
        mid = math.sqrt(lo * hi)
        if size(mid) <= target:
            hi = mid
        elif prober.wreck(mid) is not None:
            return None
        else:
            lo = mid
    return hi


def _within_wreck_limit(prober: _Prober, target: int, advice: str) -> float:
    """The target's lambda wrecks the model: bisect for the largest lambda that does not
    (to :data:`WRECK_RESOLUTION`), then take the non-wrecking probe closest below the target,
    or raise :class:`TargetWrecksError` with the smallest non-wrecking file found."""
    wrecked = [lam for lam, why in prober.wrecks.items() if why is not None]
    bad = min(wrecked)
    ok = max((lam for lam, why in prober.wrecks.items() if why is None), default=None)
    while ok is None and bad >= LAMBDA_FLOOR:
        bad, ok = (bad / 8, None) if prober.wreck(bad / 8) is not None else (bad, bad / 8)
    for _ in range(MAX_WRECK_PROBES):
        if ok is None or bad / ok <= WRECK_RESOLUTION:
            break
        mid = math.sqrt(ok * bad)
        bad, ok = (mid, ok) if prober.wreck(mid) is not None else (bad, mid)
    whole = {lam: b for lam, b in prober.sizes.items() if prober.wrecks[lam] is None}
    fits = [lam for lam, b in whole.items() if b <= target]
    if fits:
        return max(fits, key=lambda lam: (whole[lam], -lam))
    at = _wrecked_at(prober, target)
    reason = prober.wrecks[at]
    assert reason is not None
    smallest = min(whole.values(), default=None)
    raise TargetWrecksError(target, prober.sizes[at], reason, smallest, advice)


def _wrecked_at(prober: _Prober, target: int) -> float:
    """A wrecked probe just below the target: what meeting it would do to the model. Goes on
    coarser (x 8) if no probe has reached the target yet, then bisects a few times towards it."""
    lam = max(lam for lam, why in prober.wrecks.items() if why is not None)
    walked = [prober.size(lam)]
    while walked[-1] > target and len(prober.probes) < MAX_PROBES:
        if len(walked) >= 3 and len(set(walked[-3:])) == 1:
            break  # every weight on the zero level already: the target is out of reach
        lam *= 8
        walked.append(prober.size(lam))
    lo, hi = lam / 8, lam
    for _ in range(DESCRIBE_PROBES):
        if prober.size(hi) >= (1 - DESCRIBE_WITHIN) * target or prober.size(lo) <= target:
            break
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if prober.size(mid) <= target else (mid, hi)
    wrecked = [lam for lam, why in prober.wrecks.items() if why is not None]
    met = [lam for lam in wrecked if prober.sizes[lam] <= target]
    return max(met, key=prober.sizes.__getitem__) if met else max(wrecked)
