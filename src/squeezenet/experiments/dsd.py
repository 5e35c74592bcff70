"""Dense-Sparse-Dense training (Han et al. 2017; SqueezeNet paper Sec. 7.2).

Phases: ``dense`` (train), ``sparse`` (prune by magnitude, retrain with the masks pinning the
pruned weights at zero), ``redense`` (remove the masks: the pruned weights restart from zero
and train again, at a lower learning rate). The honest comparison is ``baseline``: the dense
model of phase 1 trained on for the same epochs with the same two schedules and no mask, so the
two arms differ only in the sparse phase; the summary compares their final models on the same
test images (paired standard error, top-1 agreement). Each phase writes
``OUT/<phase>/model.safetensors``; a rerun with the same settings skips finished phases and
resumes a phase cut short from its last checkpoint (:mod:`squeezenet.experiments.resumable`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from squeezenet.atomic import atomic_write_json
from squeezenet.compress.prune import prune_, remove_pruning_, weight_layers
from squeezenet.errors import ConfigError, InputError
from squeezenet.experiments.resumable import Attempt, begin
from squeezenet.formats.policy import parse_prune_policy
from squeezenet.io.weights import save_weights
from squeezenet.train.compare import compare
from squeezenet.train.config import TrainConfig
from squeezenet.train.evaluate import evaluate
from squeezenet.train.loop import FitEvent, fit
from squeezenet.train.run_folder import WEIGHTS  # each phase trains in a run folder of its own
from squeezenet.workflows.build import Built, build_for
from squeezenet.workflows.load import load_any

PHASES = ("dense", "sparse", "redense", "baseline_sparse", "baseline_redense")
DSD_JSON = "dsd.json"


@dataclass(frozen=True)
class DSDConfig:
    """One DSD experiment. ``policy`` is any prune policy spec (a sparsity, ``paper``, JSON)."""

    model: str  # a registry name (trained from scratch) or a weights file (dense already)
    data: str  # dataset spec (squeezenet.workflows.build): name, CSV manifest or folder
    policy: str = "0.5"  # how the sparse phase prunes: a sparsity, "paper", std:Q or JSON
    dense_epochs: int = 2  # phase 1 (0: the model file is trained already)
    sparse_epochs: int = 1  # phase 2, with the masks pinning the pruned weights at zero
    redense_epochs: int = 1  # phase 3, masks removed
    train: TrainConfig = field(default_factory=TrainConfig)  # the recipe of every phase
    redense_lr_scale: float = 0.1  # DSD retrains the re-densified model at a lower LR
    baseline: bool = True  # also train the dense baseline of equal epochs (the fair comparison)
    train_images: int = 0  # seeded training subset (0: all)
    test_images: int = 0  # seeded test subset (0: all)
    overrides: tuple[tuple[str, Any], ...] = ()  # model config fields of a registry model

    def __post_init__(self) -> None:
        parse_prune_policy(self.policy)
        for name in ("dense_epochs", "sparse_epochs", "redense_epochs"):
            if getattr(self, name) < 0:
                raise ConfigError(f"DSDConfig.{name}: expected >= 0, got {getattr(self, name)}")
        if self.sparse_epochs < 1 or self.redense_epochs < 1:
            raise ConfigError("DSDConfig: the sparse and re-dense phases need >= 1 epoch each")
        if not 0 < self.redense_lr_scale <= 1:
            raise ConfigError(
                f"DSDConfig.redense_lr_scale: expected in (0, 1], got {self.redense_lr_scale}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "train": self.train.to_dict(),
            "overrides": dict(self.overrides),
        }

    def phase_train(self, phase: str) -> TrainConfig:
        """The recipe of a phase: its epochs; the re-dense phases at the lower LR."""
        epochs = {
            "dense": self.dense_epochs,
            "sparse": self.sparse_epochs,
            "redense": self.redense_epochs,
        }[phase.removeprefix("baseline_")]
        lr = self.train.lr * (self.redense_lr_scale if phase.endswith("redense") else 1.0)
        return dataclasses.replace(self.train, epochs=max(epochs, 1), lr=lr)


@dataclass(frozen=True)
class DSDEvent:
    """Progress: a phase ``start``s / ends (``done``, with its metrics) / is ``skip``ped."""

    kind: str
    phase: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _sparsity(model: nn.Module) -> float:
    total = zeros = 0
    for _, module in weight_layers(model):
        weight = cast(torch.Tensor, module.weight)
        total += weight.numel()
        zeros += int((weight == 0).sum())
    return zeros / max(total, 1)


# The model each phase starts from: None is the freshly built one, else a phase's saved file.
_STARTS = {
    "dense": None,
    "sparse": "dense",
    "redense": "sparse",
    "baseline_sparse": "dense",
    "baseline_redense": "baseline_sparse",
}


def run_dsd(
    config: DSDConfig,
    out: str | Path,
    *,
    data_dir: str | None = None,
    device: str = "cpu",
    callback: Callable[[DSDEvent], None] | None = None,
    fit_callback: Callable[[str], Callable[[FitEvent], None] | None] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or finish) the DSD phases and the equal-epoch baseline; returns ``OUT/dsd.json``.

    Args:
        config: model, data, policy, epochs per phase, recipe.
        out: the run folder (one sub-folder per phase).
        callback: phase start / done / skip events.
        fit_callback: ``phase -> fit callback`` for progress within a phase.
        meta: stored with the result (command line, machine).

    Raises:
        InputError: ``out`` holds a DSD run with other settings.
    """
    emit = callback or (lambda event: None)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    document = _load_document(folder, config)
    run = build_for(config, data_dir)
    for phase in phases(config):
        if phase in document["phases"] and (folder / phase / WEIGHTS).is_file():
            emit(DSDEvent("skip", phase, document["phases"][phase]))
            continue
        if meta:  # the machine that trains; a rerun that only skips keeps the earlier one
            document["meta"] = meta
        document.pop("summary", None)  # it describes the phases as they were
        emit(DSDEvent("start", phase))
        source = _STARTS[phase]
        model = run.model if source is None else load_any(folder / source / WEIGHTS).model
        phase_fit = fit_callback(phase) if fit_callback else None
        metrics = _phase(phase, model, run, config, folder / phase, device, phase_fit)
        document["phases"][phase] = metrics
        _save_document(folder, document)
        emit(DSDEvent("done", phase, metrics))
    paired = document.get("summary", {}).get("paired")  # kept while no phase retrains
    document["summary"] = _summary(document["phases"], config)
    if "gain_points" in document["summary"]:
        document["summary"]["paired"] = paired or _paired(folder, run, device)
    _save_document(folder, document)
    return document


def _paired(folder: Path, run: Built, device: str) -> dict[str, Any]:
    """DSD's model against the baseline's on the same test images: the paired standard error
    of the top-1 difference (from the images only one of them gets right) and the agreement."""
    dsd = load_any(folder / "redense" / WEIGHTS).model.to(device)
    baseline = load_any(folder / "baseline_redense" / WEIGHTS).model.to(device)
    result = compare(dsd, baseline, run.test_data, run.preprocess, batch_size=256, device=device)
    return {
        "images": result.n,
        "top1_diff": result.top1_diff,
        "top1_diff_se": result.top1_diff_se,
        "only_dsd": result.only_candidate,
        "only_baseline": result.only_teacher,
        "agreement": result.agreement,
    }


def phases(config: DSDConfig) -> list[str]:
    """The phases ``config`` runs, in order (the baseline's only with ``config.baseline``)."""
    return [p for p in PHASES if config.baseline or not p.startswith("baseline")]


def _phase(
    phase: str,
    model: nn.Module,
    run: Built,
    config: DSDConfig,
    folder: Path,
    device: str,
    fit_callback: Callable[[FitEvent], None] | None,
) -> dict[str, Any]:
    """Run one phase on ``model``, save it as ``folder/model.safetensors``; its metrics. A phase
    cut short by a kill resumes from its last checkpoint in ``folder``."""
    attempt = begin(folder)
    train = config.phase_train(phase)
    metrics: dict[str, Any] = {"phase": phase, "epochs": 0, "lr": train.lr}
    if phase == "sparse":
        report = prune_(model, parse_prune_policy(config.policy))
        metrics["pruned_sparsity"] = report.sparsity
    if phase == "redense":  # starts from the saved sparse model: plain weights, zeros free
        metrics["start_sparsity"] = _sparsity(model)
    if phase == "dense" and config.dense_epochs == 0:
        result = evaluate(model, run.test_data, run.preprocess, device=device)
        metrics.update(top1=result.top1, top5=result.top5, eval_loss=result.loss)
    else:
        metrics.update(_train(model, run, train, attempt, device, fit_callback))
    if phase == "sparse":
        remove_pruning_(model)  # bake the zeros in; the saved file is a plain model
    metrics["sparsity"] = _sparsity(model)
    metrics["seconds"] = round(attempt.seconds, 2)
    if attempt.resume:
        metrics["resumed_at_step"] = attempt.resumed_step
    model = model.to("cpu").to(memory_format=torch.contiguous_format)
    save_weights(
        model,
        folder / WEIGHTS,
        model_name=run.model_name,
        preprocess=run.preprocess,
        class_names=run.classes,
    )
    return metrics


def _train(
    model: nn.Module,
    run: Built,
    train: TrainConfig,
    attempt: Attempt,
    device: str,
    fit_callback: Callable[[FitEvent], None] | None,
) -> dict[str, Any]:
    """Fit ``model`` for one phase in the attempt's run folder; the phase's metrics."""
    fitted = fit(
        model,
        run.train_split,
        train,
        preprocess=run.preprocess,
        eval_data=run.test_data,
        run_dir=attempt.run_dir,
        callback=attempt.watch(fit_callback, train.checkpoint_every),
        device=device,
        resume=attempt.resume,
    )
    last = fitted.history[-1]
    return {
        "epochs": train.epochs,
        "top1": last.get("top1"),
        "top5": last.get("top5"),
        "eval_loss": last.get("eval_loss"),
        "train_loss": last.get("train_loss"),
        "history": [{k: r.get(k) for k in ("epoch", "train_loss", "top1")} for r in fitted.history],
    }


def _summary(phases: dict[str, Any], config: DSDConfig) -> dict[str, Any]:
    epochs = config.dense_epochs + config.sparse_epochs + config.redense_epochs
    summary: dict[str, Any] = {"total_epochs": epochs}
    if "redense" in phases:
        summary["dsd_top1"] = phases["redense"]["top1"]
    if "baseline_redense" in phases:
        summary["baseline_top1"] = phases["baseline_redense"]["top1"]
    if "dsd_top1" in summary and "baseline_top1" in summary:
        summary["gain_points"] = round(100 * (summary["dsd_top1"] - summary["baseline_top1"]), 2)
    return summary


def _load_document(folder: Path, config: DSDConfig) -> dict[str, Any]:
    path = folder / DSD_JSON
    if path.is_file():
        document: dict[str, Any] = json.loads(path.read_text())
        if document.get("config") != json.loads(json.dumps(config.to_dict())):
            raise InputError(
                f"{folder} holds a DSD run with other settings; use another --output or delete it"
            )
        return document
    return {"config": config.to_dict(), "phases": {}}


def _save_document(folder: Path, document: dict[str, Any]) -> None:
    atomic_write_json(folder / DSD_JSON, document)
