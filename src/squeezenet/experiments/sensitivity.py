"""Per-layer sensitivity analysis (SqueezeNet paper Sec. 7.1, Deep Compression Fig. 6a).

For each weight layer alone: prune it to each sparsity (smallest magnitudes first, existing
zeros counted) and, separately, share its non-zero weights with k-means at each bit width;
evaluate; restore the layer bit for bit. One evaluation set is decoded once and held in memory,
and on SqueezeNets each probe only runs the network from the block that holds the probed layer
(the inputs of that block are computed once per block), which makes a 26-layer sweep about
twice as fast as full forward passes. A probe that leaves the weights unchanged (a sparsity the
layer already has, or a bit width that already holds all its distinct values) reuses the
baseline result instead of evaluating again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.prune import layer_names, magnitude_mask
from squeezenet.compress.weight_sharing import Init, kmeans1d
from squeezenet.errors import ConfigError, InputError
from squeezenet.experiments.sensitivity_result import (
    Kind,
    Probe,
    SensitivityConfig,
    SensitivityProgress,
    SensitivityResult,
)
from squeezenet.models.squeezenet import SqueezeNet
from squeezenet.train.evaluate import eval_batches


def _selected(model: nn.Module, patterns: str) -> list[tuple[str, str, nn.Module]]:
    wanted = [p.strip() for p in patterns.split(",") if p.strip()] or ["*"]
    rows = []
    for prefix, names, module in layer_names(model):
        if any(fnmatchcase(name, p) for name in names for p in wanted):
            if parametrize.is_parametrized(module, "weight"):
                raise InputError(
                    f"sensitivity needs plain weights, but {prefix} is pruned or weight-shared; "
                    "bake the masks in first (remove_pruning_) or load the saved weights file"
                )
            rows.append((names[-1], prefix, module))
    if not rows:
        known = ", ".join(names[-1] for _, names, _ in layer_names(model))
        raise ConfigError(f"--layers {patterns!r} matched no layer; layers: {known}")
    return rows


class _Segments:
    """The model as blocks applied in order; SqueezeNets split into their feature modules."""

    def __init__(self, model: nn.Module) -> None:
        if isinstance(model, SqueezeNet) and type(model).forward is SqueezeNet.forward:
            self.blocks: list[nn.Module] = [*model.features, model.classifier]
        else:
            self.blocks = [model]
        self.flatten_last = isinstance(model, SqueezeNet)

    def block_of(self, module: nn.Module) -> int:
        for index, block in enumerate(self.blocks):
            if any(m is module for m in block.modules()):
                return index
        raise ValueError("layer not found in the model's blocks")

    def run(self, x: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
        stop = len(self.blocks) if stop is None else stop
        for block in self.blocks[start:stop]:
            x = block(x)
        if stop == len(self.blocks) and self.flatten_last:
            x = torch.flatten(x, 1)
        return x


@dataclass
class _Scores:
    top1: float
    top5: float
    loss: float


class _Evaluator:
    """Evaluates the model from a cached block input over the whole in-memory set."""

    def __init__(
        self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch: int
    ) -> None:
        self.model, self.labels, self.batch = model, labels, batch
        self.segments = _Segments(model)
        self.start = 0
        self.cache = inputs  # the input of block ``self.start`` for every image

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.labels), self.batch):
            yield self.cache[i : i + self.batch], self.labels[i : i + self.batch]

    @torch.no_grad()
    def advance(self, block: int) -> None:
        """Move the cache forward to the input of ``block`` (blocks are probed in order)."""
        if block < self.start:
            raise ValueError("layers must be probed in forward order")
        if block == self.start:
            return
        parts = [self.segments.run(x, self.start, block) for x, _ in self._chunks()]
        self.cache, self.start = torch.cat(parts), block

    @torch.no_grad()
    def scores(self) -> _Scores:
        loss, top1, top5 = 0.0, 0, 0
        for x, y in self._chunks():
            logits = self.segments.run(x, self.start)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            top1 += int((top[:, 0] == y).sum())
            top5 += int((top == y[:, None]).any(dim=1).sum())
        n = max(len(self.labels), 1)
        return _Scores(top1 / n, top5 / n, loss / n)


def _load_all(
    data: Any, preprocess: Preprocess, batch: int, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y in eval_batches(data, preprocess, batch):
        xs.append(x.float())
        ys.append(y)
    if not xs:
        raise InputError("the evaluation data is empty; give a dataset with images")
    inputs = torch.cat(xs)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, torch.cat(ys)


def _prune_probe(weight: torch.Tensor, sparsity: float) -> bool:
    """Prune ``weight`` in place; False when nothing changed."""
    keep = magnitude_mask(weight, sparsity)
    changed = bool((weight[~keep] != 0).any())
    if changed:
        weight.mul_(keep.to(weight.dtype))
    return changed


def _bits_probe(weight: torch.Tensor, bits: int, init: Init) -> bool:
    """Share the non-zero weights with 2**bits k-means centroids in place; False when the layer
    already has at most 2**bits distinct non-zero values (lossless)."""
    nonzero = weight != 0
    values = weight[nonzero].numpy()
    if np.unique(values).size <= 2**bits:
        return False
    centroids, assignment = kmeans1d(values, 2**bits, init=init)
    weight[nonzero] = torch.from_numpy(centroids[assignment]).to(weight.dtype)
    return True


@dataclass(frozen=True)
class _Setting:
    """One probe to run: a layer and the sparsity or bit width to give it."""

    name: str
    prefix: str
    module: nn.Module
    kind: Kind
    value: float | int


@torch.no_grad()
def sensitivity(
    model: nn.Module,
    data: Any,
    preprocess: Preprocess,
    config: SensitivityConfig | None = None,
    *,
    callback: Callable[[SensitivityProgress], None] | None = None,
) -> SensitivityResult:
    """Probe every selected layer alone at each sparsity and bit width; the model is restored
    exactly after each probe (and is left on the CPU in eval mode).

    Args:
        model: a classifier with plain (not parametrized) weights, e.g. a loaded weights file.
        data: the evaluation images (a dataset :func:`~squeezenet.data.load_dataset` returns).
        preprocess: the model's input pipeline.
        config: sparsities, bit widths, layer patterns; see :class:`SensitivityConfig`.
        callback: called after each probe.

    Raises:
        ConfigError: ``config.layers`` matches no layer.
        InputError: a selected layer is parametrized (pruned or weight-shared), or ``data`` is
            empty.
    """
    config = config or SensitivityConfig()
    clock = time.perf_counter()
    model.eval().to("cpu")
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    selected = _selected(model, config.layers)
    inputs, labels = _load_all(data, preprocess, config.batch_size, config.channels_last)
    evaluator = _Evaluator(model, inputs, labels, config.batch_size)
    base = evaluator.scores()
    settings = [
        _Setting(name, prefix, module, cast(Kind, kind), value)
        for name, prefix, module in selected
        for kind, values in (("prune", config.sparsities), ("bits", config.bits))
        for value in values
    ]
    # forward order, so that each block's inputs are computed once
    order = sorted(
        range(len(settings)), key=lambda i: evaluator.segments.block_of(settings[i].module)
    )
    probes: dict[int, Probe] = {}
    for done, index in enumerate(order, 1):
        probes[index] = _probe(evaluator, settings[index], base, config.init)
        if callback is not None:
            callback(SensitivityProgress(done, len(settings), probes[index]))
    layers = tuple(_layer_row(name, prefix, module) for name, prefix, module in selected)
    model.to(memory_format=torch.contiguous_format)
    return SensitivityResult(
        images=len(labels),
        baseline={"top1": base.top1, "top5": base.top5, "loss": base.loss},
        probes=tuple(probes[i] for i in range(len(settings))),  # in config order
        layers=layers,
        config=config,
        seconds=round(time.perf_counter() - clock, 3),
    )


def _probe(evaluator: _Evaluator, setting: _Setting, base: _Scores, init: Init) -> Probe:
    """Change one layer as ``setting`` says, evaluate the model, restore the layer exactly."""
    evaluator.advance(evaluator.segments.block_of(setting.module))
    weight = cast(torch.Tensor, setting.module.weight).data
    saved = weight.clone()
    start = time.perf_counter()
    try:
        if setting.kind == "prune":
            changed = _prune_probe(weight, float(setting.value))
        else:
            changed = _bits_probe(weight, int(setting.value), init)
        sparsity = float((weight == 0).float().mean())
        scores = evaluator.scores() if changed else base
    finally:
        weight.copy_(saved)
    return Probe(
        setting.name,
        setting.prefix,
        setting.kind,
        float(setting.value),
        scores.top1,
        scores.top5,
        scores.loss,
        sparsity,
        changed,
        round(time.perf_counter() - start, 3),
    )


def _layer_row(name: str, prefix: str, module: nn.Module) -> dict[str, Any]:
    weight = cast(torch.Tensor, module.weight)
    return {
        "name": name,
        "prefix": prefix,
        "numel": int(weight.numel()),
        "sparsity": float((weight == 0).float().mean()),
        "distinct": int(torch.unique(weight).numel()),
    }
