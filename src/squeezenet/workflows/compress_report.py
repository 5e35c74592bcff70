"""What a compression reached: :class:`CompressReport`, its layer rows, and the stopwatch that
times its stages. Plain data; printing is the CLI's job."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from squeezenet.compress.sizes import ALEXNET_DENSE_BYTES, StageSize
from squeezenet.compress.weight_sharing import QuantizeReport
from squeezenet.formats.model import CompressedModel


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer of a :class:`CompressReport`."""

    name: str  # state-dict prefix
    shape: tuple[int, ...]
    stored: int  # weights that hold a code
    density: float  # stored / numel
    bits: int
    clusters: int  # codebook entries
    rmse: float  # change of the stored weights caused by sharing (0 when lossless)


@dataclasses.dataclass(frozen=True)
class CompressReport:
    """What :func:`compress_model` did and the sizes it reached."""

    model_name: str
    bits: str  # the --bits spelling
    policy: str  # "none", "paper" or the rules (describe_policy)
    stages: tuple[StageSize, ...]
    layers: tuple[LayerRow, ...]
    seconds: dict[str, float]  # wall time per stage
    distill: dict[str, Any] | None = None  # the distiller's report, when one ran
    output: str | None = None  # the written file
    rate: dict[str, Any] | None = None  # the ECSQ lambda (and its search), when one ran
    # What quantization did to the weights (squeezenet.compress.damage.Damage.to_dict):
    # network SQNR, the least share of non-zero weights a layer kept, why it is wrecked if it is.
    damage: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()  # one line each, for stderr (e.g. the model is wrecked)

    @property
    def file_bytes(self) -> int:
        return self.stages[-1].bytes

    @property
    def dense_bytes(self) -> int:
        return self.stages[0].bytes

    def to_dict(self) -> dict[str, Any]:
        stages = [
            {
                **dataclasses.asdict(stage),
                "ratio_dense": self.dense_bytes / stage.bytes,
                "ratio_alexnet": ALEXNET_DENSE_BYTES / stage.bytes,
            }
            for stage in self.stages
        ]
        return {
            "model": self.model_name,
            "output": self.output,
            "policy": self.policy,
            "bits": self.bits,
            "file_bytes": self.file_bytes,
            "dense_bytes": self.dense_bytes,
            "alexnet_bytes": ALEXNET_DENSE_BYTES,
            "ratio_dense": self.dense_bytes / self.file_bytes,
            "ratio_alexnet": ALEXNET_DENSE_BYTES / self.file_bytes,
            "stages": stages,
            "layers": [
                {**dataclasses.asdict(row), "shape": list(row.shape)} for row in self.layers
            ],
            "seconds": self.seconds,
            "distill": self.distill,
            "rate": self.rate,
            "damage": self.damage,
            "warnings": list(self.warnings),
        }


def layer_rows(cm: CompressedModel, quant: QuantizeReport) -> tuple[LayerRow, ...]:
    """One row per layer of ``cm``, with the sharing error ``quant`` measured."""
    rmse = {row.name: row.rmse for row in quant.layers}
    return tuple(
        LayerRow(
            layer.name,
            tuple(layer.shape),
            len(layer.positions),
            layer.density,
            layer.bits,
            len(layer.codebook),
            rmse.get(layer.name, 0.0),
        )
        for layer in cm.layers
    )


class Stopwatch:
    """Wall time per stage: :meth:`lap` records the seconds since the previous lap (or since
    the watch was made or :meth:`restart` ed), rounded to 0.1 ms."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}  # stage -> seconds, in lap order
        self._last = time.perf_counter()

    def restart(self) -> None:
        """Start the next lap now (the time since the previous lap is not recorded)."""
        self._last = time.perf_counter()

    def lap(self, stage: str) -> float:
        """Record and return the seconds of ``stage``."""
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 4)
        self._last = now
        return self.seconds[stage]
