"""What a training run records for people and tools: ``config.json`` when it starts, and after
every epoch the records so far (loss, top-1, speed, evaluation) in ``metrics.jsonl`` and
``metrics.csv``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from squeezenet.arch.preprocess import Preprocess
from squeezenet.atomic import atomic_write_bytes
from squeezenet.train.config import TrainConfig
from squeezenet.train.run_folder import CONFIG_JSON, METRICS_CSV, METRICS_JSONL

EMPTY_ACCUM = {"loss_sum": 0.0, "correct": 0, "seen": 0, "time": 0.0}  # an epoch's sums


def epoch_record(
    epoch: int, step: int, accum: dict[str, Any], lr: float, world: int
) -> dict[str, Any]:
    """The record of a finished epoch from its sums (``accum``) and the LR of its last step."""
    seen = max(accum["seen"], 1)
    return {
        "epoch": epoch + 1,
        "step": step,
        "lr": lr,
        "train_loss": accum["loss_sum"] / seen,
        "train_top1": accum["correct"] / seen,
        "images_per_s": accum["seen"] * world / max(accum["time"], 1e-9),
        "train_seconds": accum["time"],
    }


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.jsonl`` and ``metrics.csv`` with every epoch record so far."""
    atomic_write_bytes(
        run_dir / METRICS_JSONL, "".join(json.dumps(r) + "\n" for r in history).encode()
    )
    buffer = io.StringIO()
    keys = list(dict.fromkeys(k for record in history for k in record))
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(run_dir / METRICS_CSV, buffer.getvalue().encode())


def write_run_config(
    run_path: Path, config: TrainConfig, model_config: dict[str, Any], preprocess: Preprocess
) -> None:
    """``config.json``: the recipe, the model's config and its preprocessing, as the run starts."""
    run_path.mkdir(parents=True, exist_ok=True)
    document = {
        "train": config.to_dict(),
        "model": model_config,
        "preprocess": preprocess.to_dict(),
    }
    atomic_write_bytes(run_path / CONFIG_JSON, json.dumps(document, indent=2).encode())
