"""Per-layer summary in the layout of the paper's Table 1: shapes, filters, parameters, MACs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.registry import get_spec, resolve_config
from squeezenet.errors import ConfigError
from squeezenet.models.fire import Fire
from squeezenet.models.registry import create_model
from squeezenet.models.squeezenet import SqueezeNet

BYTES_PER_PARAM = 4  # 32-bit floats, as in the paper's size column


@dataclass(frozen=True)
class LayerSummary:
    """One row of Table 1."""

    name: str  # conv1, maxpool1, fire2, ..., conv10, avgpool10
    out_shape: tuple[int, ...]  # (C, H, W) or (features,), batch dimension dropped
    params: int  # parameters owned by this layer (weights + biases, shortcut included)
    macs: int  # multiply-accumulates of its convolutions / linear layers for one image
    s1x1: int | None = None  # Fire modules only
    e1x1: int | None = None
    e3x3: int | None = None


@dataclass(frozen=True)
class ModelSummary:
    """Totals and per-layer rows of a model at one input size."""

    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: list[LayerSummary] = field(default_factory=list)
    params: int = 0  # all parameters of the model
    macs: int = 0  # multiply-accumulates for one image

    @property
    def size_bytes(self) -> int:
        return self.params * BYTES_PER_PARAM

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "macs": self.macs,
            "size_bytes": self.size_bytes,
            "layers": [
                {**dataclasses.asdict(layer), "out_shape": list(layer.out_shape)}
                for layer in self.layers
            ],
        }


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


def _macs_hook(counter: list[int]) -> Any:
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.weight[0, 0].numel()
            counter[0] += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            counter[0] += module.in_features * module.out_features

    return hook


def summarize(model: nn.Module, input_shape: tuple[int, int, int], name: str = "") -> ModelSummary:
    """Run one image of ``input_shape`` (C, H, W) through ``model.stages()`` and count per layer.

    Raises:
        ConfigError: the input is too small for the model (names the layer that failed; the
            registered models' smallest inputs are ``get_spec(name).facts.min_input_size``).
        ValueError: the model has no ``stages()`` (a bug in the caller).
    """
    stages = getattr(model, "stages", None)
    if stages is None:
        raise ValueError(f"{type(model).__name__} has no stages(); cannot summarise it")
    was_training = model.training
    model.eval()
    rows: list[LayerSummary] = []
    x = torch.zeros(1, *input_shape)
    try:
        with torch.no_grad():
            for layer_name, module in stages():
                try:
                    x, row = _summarize_stage(layer_name, module, x)
                except RuntimeError as exc:
                    raise ConfigError(
                        f"input {input_shape} is too small for {name or 'the model'} at "
                        f"{layer_name}; use a larger --input-size"
                    ) from exc
                rows.append(row)
    finally:
        model.train(was_training)
    return ModelSummary(
        name=name,
        input_shape=input_shape,
        layers=rows,
        params=count_params(model),
        macs=sum(r.macs for r in rows),
    )


def _summarize_stage(
    layer_name: str, module: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, LayerSummary]:
    """Apply one stage to ``x`` (1, C, H, W), counting its MACs; its output and its row."""
    counter = [0]
    handles = [
        m.register_forward_hook(_macs_hook(counter))
        for m in module.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        x = module(x)
    finally:
        for handle in handles:
            handle.remove()
    fire = module if isinstance(module, Fire) else None
    row = LayerSummary(
        name=layer_name,
        out_shape=tuple(x.shape[1:]),
        params=count_params(module),
        macs=counter[0],
        s1x1=fire.squeeze.out_channels if fire else None,
        e1x1=fire.expand1x1.out_channels if fire else None,
        e3x3=fire.expand3x3.out_channels if fire else None,
    )
    return x, row


def summarize_registered(
    name: str, input_size: int | None = None, **overrides: Any
) -> ModelSummary:
    """Summary of a registered model at ``input_size`` (default: its natural size)."""
    spec = get_spec(name)
    model = create_model(name, seed=0, **overrides)
    size = input_size or spec.input_size
    in_channels = resolve_config(name, **overrides).in_channels
    return summarize(model, (in_channels, size, size), name=name)


# The Fig. 3 design space (SqueezeNet Sec. 5.2-5.3): sizes the paper's figure shows, in MB.
SQUEEZE_RATIOS = (0.125, 0.25, 0.5, 0.75, 1.0)
PCT_3X3 = (0.01, 0.125, 0.25, 0.5, 0.75, 0.99)
PAPER_SIZES_MB: dict[tuple[str, float], float] = {
    ("squeeze_ratio", 0.125): 4.8,
    ("squeeze_ratio", 0.75): 19.0,
    ("squeeze_ratio", 1.0): 24.0,
}


@dataclass(frozen=True)
class DesignPoint:
    """Size of one SqueezeNet of the Fig. 3 design space."""

    axis: str  # "squeeze_ratio" or "pct_3x3"
    value: float
    config: SqueezeNetConfig
    params: int
    paper_mb: float | None  # what the paper's figure reports, where it states a size

    @property
    def size_bytes(self) -> int:
        return self.params * BYTES_PER_PARAM

    @property
    def size_mib(self) -> float:
        return self.size_bytes / 2**20


def design_space(base: SqueezeNetConfig | None = None) -> list[DesignPoint]:
    """Model sizes across Fig. 3: squeeze ratio at pct_3x3 0.5, pct_3x3 at squeeze ratio 0.5."""
    base = base or SqueezeNetConfig()
    points: list[DesignPoint] = []
    grid = [("squeeze_ratio", v, {"squeeze_ratio": v, "pct_3x3": 0.5}) for v in SQUEEZE_RATIOS]
    grid += [("pct_3x3", v, {"squeeze_ratio": 0.5, "pct_3x3": v}) for v in PCT_3X3]
    for axis, value, changes in grid:
        config = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
        params = config_params(config)
        points.append(DesignPoint(axis, value, config, params, PAPER_SIZES_MB.get((axis, value))))
    return points


def config_params(config: SqueezeNetConfig) -> int:
    """Parameter count of a SqueezeNet config (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return count_params(SqueezeNet(config))


def registered_params(name: str, **overrides: Any) -> int:
    """Parameter count of a registered model (built on the meta device)."""
    with torch.device("meta"):
        return count_params(create_model(name, **overrides))
