"""What a per-layer sensitivity analysis is asked and what it found, as plain data: its
config, one :class:`Probe` per evaluation, the :class:`SensitivityResult` (JSON and CSV) and the
progress a run reports (:func:`squeezenet.experiments.sensitivity.sensitivity` measures them)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from squeezenet.compress.weight_sharing import Init
from squeezenet.errors import ConfigError

SENSITIVITY_JSON = "sensitivity.json"  # where a sensitivity folder keeps its result
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
