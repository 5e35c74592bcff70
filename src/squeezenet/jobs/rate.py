"""Entropy-constrained quantization to a rate: one ``lambda``, or the ``lambda`` that meets a byte
target, found by bisection on the real encoded size (issue 11).

The size of a ``.sqz`` file falls as ``lambda`` rises (ECSQ trades squared error for bits), so a
bisection in log ``lambda`` finds the file of at most ``target_bytes`` that is closest to it:
each probe quantizes a copy of the model and encodes it, about a second for SqueezeNet v1.0.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from torch import nn

from squeezenet.compress.ecsq import LEVEL_BITS, ecsq_quantize_
from squeezenet.compress.proxy import ProxyConfig, ProxySampler
from squeezenet.compress.quantize import BitsSpec, QuantizeReport
from squeezenet.compress.rd import (
    ImportanceConfig,
    InputStats,
    ScalesConfig,
    input_statistics,
    layer_scales,
)
from squeezenet.compress.trellis import trellis_quantize_
from squeezenet.data.datasets import ArrayDataset
from squeezenet.data.registry import load_dataset
from squeezenet.errors import ConfigError, InputError
from squeezenet.io.weights import LoadedModel

TOLERANCE = 0.01  # a target is met by a file of (1 - TOLERANCE) * target .. target bytes
MAX_PROBES = 48  # encodes a search may take
LAMBDA_START = 1e-6  # squared-error units per bit: the first probe
LAMBDA_FLOOR = 1e-12  # below this lambda ECSQ is k-means with a zero level


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


def ecsq_to_rate_(
    model: nn.Module,
    size_of: Callable[[nn.Module], int],
    *,
    bits: BitsSpec,
    rate_lambda: float | None = None,
    target_bytes: int | None = None,
    scales: Mapping[str, float] | None = None,
    level_bits: float = LEVEL_BITS,
    quantizer: str = "ecsq",
    importance: Mapping[str, np.ndarray] | None = None,
) -> tuple[QuantizeReport, RateOutcome]:
    """Quantize ``model`` in place with ECSQ (or the trellis quantizer) at ``rate_lambda``, or
    at the lambda whose file is the largest of at most ``target_bytes``.

    Args:
        model: the (possibly pruned) model; changed in place.
        size_of: the encoded bytes of a quantized model (what the file will be).
        bits: the largest index width per layer.
        rate_lambda: a fixed trade-off (squared-error units per bit).
        target_bytes: a byte target instead (exactly one of the two is given).
        scales: per-layer cost of a unit of squared error (see squeezenet.compress.rd).
        level_bits: what one codebook entry costs in the file (float16 codebooks: 16 + 5).
        quantizer: ``"ecsq"`` or ``"trellis"`` (:mod:`squeezenet.compress.trellis`; ``bits``
            and ``level_bits`` do not apply to it).
        importance: trellis only: per-weight error weights within each layer
            (:func:`squeezenet.compress.rd.weight_importance`).

    Raises:
        ConfigError: neither or both given, or no lambda reaches ``target_bytes``.
    """
    if (rate_lambda is None) == (target_bytes is None):
        raise ConfigError("give exactly one of --rate-lambda and --target-bytes")
    probes: list[tuple[float, int]] = []
    quantize: Callable[[nn.Module, float], QuantizeReport]
    if quantizer == "trellis":
        quantize = partial(trellis_quantize_, scales=scales, importance=importance)
    else:
        quantize = partial(ecsq_quantize_, bits=bits, scales=scales, level_bits=level_bits)
    if target_bytes is not None:
        rate_lambda = _search(model, size_of, quantize, target_bytes, probes)
    assert rate_lambda is not None
    report = quantize(model, rate_lambda)
    return report, RateOutcome(rate_lambda, target_bytes, tuple(probes))


def _search(
    model: nn.Module,
    size_of: Callable[[nn.Module], int],
    quantize: Callable[[nn.Module, float], QuantizeReport],
    target: int,
    probes: list[tuple[float, int]],
) -> float:
    sizes: dict[float, int] = {}

    def size(lam: float) -> int:
        if lam not in sizes:
            trial = copy.deepcopy(model)
            quantize(trial, lam)
            sizes[lam] = size_of(trial)
            probes.append((lam, sizes[lam]))
        return sizes[lam]

    lo, hi = LAMBDA_START, LAMBDA_START  # bracket: size(lo) > target >= size(hi)
    while size(hi) > target:
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
        else:
            lo = mid
    return hi


def calibration_images(loaded: LoadedModel, data: str) -> ArrayDataset:
    """The unlabeled training split of dataset ``data`` (``--calib``): never evaluation images.

    Raises:
        InputError: the model has no preprocessing record, or ``data`` is not an in-memory set.
    """
    if loaded.preprocess is None:
        raise InputError(f"{loaded.path}: no preprocessing record, so proxy images cannot be made")
    proxy = load_dataset(data, "train")
    if not isinstance(proxy, ArrayDataset):
        raise InputError(f"--calib needs an in-memory image set such as CIFAR-10, got {data}")
    return proxy


def proxy_scales(
    loaded: LoadedModel, data: str, *, images: int = 128, seed: int = 0
) -> dict[str, float]:
    """Per-layer KL per unit of squared weight error (:func:`squeezenet.compress.rd.layer_scales`)
    on the unlabeled training split of dataset ``data`` (:func:`calibration_images`)."""
    proxy = calibration_images(loaded, data)
    assert loaded.preprocess is not None
    sampler = ProxySampler(proxy, loaded.preprocess, ProxyConfig(), channels_last=True)
    return layer_scales(loaded.model, sampler, ScalesConfig(images=images, seed=seed))


def proxy_input_stats(loaded: LoadedModel, data: str, *, seed: int = 0) -> InputStats:
    """Every layer's input-channel moments (:func:`squeezenet.compress.rd.input_statistics`) on
    2x2 mosaics of dataset ``data``'s training split: what the activation weighting and the
    bias correction of ``--calib`` need, in one pass."""
    proxy = calibration_images(loaded, data)
    assert loaded.preprocess is not None
    sampler = ProxySampler(proxy, loaded.preprocess, ProxyConfig(mix="mosaic"), channels_last=True)
    return input_statistics(loaded.model, sampler, ImportanceConfig(seed=seed))
