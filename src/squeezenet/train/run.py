"""A training run as the CLI sees it: data spec + model name + recipe -> run folder + weights.

``run.json`` in the run folder records the whole spec, so ``--resume RUN_DIR`` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenet.data.presets import Preprocess
from squeezenet.data.registry import load_dataset, parse_data_spec
from squeezenet.formats.atomic import atomic_write_bytes
from squeezenet.formats.weights import load_model, save_weights
from squeezenet.models import create_model, get_spec
from squeezenet.train.checkpoint import CheckpointError
from squeezenet.train.config import TrainConfig
from squeezenet.train.loop import FitEvent, FitResult, fit

RUN_JSON = "run.json"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a training run."""

    model: str  # a registry name (train from scratch) or a weights file (fine-tune)
    data: str  # dataset spec: fashion-mnist, cifar10, synthetic, a CSV or a folder
    train: TrainConfig
    data_dir: str | None = None  # where the named dataset's files are
    overrides: dict[str, Any] = field(default_factory=dict)  # model config fields
    download: bool = False  # let torchvision download a missing named dataset

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{**data, "train": TrainConfig(**data["train"])})


@dataclass
class RunOutcome:
    result: FitResult
    model: nn.Module
    model_name: str
    preprocess: Preprocess
    class_names: list[str]
    weights: Path | None  # the final weights file (rank 0), if a run folder was given


def read_run_spec(run_dir: str | Path) -> RunSpec:
    """The spec of an earlier run (for ``--resume``)."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a run folder ({RUN_JSON} is missing)")
    return RunSpec.from_dict(json.loads(path.read_text()))


def build(spec: RunSpec) -> tuple[nn.Module, str, Preprocess, list[str], Any, Any]:
    """Model, registry name, preprocessing, class names, train and test datasets of a spec."""
    data_spec = parse_data_spec(spec.data)
    seed = spec.train.seed
    kwargs: dict[str, Any] = {"data_dir": spec.data_dir, "download": spec.download, "seed": seed}
    train_data = load_dataset(data_spec, "train", **kwargs)
    test_data = load_dataset(data_spec, "test", **kwargs)
    classes = list(train_data.classes)
    if Path(spec.model).suffix in (".safetensors", ".sqz") or os.sep in spec.model:
        loaded = load_model(spec.model)
        model, name = loaded.model, loaded.model_name
        preprocess = loaded.preprocess or data_spec.default_preset
        return model, name, preprocess, classes, train_data, test_data
    get_spec(spec.model)
    preprocess = data_spec.default_preset
    if data_spec.kind in ("csv", "folder"):
        size = get_spec(spec.model).input_size
        preprocess = dataclasses.replace(preprocess, crop=size, resize=round(size * 256 / 224))
    overrides = {"num_classes": len(classes), "in_channels": preprocess.channels, **spec.overrides}
    model = create_model(spec.model, seed=seed, **overrides)
    return model, spec.model, preprocess, classes, train_data, test_data


def run_training(
    spec: RunSpec,
    run_dir: str | Path | None,
    *,
    resume: bool = False,
    callback: Callable[[FitEvent], None] | None = None,
    device: str | torch.device = "cpu",
) -> RunOutcome:
    """Train per ``spec``; a ``run_dir`` gets checkpoints, metrics and ``model.safetensors``."""
    model, name, preprocess, classes, train_data, test_data = build(spec)
    run_path = Path(run_dir) if run_dir is not None else None
    is_rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    if run_path is not None and not resume and is_rank0:
        run_path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_path / RUN_JSON, json.dumps(spec.to_dict(), indent=2).encode())
    result = fit(
        model,
        train_data,
        spec.train,
        preprocess=preprocess,
        eval_data=test_data,
        run_dir=run_path,
        resume=resume,
        callback=callback,
        device=device,
    )
    weights = None
    if run_path is not None and is_rank0:
        model = model.to("cpu").to(memory_format=torch.contiguous_format)
        weights = save_weights(
            model, run_path / WEIGHTS, model_name=name, preprocess=preprocess, class_names=classes
        )
    return RunOutcome(result, model, name, preprocess, classes, weights)
