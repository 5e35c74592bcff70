"""Per-layer sparsity and bit widths chosen from a sensitivity analysis within an accuracy budget.

The cost model: each layer's cost at a sparsity and at a bit width is what the sensitivity
sweep measured for that layer alone, expressed in top-1 points through the cross-entropy loss
(``kappa x loss increase``, with ``kappa`` the median ratio of top-1 drop to loss increase over
the sweep's clearly harmful probes). The loss is used rather than the top-1 change because on a
few hundred images a top-1 change of one layer is mostly noise (one image = 0.2 points), and a
planner that trusts noise takes every probe that happened to score above baseline as free and
stacks dozens of them. Costs are made monotone (a more aggressive setting never counts as less
harmful than a milder one); costs of layers and of pruning and quantization add up. Starting
from every layer unchanged, a greedy search takes the move with the most estimated bytes saved
per point of cost until the budget is spent.

Additivity is an approximation, so :func:`calibrate_plan` closes the loop: it compresses the
model as planned, measures the top-1 drop, and shrinks the internal budget until the measured
drop fits ``max_drop`` (on the images of the sensitivity run: choose those to represent the
data the model will see). ``squeezenet compress --policy PLAN`` then writes the same file.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from squeezenet.arch.preprocess import Preprocess
from squeezenet.errors import ConfigError, InputError
from squeezenet.experiments.sensitivity_result import Kind, SensitivityResult
from squeezenet.formats.policy import policy_document
from squeezenet.io.weights import LoadedModel


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
    loss_scale: float = 15.0  # top-1 points per unit of loss increase (see loss_scale())
    measured: dict[str, Any] | None = None  # from calibrate_plan: top1, drop, file bytes
    rounds: tuple[dict[str, Any], ...] = ()  # calibrate_plan's attempts

    @property
    def predicted_drop(self) -> float:
        return sum(layer.predicted_drop for layer in self.layers)

    @property
    def estimated_bytes(self) -> int:
        return sum(layer.estimated_bytes for layer in self.layers)

    def to_policy(self) -> dict[str, Any]:
        """The policy document ``squeezenet compress --policy FILE`` reads (prune + bits)."""
        return policy_document(
            {layer.layer: layer.sparsity for layer in self.layers},
            {layer.layer: layer.bits for layer in self.layers},
            plan={
                "max_drop_points": self.max_drop,
                "predicted_drop_points": round(self.predicted_drop, 3),
                "estimated_bytes": self.estimated_bytes,
                "baseline_top1": self.baseline_top1,
                "images": self.images,
                "loss_scale": round(self.loss_scale, 3),
                "measured": self.measured,
                "rounds": list(self.rounds),
                "layers": [asdict(layer) for layer in self.layers],
            },
        )


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


def loss_scale(result: SensitivityResult) -> float:
    """Top-1 points per unit of cross-entropy increase: the median ratio over the probes that
    clearly hurt (loss up by > 0.02 and top-1 down); 15.0 when there are fewer than 5."""
    ratios = sorted(
        result.drop(p) / (p.loss - result.baseline["loss"])
        for p in result.probes
        if p.changed and p.loss - result.baseline["loss"] > 0.02 and result.drop(p) > 0
    )
    return ratios[len(ratios) // 2] if len(ratios) >= 5 else 15.0


def _curves(result: SensitivityResult, layer: str, kind: Kind, kappa: float) -> dict[float, float]:
    probes = result.curve(layer, kind)
    if kind == "prune":
        ordered = sorted(probes, key=lambda p: p.value)
    else:
        ordered = sorted(probes, key=lambda p: -p.value)
    base = result.baseline["loss"]
    return _envelope(
        [(p.value, kappa * max(p.loss - base, 0.0) if p.changed else 0.0) for p in ordered]
    )


@dataclass(frozen=True)
class _LayerOptions:
    """The settings a layer may move to, each with its cost in top-1 points (from the sweep)."""

    numel: int
    prune: dict[float, float]  # target sparsity -> drop; the layer's current sparsity costs 0
    bits: dict[float, float]  # bit width -> drop; the lossless width costs 0
    start: tuple[float, int]  # where nothing changes: (current sparsity, lossless width)

    def cost(self, state: tuple[float, int]) -> tuple[float, int]:
        """Predicted top-1 drop and estimated bytes of the layer at ``(sparsity, bits)``."""
        drop = self.prune[state[0]] + self.bits[float(state[1])]
        return drop, estimate_bytes(self.numel, state[0], state[1])


def _layer_options(result: SensitivityResult, layer: dict[str, Any], kappa: float) -> _LayerOptions:
    name = layer["name"]
    current = float(layer["sparsity"])
    prune = {s: d for s, d in _curves(result, name, "prune", kappa).items() if s > current + 1e-9}
    prune[current] = 0.0
    # Start where nothing changes: the layer as it is, at the width that holds all its
    # values (8 for the published 8-bit weights; float layers start at the 16-bit limit).
    start_bits = _lossless_bits(int(layer["distinct"]) - (1 if current > 0 else 0))
    bits = {b: d for b, d in _curves(result, name, "bits", kappa).items() if b < start_bits}
    bits[float(start_bits)] = 0.0
    return _LayerOptions(int(layer["numel"]), prune, bits, (current, start_bits))


def plan_from_sensitivity(result: SensitivityResult, max_drop: float) -> Plan:
    """Choose a sparsity and a bit width per layer so the predicted top-1 loss stays within
    ``max_drop`` points (see the module docstring for the model).

    Raises:
        ConfigError: the sweep has no bit-width probes (the plan needs them) or ``max_drop < 0``.
    """
    if max_drop < 0:
        raise ConfigError(f"--max-drop: expected >= 0 points, got {max_drop}")
    if not result.config.bits:
        raise ConfigError("planning needs a sensitivity run with --bits (it sets the bit widths)")
    info = {layer["name"]: layer for layer in result.layers}
    kappa = loss_scale(result)
    options = {name: _layer_options(result, layer, kappa) for name, layer in info.items()}
    states = {name: layer.start for name, layer in options.items()}
    total = sum(options[name].cost(state)[0] for name, state in states.items())
    while (move := _best_move(options, states, total, max_drop)) is not None:
        name, state, extra = move
        states[name] = state
        total += extra
    layers = []
    for name, state in states.items():
        drop, size = options[name].cost(state)
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
    return Plan(max_drop, tuple(layers), result.baseline["top1"], result.images, kappa)


def _best_move(
    options: dict[str, _LayerOptions],
    states: dict[str, tuple[float, int]],
    total: float,
    max_drop: float,
) -> tuple[str, tuple[float, int], float] | None:
    """The move (layer, new state, added drop) with the most bytes saved per point of cost
    that keeps the total within ``max_drop``; None when no move saves bytes within it."""
    best: tuple[float, str, tuple[float, int], float] | None = None
    for name, state in states.items():
        layer = options[name]
        drop, size = layer.cost(state)
        for s in layer.prune:
            for b in layer.bits:
                if s < state[0] or b > state[1] or (s, b) == state:
                    continue
                new_drop, new_size = layer.cost((s, int(b)))
                gain, extra = size - new_size, new_drop - drop
                if gain <= 0 or total + extra > max_drop + 1e-9:
                    continue
                score = gain / max(extra, 1e-3)
                if best is None or score > best[0]:
                    best = (score, name, (s, int(b)), extra)
    return None if best is None else best[1:]


def calibrate_plan(
    result: SensitivityResult,
    max_drop: float,
    measure: Callable[[Plan], tuple[float, int]],
    *,
    rounds: int = 6,
) -> Plan:
    """Plan, compress as planned, measure; shrink the internal budget until the measured top-1
    drop is within ``max_drop`` (then try to grow it back by bisection).

    Args:
        result: the sensitivity sweep.
        max_drop: the allowed top-1 loss in points, measured.
        measure: ``plan -> (top-1, file bytes)`` of the model compressed per the plan.
        rounds: most plans to measure.

    Returns:
        The smallest measured plan within the budget (the zero-budget plan, which changes
        nothing, if none was), with ``measured`` and ``rounds`` filled in.
    """
    tried: list[dict[str, Any]] = []
    best: tuple[int, Plan, dict[str, Any]] | None = None
    low, high, budget = 0.0, None, max_drop
    for _ in range(rounds):
        plan = plan_from_sensitivity(result, budget)
        row, drop = _measured(result, plan, budget, measure)
        tried.append(row)
        if drop <= max_drop + 1e-9:
            if best is None or row["file_bytes"] < best[0]:
                best = (row["file_bytes"], plan, row)
            low = budget
            if high is None:
                break  # the full budget fits
        else:
            high = budget
        nxt = (
            (low + high) / 2
            if high is not None and low > 0
            else budget * max(0.1, min(0.7, max_drop / max(drop, 1e-9)))
        )
        if high is not None and abs(nxt - budget) < 0.02 * max_drop:
            break
        budget = nxt
    if best is None:
        plan = plan_from_sensitivity(result, 0.0)
        row, _ = _measured(result, plan, 0.0, measure)
        row["predicted_drop"] = 0.0
        tried.append(row)
        best = (row["file_bytes"], plan, row)
    _, plan, row = best
    return dataclasses.replace(plan, measured=row, rounds=tuple(tried))


def _measured(
    result: SensitivityResult,
    plan: Plan,
    budget: float,
    measure: Callable[[Plan], tuple[float, int]],
) -> tuple[dict[str, Any], float]:
    """The record of one calibration round, and its measured top-1 drop in points."""
    top1, size = measure(plan)
    drop = 100.0 * (result.baseline["top1"] - top1)
    row = {
        "budget": round(budget, 4),
        "predicted_drop": round(plan.predicted_drop, 3),
        "top1": top1,
        "drop": round(drop, 3),
        "file_bytes": size,
    }
    return row, drop


def plan_measure(
    loaded: LoadedModel,
    data: Any,
    *,
    preprocess: Preprocess | None = None,
    batch_size: int = 50,
) -> Callable[[Plan], tuple[float, int]]:
    """``plan -> (top-1 on data, .sqz bytes)``: a copy of ``loaded`` compressed exactly as
    ``squeezenet compress --policy PLAN`` would, evaluated in memory (the file decodes to the
    same weights). ``preprocess`` defaults to the model's own.

    Raises:
        InputError: no ``preprocess`` given and the model file has none.
    """
    from squeezenet.compress.config import CompressConfig
    from squeezenet.formats.policy import parse_prune_policy
    from squeezenet.train.evaluate import evaluate
    from squeezenet.workflows.compress_file import compress_model

    chosen = preprocess or loaded.preprocess
    if chosen is None:
        raise InputError(
            f"planning needs the model's preprocessing, and {loaded.path} has none; re-save it "
            "with save_weights(preprocess=...)"
        )

    def measure(plan: Plan) -> tuple[float, int]:
        policy = plan.to_policy()
        config = CompressConfig(
            policy=parse_prune_policy(policy["prune"]),
            bits=tuple((str(k), int(v)) for k, v in policy["bits"].items()),
        )
        result = compress_model(copy.deepcopy(loaded), config)
        scores = evaluate(result.model, data, chosen, batch_size=batch_size)
        return scores.top1, len(result.data)

    return measure
