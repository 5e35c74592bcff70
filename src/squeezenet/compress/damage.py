"""Whether quantization wrecked a model: the share of each layer's non-zero weights it kept, and
the signal-to-quantization-noise ratio (SQNR) of the network's weights.

Quantization (k-means, ECSQ or the trellis) **wrecks** a model when

1. a layer keeps fewer than :data:`MIN_KEPT` (half) of the non-zero weights it was given, or
2. the network's weight SQNR falls below :data:`MIN_NETWORK_SQNR_DB` (8 dB), where
   ``network SQNR = -10 log10( sum over layers of |w - q|**2 / |w|**2 )``, ``w`` a layer's
   weights before and ``q`` after quantization.

Both compare the quantizer's output with its input, the model after the pruning policy: pruning
is ``--policy``'s decision and is not counted here. Both need the weights only, so a byte
search can test every probe in milliseconds. Where the quantizer weighs errors by activation
importance (the trellis with ``--calib``), so do both: a weight whose input never fires changes
no output, and dropping it is no damage.

Why these lines:

* Kept weights. ECSQ and the trellis zero a weight when its bits cost more than its error: a
  rate decision, made without retraining. Magnitude pruning without retraining loses accuracy
  fast once about half of a layer's weights go (Han et al., "Learning both Weights and
  Connections", 2015, Fig. 5), and the published weights were already pruned once with
  retraining (Deep Compression Sec. 2); a quantizer that then drops more of a layer's
  survivors than it keeps has removed weights the network was trained to need.
* Network SQNR. For a layer ``y = W x`` whose input is uncorrelated with the weight error
  ``E``, ``E|E x|**2 / E|W x|**2 ~ |E|**2 / |W|**2``: its output's noise-to-signal ratio (NSR)
  is its weights'. Independent noise injected by each layer adds up at the output, so the sum
  of the layers' NSRs is a first-order estimate of the output's (amplification only makes it
  worse): one number for the whole network, in which 26 moderately coarse layers can wreck a
  model that no single layer does. Where to draw the line was measured on proxy images, never
  on evaluation images (``decisions/wreck_from_proxies.py``: 256 CIFAR-10 training images at
  the model's input size; docs/RESULTS.md). Of 18 quantizations of the published SqueezeNet
  (k-means at 4-8 bits, ECSQ and the trellis at 6 and 7 lambdas), each one at 7.1 dB or below
  agreed with the uncompressed model's top-1 answer on at most 9.4 % of the images (mean KL
  >= 1.1 nats: the answers of another model), each one at 8.6 dB or above on at least 24.6 %
  (KL <= 0.81); 8 dB lies between. The lossless 8-bit file scores infinity, ``--bits mixed``
  15.9 dB, ``--bits 6`` 11.0 dB, ``--bits 4`` 3.4 dB.

A byte target that can only be met by wrecking the model is refused
(:mod:`squeezenet.compress.rate`); a compression without a target that wrecks it is reported
with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from squeezenet.compress.prune import layer_names

MIN_KEPT = 0.5  # share of the non-zero weights it was given that every layer must keep
MIN_NETWORK_SQNR_DB = 8.0  # network weight SQNR floor (see the module docstring)


@dataclass(frozen=True)
class LayerDamage:
    """What quantization did to one layer's weights (sums weighted by importance, if given)."""

    name: str  # the Table 1 name where there is one (conv10), else the state-dict prefix
    kept: float  # share of the non-zero weights given that are still non-zero (1.0: none given)
    signal: float  # sum of squared weights before
    noise: float  # sum of squared changes

    @property
    def nsr(self) -> float:
        """Noise-to-signal ratio of the weights (0.0 for a layer of zeros)."""
        return self.noise / self.signal if self.signal > 0 else 0.0

    @property
    def sqnr_db(self) -> float:
        return _db(self.nsr)


@dataclass(frozen=True)
class Damage:
    """Per-layer damage of a quantization and the verdict on the whole model."""

    layers: tuple[LayerDamage, ...]

    @property
    def network_sqnr_db(self) -> float:
        """``-10 log10`` of the summed layer NSRs (inf when nothing changed)."""
        return _db(sum(layer.nsr for layer in self.layers))

    def reasons(self) -> list[str]:
        """Why the model counts as wrecked, most damaged layer first (empty: it does not)."""
        found = [
            f"layer {layer.name} keeps {_percent(layer.kept)} of its non-zero weights"
            for layer in sorted(self.layers, key=lambda layer: layer.kept)
            if layer.kept < MIN_KEPT
        ]
        if self.network_sqnr_db < MIN_NETWORK_SQNR_DB:
            worst = max(self.layers, key=lambda layer: layer.nsr)
            found.append(
                f"its weights' SQNR over all layers is {self.network_sqnr_db:.1f} dB, under "
                f"{MIN_NETWORK_SQNR_DB:.0f} dB; worst layer {worst.name} at {worst.sqnr_db:.1f} dB"
            )
        return found

    @property
    def wreck(self) -> str | None:
        """The main reason the model counts as wrecked, or None."""
        reasons = self.reasons()
        return reasons[0] if reasons else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "network_sqnr_db": _finite(self.network_sqnr_db),
            "min_kept": min((layer.kept for layer in self.layers), default=1.0),
            "wrecked": self.reasons(),
        }


def weights_before(model: nn.Module) -> dict[str, np.ndarray]:
    """Every conv / linear layer's effective weights (prune masks applied), by state-dict
    prefix: what :func:`assess` compares the quantized model with. Call before quantizing."""
    return {
        name: cast(torch.Tensor, module.weight).detach().cpu().numpy().copy()
        for name, _, module in layer_names(model)
    }


def assess(
    before: Mapping[str, np.ndarray],
    model: nn.Module,
    importance: Mapping[str, np.ndarray] | None = None,
) -> Damage:
    """The damage of every layer of ``model`` that ``before`` holds (:func:`weights_before`).

    ``importance``: per layer, a per-weight cost of a unit of squared error (the quantizer's own,
    e.g. :func:`squeezenet.compress.weighting.importance_from`): squared errors, squared weights and
    kept weights are then counted by it, so a weight on an input channel that never fires
    (importance ~0) changes no output and counts for nothing. None: every weight counts 1.
    """
    rows = []
    for name, names, module in layer_names(model):
        if name not in before:
            continue
        w = before[name].astype(np.float64)
        q = cast(torch.Tensor, module.weight).detach().cpu().numpy().astype(np.float64)
        h = np.ones_like(w) if importance is None or name not in importance else importance[name]
        given = float(np.sum(h[w != 0]))
        kept = float(np.sum(h[(w != 0) & (q != 0)])) / given if given > 0 else 1.0
        signal, noise = float(np.sum(h * w * w)), float(np.sum(h * (w - q) ** 2))
        rows.append(LayerDamage(names[-1] or type(module).__name__, kept, signal, noise))
    return Damage(tuple(rows))


def _db(nsr: float) -> float:
    return math.inf if nsr <= 0 else -10 * math.log10(nsr)


def _finite(value: float) -> float | None:
    """JSON has no infinity: None stands for it."""
    return value if math.isfinite(value) else None


def _percent(share: float) -> str:
    """``0.031 -> '3 %'``; below 1 %, one significant figure (``'0.08 %'``), never ``'0 %'``
    unless nothing is left."""
    if share >= 0.01 or share == 0:
        return f"{share * 100:.0f} %"
    return f"{share * 100:.1g} %"
