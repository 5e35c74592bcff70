"""One interface for every weight quantizer of ``compress``, and the registry the config and the
CLI derive their choices from.

A quantizer shares a model's conv / linear weights in place and reports what it did. Three ship
with the package: ``kmeans`` (Deep Compression Sec. 3: k-means per layer at a bit width),
``ecsq`` (entropy-constrained scalar quantization at a rate ``lambda``) and ``trellis``
(dependent quantization on a uniform grid, written as .sqz version-3 grid layers). A *rate*
quantizer takes ``lambda`` (squared error + ``lambda`` x bits); a byte target bisects ``lambda``
(:mod:`squeezenet.compress.rate`).

A new quantizer is a class with the attributes and the method of :class:`Quantizer`, passed to
:func:`register_quantizer`; ``CompressConfig(quantizer=its name)`` and ``compress --quantizer``
then select it. What it leaves in the model must export as a layer the format stores: a
weight-shared layer (:class:`squeezenet.compress.weight_sharing.WeightShare`), a grid layer, or
plain weights with at most 2**16 distinct values (shared losslessly on export).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np
from torch import nn

from squeezenet.compress.ecsq import LEVEL_BITS, ecsq_quantize_
from squeezenet.compress.trellis import trellis_quantize_
from squeezenet.compress.weight_sharing import BitsSpec, Init, QuantizeReport, quantize_
from squeezenet.errors import ConfigError

Weighting = Literal["activation", "layer", "hessian", "sequential"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)


@dataclass(frozen=True)
class QuantizeJob:
    """What a quantizer is given besides the model (each uses the fields it needs)."""

    bits: BitsSpec = 8  # the index width per layer (k-means: exact, ECSQ: the cap)
    rate_lambda: float | None = None  # rate quantizers: the trade-off, squared error per bit
    scales: Mapping[str, float] | None = None  # per-layer cost of a unit of squared error
    importance: Mapping[str, np.ndarray] | None = None  # per-weight error weights per layer
    # trellis: per layer, the error feedback factor (compress.trellis.feedback_factor)
    feedback: Mapping[str, np.ndarray] | None = None
    # trellis: quantize sequentially instead, ``sequential(model, rate_lambda)``
    # (compress.sequential.Sequential); a byte target is then searched with the rest of the
    # job (the feedback above) standing in, and met by a few sequential probes
    sequential: Callable[[nn.Module, float], QuantizeReport] | None = None
    level_bits: float = LEVEL_BITS  # what one codebook entry costs in the file
    init: Init = "linear"  # k-means initialisation
    iters: int = 300  # k-means Lloyd iterations
    seed: int = 0


class Quantizer(Protocol):
    """A weight quantizer: its name, what it needs, and the in-place quantization."""

    @property
    def name(self) -> str:
        """The spelling of ``--quantizer`` and ``CompressConfig.quantizer``."""

    @property
    def rate(self) -> bool:
        """True: quantizes at ``job.rate_lambda`` (given, or bisected to a byte target)."""

    @property
    def without_rate(self) -> str | None:
        """A rate quantizer's stand-in when no rate is given (None: a rate is required)."""

    @property
    def grid(self) -> bool:
        """True: writes grid layers (distillation refits each step; ``--calib`` corrects biases)."""

    @property
    def weightings(self) -> tuple[Weighting, ...]:
        """How ``--calib`` may weigh its errors; the first is the default."""

    def quantize_(self, model: nn.Module, job: QuantizeJob) -> QuantizeReport:
        """Quantize ``model``'s weights in place."""


@dataclass(frozen=True)
class KMeans:
    """Deep Compression's weight sharing: per layer, k-means with k = 2**bits."""

    name: str = "kmeans"
    rate: bool = False
    without_rate: str | None = None
    grid: bool = False
    weightings: tuple[Weighting, ...] = ()

    def quantize_(self, model: nn.Module, job: QuantizeJob) -> QuantizeReport:
        return quantize_(model, job.bits, init=job.init, iters=job.iters, seed=job.seed)


@dataclass(frozen=True)
class Ecsq:
    """Entropy-constrained scalar quantization: per layer, the levels and assignments that
    minimise squared error + lambda x bits, zero a level of its own (``compress.ecsq``)."""

    name: str = "ecsq"
    rate: bool = True
    without_rate: str | None = "kmeans"
    grid: bool = False
    weightings: tuple[Weighting, ...] = ("layer",)

    def quantize_(self, model: nn.Module, job: QuantizeJob) -> QuantizeReport:
        assert job.rate_lambda is not None
        return ecsq_quantize_(
            model, job.rate_lambda, bits=job.bits, scales=job.scales, level_bits=job.level_bits
        )


@dataclass(frozen=True)
class Trellis:
    """Dependent (trellis-coded) quantization on a uniform grid per layer (``compress.trellis``);
    ``bits`` does not apply."""

    name: str = "trellis"
    rate: bool = True
    without_rate: str | None = None
    grid: bool = True
    weightings: tuple[Weighting, ...] = ("activation", "layer", "hessian", "sequential")

    def quantize_(self, model: nn.Module, job: QuantizeJob) -> QuantizeReport:
        assert job.rate_lambda is not None
        if job.sequential is not None:
            return job.sequential(model, job.rate_lambda)
        return trellis_quantize_(
            model,
            job.rate_lambda,
            scales=job.scales,
            importance=job.importance,
            feedback=job.feedback,
        )


_QUANTIZERS: dict[str, Quantizer] = {}


def register_quantizer(quantizer: Quantizer) -> Quantizer:
    """Make ``quantizer`` selectable by its name; a name taken twice is a bug, not input."""
    if quantizer.name in _QUANTIZERS:
        raise ValueError(f"quantizer {quantizer.name!r} is already registered; pick another name")
    _QUANTIZERS[quantizer.name] = quantizer
    return quantizer


def quantizer_names() -> tuple[str, ...]:
    """The registered names, in registration order (the built-in ones first)."""
    return tuple(_QUANTIZERS)


def get_quantizer(name: str) -> Quantizer:
    """The quantizer registered as ``name``.

    Raises:
        ConfigError: no such quantizer (the message lists the known ones).
    """
    try:
        return _QUANTIZERS[name]
    except KeyError:
        known = ", ".join(quantizer_names())
        raise ConfigError(f"unknown quantizer {name!r}; known: {known}") from None


BUILT_IN: tuple[str, ...] = ("kmeans", "ecsq", "trellis")  # the names --help lists
for _builtin in (KMeans(), Ecsq(), Trellis()):
    register_quantizer(_builtin)
