"""Sequential error feedback: each layer quantized on the inputs the already quantized layers
before it produce (GPTQ's order), towards the uncompressed layer's output (GPTAQ's target).

:mod:`squeezenet.compress.trellis_feedback` quantizes every layer against its input Hessian on
the *uncompressed* model's activations, all layers at once. Here the model is walked stage by
stage (a SqueezeNet's ``stages()``: conv1, the Fire modules, conv10); within a stage the layers
that read the same tensor form a group (a Fire's squeeze, then its two expands). For each group,
on the proxy images, the uncompressed model gives the layer inputs ``x`` and the partly
quantized model ``x~``; a layer's weights ``W`` (pruned ones stay zero) are then refitted to

    W' = argmin E || W x - W' x~ ||^2 + damping * || W' - W ||^2     (per row, stored weights)

(Li et al., "GPTAQ", 2025: the asymmetric calibration that also undoes the error that reached
the layer), quantized by the trellis with error feedback through ``H~ = E[x~ x~^T]``, and its
bias corrected so the mean output matches: ``b + W E[x] - Q E[x~]``. The next group then sees
the quantized layer. The classifier is quantized at ``lambda / final_scale`` (a finer grid, where
the held-out photographs' KL comes from). Only proxy images are used, never evaluation images.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.proxy_sampler import ProxySampler
from squeezenet.compress.prune import layer_names
from squeezenet.compress.trellis import (
    TrellisLayer,
    feedback_factor,
    share_codes_,
    step_for,
    trellis_many,
)
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.compress.weighting import FisherConfig, input_vectors, output_fisher
from squeezenet.errors import ConfigError
from squeezenet.formats.grid import GridCode


@dataclass(frozen=True)
class SequentialConfig:
    """How :func:`sequential_codes` measures each group's inputs."""

    images: int = 256  # proxy images, kept in memory as activations through the whole walk
    batch_size: int = 32
    positions: int = 512  # output positions sampled per image and layer (all where fewer)
    damping: float = 0.1  # fraction of the mean diagonal of H~ (as HessianConfig.damping)
    asymmetric: bool = True  # refit W towards the uncompressed output (False: quantize W)
    # The last layer (the classifier) at lambda / final_scale: a finer grid where the held-out
    # photographs' KL comes from. 2 was chosen on held-out proxies over 1 and 4 (docs/RESULTS.md,
    # "Sequential error feedback").
    final_scale: float = 2.0
    # (stage name, S): that stage's layers at lambda / S (a rate allocation across stages;
    # on top of final_scale for the classifier). Empty: one lambda for every stage.
    stage_scales: tuple[tuple[str, float], ...] = ()
    # Rows traded by the output Fisher (weighting.output_fisher) to this power: a row's error
    # costs F_c ** fisher / (its layer's mean over stored weights). 0: every row alike. Measured
    # and rejected at 1 (docs/RESULTS.md, "Stop 38"): it starves channels the proxies barely use
    # and photographs need (KL 2.5 on them); kept for the record, not for use.
    fisher: float = 0.0
    # The refit may give the exact zeros of an unmasked layer (an imported pruned model's
    # pattern) values too, and the trellis then decides by rate which stay zero; a layer with a
    # prune mask (a --prune policy) keeps it. False: every zero stays zero. Lower KL on the
    # photographs at 0.3 % more bytes, none once corrected to equal bytes ("Stop 38"); the walk
    # is a third faster with it.
    regrow: bool = False
    seed: int = 0  # proxy images and sampled positions

    def __post_init__(self) -> None:
        if min(self.images, self.batch_size, self.positions) < 1:
            raise ConfigError("SequentialConfig: images, batch_size and positions must be >= 1")
        if not 0 < self.damping <= 100:
            raise ConfigError(f"SequentialConfig.damping: expected (0, 100], got {self.damping}")
        if not 0 < self.final_scale < float("inf"):
            raise ConfigError(f"SequentialConfig.final_scale: expected > 0, got {self.final_scale}")
        if not 0 <= self.fisher <= 2:
            raise ConfigError(f"SequentialConfig.fisher: expected [0, 2], got {self.fisher}")
        for stage, scale in self.stage_scales:
            if not 0 < scale < float("inf"):
                raise ConfigError(
                    f"SequentialConfig.stage_scales: {stage} expected > 0, got {scale}"
                )


@dataclass(frozen=True)
class SequentialCode:
    """One layer's result: its grid levels and its corrected bias (None: the layer has none)."""

    code: GridCode
    bias: np.ndarray | None


@dataclass
class _Moments:
    """Sums over sampled input vectors of one layer: x~ x~^T, x x~^T, x, x~ and the count."""

    hq: torch.Tensor
    cross: torch.Tensor
    mean: torch.Tensor
    mean_q: torch.Tensor
    count: int = 0


class _GroupSeenError(Exception):
    """Raised by a hook once every layer of the group has been seen (ends the forward early)."""


@torch.no_grad()
def sequential_codes(
    model: nn.Module, sampler: ProxySampler, rate_lambda: float, config: SequentialConfig
) -> dict[str, SequentialCode]:
    """The trellis levels and corrected biases of every conv / linear layer of ``model``
    (uncompressed, plain or pruned; left unchanged), quantized in stage order; the last layer
    (the classifier) at lambda ``rate_lambda / config.final_scale``.

    Raises:
        ConfigError: ``model`` has no ``stages()`` walk (only SqueezeNets do).
    """
    stages = stages_of(model)
    model.eval()
    # a working copy: a pruned model's masks come along and are never removed from it (that
    # would strip the weight property from the original's parametrized class too)
    quantized = copy.deepcopy(model).eval()
    names = {id(m): name for name, _, m in layer_names(model)}
    divisors = walk_scales(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    rows = _row_scales(model, sampler, config)
    inputs = list(sampler.batches(config.images, config.batch_size, config.seed))
    floats, partial = inputs, [x.clone() for x in inputs]
    out: dict[str, SequentialCode] = {}
    walk = zip(stages(), cast(Any, quantized).stages(), strict=True)
    for (_, stage), (_, stage_q) in walk:
        twins = {id(a): b for a, b in zip(stage.modules(), stage_q.modules(), strict=True)}
        for group in _groups(stage, floats[0], names):
            moments = _measure(stage, stage_q, group, twins, floats, partial, config, generator)
            lams = [rate_lambda / divisors.get(names[id(m)], 1.0) for m in group]
            scales = [rows.get(names[id(m)]) for m in group]
            found = _quantize_group(group, moments, lams, scales, config)
            for module, result in zip(group, found, strict=True):
                out[names[id(module)]] = result
                _set_(cast(nn.Module, twins[id(module)]), result)
        floats = [stage(x) for x in floats]
        partial = [stage_q(x) for x in partial]
    return out


def _groups(stage: nn.Module, x: torch.Tensor, names: dict[int, str]) -> list[list[nn.Module]]:
    """The stage's weight layers grouped by the tensor they read, in the order they run."""
    by_input: dict[int, list[nn.Module]] = {}
    keep: list[torch.Tensor] = []  # holds the inputs so their ids stay unique

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        keep.append(args[0])
        by_input.setdefault(id(args[0]), []).append(module)

    _run_with_pre_hooks(stage, [m for m in stage.modules() if id(m) in names], record, x[:1])
    return list(by_input.values())


def walk_scales(model: nn.Module, config: SequentialConfig) -> dict[str, float]:
    """Per layer name, the divisor of lambda that :func:`sequential_codes` gives it (layers at
    1 are left out): what the parallel stand-in of the byte search needs to match the walk."""
    stages = stages_of(model)
    names = {id(m): name for name, _, m in layer_names(model)}
    last = layer_names(model)[-1][0]
    by_stage = dict(config.stage_scales)
    out: dict[str, float] = {}
    for stage_name, stage in stages():
        for module in stage.modules():
            if id(module) in names:
                out[names[id(module)]] = by_stage.get(stage_name, 1.0)
    out[last] = out.get(last, 1.0) * config.final_scale
    return {name: scale for name, scale in out.items() if scale != 1.0}


def stages_of(model: nn.Module) -> Any:
    """``model.stages``, the walk :func:`sequential_codes` takes.

    Raises:
        ConfigError: ``model`` has none (only SqueezeNets do).
    """
    stages = getattr(model, "stages", None)
    if stages is None:
        raise ConfigError(
            f"sequential quantization walks a SqueezeNet's stages; {type(model).__name__} has "
            "none: use --weighting hessian"
        )
    return stages


def _inputs_of(stage: nn.Module, group: list[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """The inputs of ``group``'s layers when ``stage`` runs on ``x`` (stops once all are seen)."""
    seen: dict[int, torch.Tensor] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen[id(module)] = args[0]
        if len(seen) == len(group):
            raise _GroupSeenError

    _run_with_pre_hooks(stage, group, record, x)
    return [seen[id(m)] for m in group]


def _run_with_pre_hooks(
    stage: nn.Module, layers: list[nn.Module], hook: Any, x: torch.Tensor
) -> None:
    """``stage(x)`` with ``hook`` as a forward pre-hook of each of ``layers`` (removed after);
    a hook may end the forward early by raising :class:`_GroupSeenError`."""
    handles = [m.register_forward_pre_hook(hook) for m in layers]
    try:
        stage(x)
    except _GroupSeenError:
        pass
    finally:
        for handle in handles:
            handle.remove()


def _measure(
    stage: nn.Module,
    stage_q: nn.Module,
    group: list[nn.Module],
    twins: dict[int, nn.Module],
    floats: list[torch.Tensor],
    partial: list[torch.Tensor],
    config: SequentialConfig,
    generator: torch.Generator,
) -> list[_Moments]:
    """Per layer of ``group``: the moments of its inputs in both models over every batch."""
    sums: list[_Moments | None] = [None] * len(group)
    group_q = [twins[id(m)] for m in group]
    for x, xq in zip(floats, partial, strict=True):
        a = _inputs_of(stage, group, x)
        b = _inputs_of(stage_q, group_q, xq)
        for i, module in enumerate(group):
            rows, rows_q = input_vectors(module, [a[i], b[i]], config.positions, generator)
            part = _Moments(
                rows_q.T @ rows_q, rows.T @ rows_q, rows.sum(0), rows_q.sum(0), len(rows)
            )
            sums[i] = part if sums[i] is None else _add(cast(_Moments, sums[i]), part)
    return [cast(_Moments, s) for s in sums]


def _add(a: _Moments, b: _Moments) -> _Moments:
    return _Moments(
        a.hq + b.hq, a.cross + b.cross, a.mean + b.mean, a.mean_q + b.mean_q, a.count + b.count
    )


def _row_scales(
    model: nn.Module, sampler: ProxySampler, config: SequentialConfig
) -> dict[str, np.ndarray]:
    """Per layer, its rows' cost factors: the output Fisher to ``config.fisher``, mean 1 over
    the layer's stored weights (so the layer's lambda keeps its meaning); empty when 0."""
    if config.fisher == 0:
        return {}
    fisher = output_fisher(model, sampler, FisherConfig(images=config.images, seed=config.seed))
    out = {}
    for name, _, module in layer_names(model):
        weight = cast(torch.Tensor, module.weight).detach()
        stored = (weight.reshape(len(weight), -1) != 0).sum(1).double().numpy()
        f = np.maximum(fisher[name], 1e-12) ** config.fisher
        mean = float((f * stored).sum() / stored.sum()) if stored.any() else float(f.mean())
        out[name] = np.maximum(f / mean, 1e-3)
    return out


def _quantize_group(
    group: list[nn.Module],
    moments: list[_Moments],
    lams: list[float],
    rows: list[np.ndarray | None],
    config: SequentialConfig,
) -> list[SequentialCode]:
    layers, biases = [], []
    for module, m, lam, row_scale in zip(group, moments, lams, rows, strict=True):
        weight = cast(torch.Tensor, module.weight).detach().double()
        w = weight.reshape(len(weight), -1).numpy()
        hq, cross = (m.hq / m.count).numpy(), (m.cross / m.count).numpy()
        regrow = config.regrow and not parametrize.is_parametrized(module, "weight")
        target = _refit(w, hq, cross, config.damping, regrow) if config.asymmetric else w
        u = feedback_factor(hq, config.damping)
        values = target.reshape(weight.shape).astype(np.float32)
        layers.append(TrellisLayer(values, step_for(lam), lam, None, u, row_scale))
        biases.append((w, (m.mean / m.count).numpy(), (m.mean_q / m.count).numpy()))
    codes = trellis_many(layers)
    out = []
    for module, code, (w, mean, mean_q) in zip(group, codes, biases, strict=True):
        bias = cast(torch.Tensor | None, module.bias)
        corrected = None
        if bias is not None:
            q = code.values().reshape(len(w), -1).astype(np.float64)
            corrected = (bias.detach().double().numpy() + w @ mean - q @ mean_q).astype(np.float32)
        out.append(SequentialCode(code, corrected))
    return out


def _refit(
    w: np.ndarray, hq: np.ndarray, cross: np.ndarray, damping: float, regrow: bool = False
) -> np.ndarray:
    """Per row, the stored weights that minimise E|w x - w' x~|^2 + d |w' - w|^2 (d: the
    ``damping`` fraction of H~'s mean diagonal); pruned weights stay zero unless ``regrow``
    (then every weight of the row is refitted, at one solve for all rows)."""
    d = damping * float(np.mean(np.diag(hq))) if np.diag(hq).any() else damping
    wanted = w @ cross  # (rows, K): E[(w x) x~]
    if regrow:
        a = hq + d * np.eye(len(hq))
        return cast(np.ndarray, np.linalg.solve(a, (wanted + d * w).T).T)
    out = np.zeros_like(w)
    for r in range(len(w)):
        stored = w[r] != 0
        if not stored.any():
            continue
        a = hq[np.ix_(stored, stored)] + d * np.eye(int(stored.sum()))
        out[r, stored] = np.linalg.solve(a, wanted[r, stored] + d * w[r, stored])
    return out


def _set_(module: nn.Module, result: SequentialCode) -> None:
    """Put the quantized weights and corrected bias into the partly quantized model's layer
    (a pruned layer's unmasked weight: the levels are zero where the mask is)."""
    if parametrize.is_parametrized(module, "weight"):
        weight = cast(torch.Tensor, cast(Any, module).parametrizations.weight.original)
    else:
        weight = cast(torch.Tensor, module.weight)
    values = torch.from_numpy(result.code.values().astype(np.float32)).reshape(weight.shape)
    weight.data.copy_(values)
    bias = cast(torch.Tensor | None, module.bias)
    if result.bias is not None and bias is not None:
        bias.data.copy_(torch.from_numpy(result.bias))


@dataclass(frozen=True)
class Sequential:
    """``QuantizeJob.sequential`` of the trellis: ``sequential(model, rate_lambda)`` quantizes
    ``model`` (plain or pruned) in place with sequential error feedback on ``sampler``'s proxy
    images (:func:`sequential_codes`), leaving grid layers as
    :func:`squeezenet.compress.trellis.trellis_quantize_` does, and biases corrected."""

    sampler: ProxySampler
    config: SequentialConfig = SequentialConfig()

    def __call__(self, model: nn.Module, rate_lambda: float) -> QuantizeReport:
        found = sequential_codes(model, self.sampler, rate_lambda, self.config)
        missed = [name for name, _, _ in layer_names(model) if name not in found]
        if missed:  # a layer off the stages' walk would stay unquantized: a bug, not input
            raise ValueError(f"sequential: the stages' walk never reached {', '.join(missed)}")
        report = share_codes_(model, {name: x.code for name, x in found.items()})
        for name, _, module in layer_names(model):
            bias = found[name].bias if name in found else None
            target = cast(torch.Tensor | None, module.bias)
            if bias is not None and target is not None:
                with torch.no_grad():
                    target.copy_(torch.from_numpy(bias))
        return report
