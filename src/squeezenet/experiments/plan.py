"""Per-layer sparsity and bit widths chosen from a sensitivity analysis within an accuracy budget.

The model: each layer's top-1 loss at a sparsity and at a bit width is what the sensitivity
sweep measured for that layer alone, made monotone (a more aggressive setting never counts as
less harmful than a milder one) and clipped at zero; the losses of different layers and of
pruning and quantization add up. Starting from every layer unpruned at its widest measured bit
width, a greedy search repeatedly takes the move with the most estimated bytes saved per point
of predicted loss until the budget is spent. The additivity is an approximation, so the plan
is a starting point that ``squeezenet compress --policy PLAN`` turns into a real file whose
accuracy is then measured; the plan records its prediction for that comparison.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from squeezenet.experiments.sensitivity import Kind, SensitivityResult

POLICY_FORMAT = "squeezenet-policy"
POLICY_VERSION = 1


@dataclass(frozen=True)
class LayerPlan:
    layer: str
    prefix: str
    numel: int
    sparsity: float  # target sparsity (the layer's own zeros count); the current one = no pruning
    bits: int
    predicted_drop: float  # points of top-1, pruning + quantization, from the sweep
    estimated_bytes: int


@dataclass(frozen=True)
class Plan:
    max_drop: float
    layers: tuple[LayerPlan, ...]
    baseline_top1: float
    images: int

    @property
    def predicted_drop(self) -> float:
        return sum(layer.predicted_drop for layer in self.layers)

    @property
    def estimated_bytes(self) -> int:
        return sum(layer.estimated_bytes for layer in self.layers)

    def to_policy(self) -> dict[str, Any]:
        """The policy document ``squeezenet compress --policy FILE`` reads (prune + bits)."""
        return {
            "format": POLICY_FORMAT,
            "version": POLICY_VERSION,
            "prune": {"layers": {layer.layer: round(layer.sparsity, 4) for layer in self.layers}},
            "bits": {layer.layer: layer.bits for layer in self.layers},
            "plan": {
                "max_drop_points": self.max_drop,
                "predicted_drop_points": round(self.predicted_drop, 3),
                "estimated_bytes": self.estimated_bytes,
                "baseline_top1": self.baseline_top1,
                "images": self.images,
                "layers": [asdict(layer) for layer in self.layers],
            },
        }


def _h2(p: float) -> float:
    return 0.0 if p <= 0.0 or p >= 1.0 else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def estimate_bytes(numel: int, sparsity: float, bits: int) -> int:
    """Rough coded size of a layer: codes at ``bits`` per kept weight, the positions at the
    entropy of the keep-mask, a float32 codebook. Only for ranking moves; files are measured."""
    kept = numel * (1.0 - sparsity)
    positions = numel * _h2(sparsity) if sparsity > 0 else 0.0
    return math.ceil((kept * bits + positions) / 8 + 4 * min(1 << bits, kept))


def _lossless_bits(distinct: int) -> int:
    """The narrowest width (1..16) whose codebook holds ``distinct`` values, else 16."""
    return min(16, max(1, math.ceil(math.log2(max(distinct, 2)))))


def _envelope(points: list[tuple[float, float]]) -> dict[float, float]:
    """Setting -> monotone non-negative drop; ``points`` ordered mildest first."""
    out, worst = {}, 0.0
    for setting, drop in points:
        worst = max(worst, drop)
        out[setting] = worst
    return out


def _curves(result: SensitivityResult, layer: str, kind: Kind) -> dict[float, float]:
    probes = result.curve(layer, kind)
    if kind == "prune":
        ordered = sorted(probes, key=lambda p: p.value)
    else:
        ordered = sorted(probes, key=lambda p: -p.value)
    return _envelope([(p.value, result.drop(p) if p.changed else 0.0) for p in ordered])


def plan_from_sensitivity(result: SensitivityResult, max_drop: float) -> Plan:
    """Choose a sparsity and a bit width per layer so the predicted top-1 loss stays within
    ``max_drop`` points (see the module docstring for the model).

    Raises:
        ValueError: the sweep has no bit-width probes (the plan needs them) or ``max_drop < 0``.
    """
    if max_drop < 0:
        raise ValueError(f"--max-drop: expected >= 0 points, got {max_drop}")
    if not result.config.bits:
        raise ValueError("planning needs a sensitivity run with --bits (it sets the bit widths)")
    states: dict[str, tuple[float, int]] = {}
    options: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    info = {layer["name"]: layer for layer in result.layers}
    for name, layer in info.items():
        prune, bits = _curves(result, name, "prune"), _curves(result, name, "bits")
        current = float(layer["sparsity"])
        prune = {s: d for s, d in prune.items() if s > current + 1e-9}
        prune[current] = 0.0
        # Start where nothing changes: the layer as it is, at the width that holds all its
        # values (8 for the published 8-bit weights; float layers start at the 16-bit limit).
        start_bits = _lossless_bits(int(layer["distinct"]) - (1 if current > 0 else 0))
        bits = {b: d for b, d in bits.items() if b < start_bits}
        bits[float(start_bits)] = 0.0
        options[name] = (prune, bits)
        states[name] = (current, start_bits)

    def cost(name: str, state: tuple[float, int]) -> tuple[float, int]:
        prune, bits = options[name]
        drop = prune[state[0]] + bits[float(state[1])]
        return drop, estimate_bytes(int(info[name]["numel"]), state[0], state[1])

    total = sum(cost(name, state)[0] for name, state in states.items())
    while True:
        best: tuple[float, str, tuple[float, int], float] | None = None
        for name, state in states.items():
            drop, size = cost(name, state)
            prune, bits = options[name]
            for s in prune:
                for b in bits:
                    if s < state[0] or b > state[1] or (s, b) == state:
                        continue
                    new_drop, new_size = cost(name, (s, int(b)))
                    gain, extra = size - new_size, new_drop - drop
                    if gain <= 0 or total + extra > max_drop + 1e-9:
                        continue
                    score = gain / max(extra, 1e-3)
                    if best is None or score > best[0]:
                        best = (score, name, (s, int(b)), extra)
        if best is None:
            break
        _, name, state, extra = best
        states[name] = state
        total += extra
    layers = []
    for name, state in states.items():
        drop, size = cost(name, state)
        layers.append(
            LayerPlan(
                name,
                str(info[name]["prefix"]),
                int(info[name]["numel"]),
                state[0],
                state[1],
                round(drop, 3),
                size,
            )
        )
    return Plan(max_drop, tuple(layers), result.baseline["top1"], result.images)
