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

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.arch.preprocess import Preprocess
from squeezenet.compress.prune import layer_names, magnitude_mask
from squeezenet.compress.quantize import Init, kmeans1d
from squeezenet.errors import ConfigError, InputError
from squeezenet.models.squeezenet import SqueezeNet
from squeezenet.train.evaluate import eval_batches

Kind = Literal["prune", "bits"]
DEFAULT_SPARSITIES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT_BITS = (8, 6, 5, 4, 3)


@dataclass(frozen=True)
class SensitivityConfig:
    """What to probe. ``layers`` are comma-separated fnmatch patterns over state-dict prefixes
    and Table 1 names (``conv1``, ``fire2.squeeze``, ``*.expand3x3``)."""

    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    bits: tuple[int, ...] = DEFAULT_BITS
    layers: str = "*"
    batch_size: int = 50
    init: Init = "linear"  # k-means initialisation of the bit-width probes
    channels_last: bool = True

    def __post_init__(self) -> None:
        if any(not 0.0 <= s < 1.0 for s in self.sparsities):
            raise ConfigError(
                f"SensitivityConfig.sparsities: expected fractions in [0, 1), got "
                f"{list(self.sparsities)}"
            )
        if any(
            isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 16 for b in self.bits
        ):
            raise ConfigError(
                f"SensitivityConfig.bits: expected widths 1..16, got {list(self.bits)}"
            )
        if not self.sparsities and not self.bits:
            raise ConfigError("SensitivityConfig: give at least one sparsity or bit width")
        if self.batch_size < 1:
            raise ConfigError(f"SensitivityConfig.batch_size: expected >= 1, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Probe:
    """One evaluation: ``layer`` pruned to sparsity ``value`` or quantized to ``value`` bits."""

    layer: str  # Table 1 name where there is one, else the state-dict prefix
    prefix: str  # state-dict prefix
    kind: Kind
    value: float
    top1: float
    top5: float
    loss: float
    sparsity: float  # the layer's sparsity during the probe
    changed: bool  # False: the probe left the weights as they were (baseline reused)
    seconds: float


@dataclass(frozen=True)
class SensitivityResult:
    """Baseline accuracy and every probe; see :func:`sensitivity`."""

    images: int
    baseline: dict[str, float]  # top1, top5, loss of the unchanged model
    probes: tuple[Probe, ...]
    layers: tuple[dict[str, Any], ...]  # name, prefix, numel, sparsity, distinct values
    config: SensitivityConfig
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "baseline": self.baseline,
            "layers": list(self.layers),
            "probes": [asdict(p) for p in self.probes],
            "config": self.config.to_dict(),
            "seconds": self.seconds,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SensitivityResult:
        config = data["config"]
        return cls(
            images=int(data["images"]),
            baseline=dict(data["baseline"]),
            probes=tuple(Probe(**p) for p in data["probes"]),
            layers=tuple(data["layers"]),
            config=SensitivityConfig(
                **{
                    **config,
                    "sparsities": tuple(config["sparsities"]),
                    "bits": tuple(config["bits"]),
                }
            ),
            seconds=float(data["seconds"]),
            meta=dict(data.get("meta", {})),
        )

    def to_csv(self) -> str:
        buffer = io.StringIO()
        names = [f.name for f in Probe.__dataclass_fields__.values()]
        writer = csv.DictWriter(buffer, fieldnames=[*names, "drop_points"], lineterminator="\n")
        writer.writeheader()
        for probe in self.probes:
            writer.writerow({**asdict(probe), "drop_points": round(self.drop(probe), 3)})
        return buffer.getvalue()

    def drop(self, probe: Probe) -> float:
        """Top-1 lost by ``probe``, in percentage points (negative: it gained)."""
        return 100.0 * (self.baseline["top1"] - probe.top1)

    def curve(self, layer: str, kind: Kind) -> list[Probe]:
        return [p for p in self.probes if p.layer == layer and p.kind == kind]


@dataclass(frozen=True)
class SensitivityProgress:
    """What :func:`sensitivity` passes to its callback after each probe."""

    done: int
    total: int
    probe: Probe


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


def plot_sensitivity(result: SensitivityResult, path: Any, *, title: str = "") -> Any:
    """Top-1 against sparsity (left) and against bit width (right), one line per layer, as in
    the paper's Fig. 6a. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [
        k
        for k, values in (("prune", result.config.sparsities), ("bits", result.config.bits))
        if values
    ]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 5.2), squeeze=False)
    names = [layer["name"] for layer in result.layers]
    cmap = plt.get_cmap("nipy_spectral")
    for ax, kind in zip(axes[0], kinds, strict=True):
        for i, name in enumerate(names):
            curve = result.curve(name, cast(Kind, kind))
            xs = [100 * p.value if kind == "prune" else p.value for p in curve]
            style = "-" if ("1x1" in name or "squeeze" in name) else "--"
            ax.plot(
                xs,
                [100 * p.top1 for p in curve],
                style,
                color=cmap(i / max(len(names), 1)),
                label=name,
                linewidth=1.2,
                marker=".",
                markersize=4,
            )
        ax.axhline(100 * result.baseline["top1"], color="grey", linewidth=0.8, linestyle=":")
        if kind == "prune":
            ax.set_xlabel("sparsity of the one pruned layer (%)")
        else:
            ax.set_xlabel("bits of the one quantized layer")
            ax.invert_xaxis()
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, ncol=2, loc="lower left")
    fig.suptitle(title or f"Per-layer sensitivity ({result.images} images; solid: 1x1 layers)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
