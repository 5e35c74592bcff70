"""A training run as the CLI sees it: data spec + model name + recipe -> run folder + weights.

``run.json`` in the run folder records the whole spec, so ``--resume RUN_DIR`` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from squeezenet.arch.preprocess import Preprocess
from squeezenet.atomic import atomic_write_bytes
from squeezenet.errors import InputError, MissingFileError
from squeezenet.io.weights import save_weights
from squeezenet.train.config import TrainConfig
from squeezenet.train.loop import FitEvent, FitResult, fit
from squeezenet.train.run_folder import RUN_JSON, WEIGHTS
from squeezenet.workflows.build import BuildSpec, build


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
    """The spec of an earlier run (for ``--resume``).

    Raises:
        MissingFileError: ``run_dir`` holds no ``run.json``.
        InputError: its ``run.json`` is damaged or was written by another version.
    """
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise MissingFileError(f"{run_dir} is not a run folder ({RUN_JSON} is missing)")
    try:
        return RunSpec.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a run spec of this version ({type(exc).__name__}: {exc}); "
            "start a new run instead of --resume"
        ) from None


def build_spec(spec: RunSpec) -> BuildSpec:
    """What :func:`squeezenet.workflows.build.build` makes for a run: model and full splits."""
    return BuildSpec(
        model=spec.model,
        data=spec.data,
        overrides=spec.overrides,
        seed=spec.train.seed,
        data_dir=spec.data_dir,
        download=spec.download,
    )


def run_training(
    spec: RunSpec,
    run_dir: str | Path | None,
    *,
    resume: bool = False,
    callback: Callable[[FitEvent], None] | None = None,
    device: str | torch.device = "cpu",
) -> RunOutcome:
    """Train per ``spec``; a ``run_dir`` gets checkpoints, metrics and ``model.safetensors``."""
    built = build(build_spec(spec))
    model, name, preprocess, classes = (
        built.model,
        built.model_name,
        built.preprocess,
        built.classes,
    )
    run_path = Path(run_dir) if run_dir is not None else None
    is_rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    if run_path is not None and not resume and is_rank0:
        run_path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_path / RUN_JSON, json.dumps(spec.to_dict(), indent=2).encode())
    result = fit(
        model,
        built.train_split,
        spec.train,
        preprocess=preprocess,
        eval_data=built.test_data,
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
