"""The pipeline's report: accuracy and size after each stage, as data, JSON and a PNG plot."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezenet.atomic import atomic_write
from squeezenet.compress.config import describe_bits, describe_policy
from squeezenet.compress.sizes import ALEXNET_DENSE_BYTES
from squeezenet.experiments.pipeline_config import STAGES, PipelineConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageRow:
    """Accuracy and size after one stage; one row of the final table."""

    stage: str  # dense | prune | quantize | encode
    label: str  # what the row shows, e.g. "pruned + retrained"
    top1: float  # test top-1 (fraction) after the stage
    top1_before: float | None  # prune/quantize: right after pruning/sharing, before retraining
    bytes: int  # model size after the stage (stage_sizes: computed, or the file's bytes)
    size_note: str  # how the bytes are counted
    seconds: float  # wall time of the run that finished the stage (a resumed one: its part)
    skipped: bool  # finished by an earlier run


@dataclass(frozen=True)
class PipelineReport:
    """What :func:`run_pipeline` produced: per-stage rows, the file, the decode check."""

    config: PipelineConfig
    out_dir: Path
    rows: tuple[StageRow, ...]
    sqz: Path
    check_images: int  # images in the decode check
    check_max_abs_diff: float  # largest |decoded - fine-tuned| logit
    plot: Path | None  # the PNG (None when matplotlib is missing)
    seconds: float  # wall time of this call

    @property
    def dense_bytes(self) -> int:
        return self.rows[0].bytes

    @property
    def file_bytes(self) -> int:
        return self.rows[-1].bytes

    @property
    def top1_drop_points(self) -> float:
        """Dense top-1 minus the decoded file's, in percentage points."""
        return 100 * (self.rows[0].top1 - self.rows[-1].top1)

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {
                **dataclasses.asdict(row),
                "ratio_dense": self.dense_bytes / row.bytes,
                "ratio_alexnet": ALEXNET_DENSE_BYTES / row.bytes,
            }
            for row in self.rows
        ]
        return {
            "model": self.config.model,
            "data": self.config.data,
            "policy": describe_policy(self.config.policy),
            "bits": describe_bits(self.config.bits),
            "out_dir": str(self.out_dir),
            "sqz": str(self.sqz),
            "plot": str(self.plot) if self.plot else None,
            "dense_top1": self.rows[0].top1,
            "sqz_top1": self.rows[-1].top1,
            "top1_drop_points": self.top1_drop_points,
            "dense_bytes": self.dense_bytes,
            "file_bytes": self.file_bytes,
            "alexnet_bytes": ALEXNET_DENSE_BYTES,
            "ratio_dense": self.dense_bytes / self.file_bytes,
            "ratio_alexnet": ALEXNET_DENSE_BYTES / self.file_bytes,
            "check": {
                "images": self.check_images,
                "max_abs_diff": self.check_max_abs_diff,
                "tolerance": self.config.tolerance,
            },
            "stages": rows,
            "seconds": self.seconds,
            "config": self.config.to_dict(),
        }


def build_report(
    config: PipelineConfig,
    out: Path,
    plot_path: Path,
    records: dict[str, dict[str, Any]],
    skipped: set[str],
    seconds: float,
) -> PipelineReport:
    encode = records["encode"]
    sizes = encode["sizes"]  # dense, pruned, quantized, file (stage_sizes order)
    width = f"{config.bits}-bit" if isinstance(config.bits, int) else "mixed-bit"
    labels = {
        "dense": "dense, 32-bit",
        "prune": "pruned + retrained",
        "quantize": f"{width} shared + fine-tuned",
        "encode": ".sqz file, decoded",
    }
    rows = tuple(
        StageRow(
            stage=stage,
            label=labels[stage],
            top1=float(records[stage]["top1"]),
            top1_before=records[stage].get("top1_before"),
            bytes=int(size["bytes"]),
            size_note=str(size["note"]),
            seconds=float(records[stage]["seconds"]),
            skipped=stage in skipped,
        )
        for stage, size in zip(STAGES, sizes, strict=True)
    )
    plot = plot_accuracy_vs_size(rows, plot_path, title=f"{config.model} on {config.data}")
    return PipelineReport(
        config=config,
        out_dir=out,
        rows=rows,
        sqz=out / encode["file"],
        check_images=int(encode["check_images"]),
        check_max_abs_diff=float(encode["check_max_abs_diff"]),
        plot=plot,
        seconds=round(seconds, 3),
    )


def plot_accuracy_vs_size(rows: tuple[StageRow, ...], path: Path, *, title: str) -> Path | None:
    """Test top-1 against size (log scale) per stage, as a PNG; None when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed: no %s", path.name)
        return None
    figure = Figure(figsize=(7.0, 4.4), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    sizes = [row.bytes / 1024 for row in rows]
    top1 = [100 * row.top1 for row in rows]
    axes.plot(sizes, top1, "-o", color="tab:blue")
    for i, (row, x, y) in enumerate(zip(rows, sizes, top1, strict=True)):
        axes.annotate(
            f"{row.label}\n{y:.2f} %", (x, y), textcoords="offset points", ha="center",
            xytext=(0, 8 if i % 2 == 0 else -22), fontsize=7,
        )  # fmt: skip
    axes.axhline(top1[0] - 1, color="tab:red", linestyle="--", linewidth=0.8)
    axes.annotate(
        "dense - 1 point", (1, top1[0] - 1), xycoords=("axes fraction", "data"), ha="right",
        va="bottom", fontsize=7, color="tab:red",
    )  # fmt: skip
    axes.set_xscale("log")
    axes.set_xticks(sizes, [f"{x:,.0f}" for x in sizes], rotation=30, fontsize=7)
    axes.tick_params(axis="x", which="minor", labelbottom=False)
    axes.invert_xaxis()  # stages run left to right as the model shrinks
    axes.margins(x=0.12, y=0.2)
    axes.set_xlabel("model size (KiB, log scale)")
    axes.set_ylabel("test top-1 (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(True, alpha=0.3)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
