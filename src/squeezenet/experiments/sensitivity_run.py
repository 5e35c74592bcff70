"""The sensitivity job: sweep a model file on a dataset into a folder, reuse a stored sweep of
the same model, data and settings, and optionally plan per-layer sparsity and bits.

The folder::

    sensitivity.json   the sweep (:meth:`SensitivityResult.to_dict`); ``meta`` says where from
    sensitivity.csv    one row per probe
    sensitivity.png    top-1 against sparsity and bits per layer (Fig. 6a)
    policy.json        with a plan: the policy ``squeezenet compress --policy`` reads

A rerun whose model, data, split and :class:`SensitivityConfig` equal the stored ones reuses the
sweep, so planning again with another budget costs no sweep.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezenet.atomic import atomic_write_bytes, atomic_write_json
from squeezenet.data.datasets import ArrayDataset, FileListDataset
from squeezenet.errors import ConfigError, MissingFileError
from squeezenet.experiments.plan import Plan, calibrate_plan, plan_from_sensitivity, plan_measure
from squeezenet.experiments.sensitivity import sensitivity
from squeezenet.experiments.sensitivity_report import plot_sensitivity
from squeezenet.experiments.sensitivity_result import (
    SENSITIVITY_JSON,
    SensitivityConfig,
    SensitivityProgress,
    SensitivityResult,
)
from squeezenet.formats.policy import write_policy
from squeezenet.train.evaluate import teacher_labelled
from squeezenet.workflows.build import BuildSpec, Built, Data, build
from squeezenet.workflows.load import is_model_file, load_any

POLICY_JSON = "policy.json"


@dataclass(frozen=True)
class SensitivityJob:
    """One sensitivity run: what to sweep, where to store it, and whether to plan."""

    model: str  # a model file (.safetensors or .sqz): the sweep probes trained weights
    data: str  # evaluation images: a dataset name, a CSV manifest or a folder
    output: str | Path  # the folder (see the module docstring)
    config: SensitivityConfig = field(default_factory=SensitivityConfig)
    split: str = "test"  # the split of a named dataset (file datasets have one)
    data_dir: str | None = None  # where the named dataset's files are
    plan: bool = False  # also choose per-layer sparsity and bits (policy.json)
    max_drop: float = 1.0  # the plan's top-1 budget, in points
    verify: bool = True  # compress + evaluate candidate plans until the measured loss fits
    # Planning images: with a calibration set the sweep, the plan and its calibration all run on
    # it, and `data` is read only at the end, to report the chosen plan (never choose on the
    # images you report: docs/RESULTS.md, "Which images chose, which measured"). None: sweep and
    # plan on `data`, as before.
    calib: str | None = None
    calib_images: int = 0  # > 0: a seeded subset of that many calibration images

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ConfigError(f"--split: expected train or test, got {self.split!r}")
        if self.calib_images < 0:
            raise ConfigError(f"--calib-images: expected >= 0, got {self.calib_images}")

    @property
    def source(self) -> dict[str, str]:
        """What the sweep was measured on; a stored sweep is reused only for the same."""
        labels = "teacher" if self.calib is not None else "data"
        return {
            "model": str(Path(self.model).resolve()),
            "data": self.chooser,
            "split": self.split,
            "labels": labels,
            "images": str(self.calib_images if self.calib is not None else 0),
        }

    @property
    def chooser(self) -> str:
        """The images every choice is made on: the calibration set, else ``data``."""
        return self.calib if self.calib is not None else self.data


@dataclass(frozen=True)
class SensitivityEvent:
    """Progress of :func:`run_sensitivity`: a ``reuse`` note, or ``sweep`` / ``plan`` progress."""

    stage: str  # "reuse", "sweep" or "plan"
    done: int = 0  # probes (sweep) or candidate plans (plan) finished
    total: int | None = None  # probes in the sweep (None: not known yet)
    info: str = ""  # a line for the progress bar


@dataclass(frozen=True)
class SensitivityOutcome:
    """What :func:`run_sensitivity` produced."""

    result: SensitivityResult
    folder: Path
    reused: bool  # the stored sweep was reused
    max_drop: float  # the plan's budget as asked (the plan's own may be a calibrated, smaller one)
    plan: Plan | None = None
    # With a calibration set: the chosen plan measured on the evaluation data (report only).
    report: dict[str, Any] | None = None

    @property
    def policy(self) -> Path:
        return self.folder / POLICY_JSON

    def to_dict(self) -> dict[str, Any]:
        """The command's JSON document: the sweep's summary, the plan, the per-layer curves."""
        result = self.result
        document: dict[str, Any] = {
            "output": str(self.folder),
            "images": result.images,
            "baseline": result.baseline,
            "seconds": result.seconds,
            "probes": len(result.probes),
            "evaluated": sum(p.changed for p in result.probes),
        }
        if self.plan is not None:
            document["plan"] = {
                "policy": str(self.policy),
                "max_drop_points": self.max_drop,
                "predicted_drop_points": round(self.plan.predicted_drop, 3),
                "estimated_bytes": self.plan.estimated_bytes,
                "measured": self.plan.measured,
                "rounds": list(self.plan.rounds),
            }
            if self.report is not None:
                document["plan"]["report"] = self.report
        document["layers"] = [
            {
                "layer": layer["name"],
                "prune": {f"{p.value:g}": p.top1 for p in result.curve(layer["name"], "prune")},
                "bits": {f"{p.value:g}": p.top1 for p in result.curve(layer["name"], "bits")},
            }
            for layer in result.layers
        ]
        return document


Callback = Callable[[SensitivityEvent], None]


def run_sensitivity(
    job: SensitivityJob, *, meta: dict[str, Any] | None = None, callback: Callback | None = None
) -> SensitivityOutcome:
    """Sweep (or reuse the stored sweep), write the folder, and plan when ``job.plan``.

    Args:
        job: model, data, settings, folder and planning options.
        meta: stored in the sweep's ``meta`` beside its source (command line, machine).
        callback: progress events.

    Raises:
        ConfigError: a registry name instead of a model file; bad layer patterns or budget.
        MissingFileError: the model file does not exist.
    """
    emit = callback or (lambda event: None)
    folder = Path(job.output)
    result = stored_sweep(folder, job.config, job.source)
    built, chooser = None, None
    if result is not None:
        note = f"reusing {folder / SENSITIVITY_JSON} (same model, data and settings)"
        emit(SensitivityEvent("reuse", info=note))
    else:
        emit(SensitivityEvent("sweep", info="loading images"))
        built = _build(job)
        chooser = _chooser_data(job, built)
        result = sensitivity(
            built.model, chooser, built.preprocess, job.config,
            callback=lambda event: emit(_sweep_event(event)),
        )  # fmt: skip
        extra = {"source": job.source, "model_name": built.model_name, **(meta or {})}
        result = dataclasses.replace(result, meta=extra)
        write_sweep(folder, result)
    plan = report = None
    if job.plan:
        plan = _plan(job, result, built, chooser, emit)
        write_policy(folder / POLICY_JSON, plan.to_policy())
        if job.calib is not None:  # only now are the evaluation images read
            report = _report(job, plan, emit)
    return SensitivityOutcome(result, folder, built is None, job.max_drop, plan, report)


def stored_sweep(
    folder: Path, config: SensitivityConfig, source: dict[str, str]
) -> SensitivityResult | None:
    """The sweep stored in ``folder`` if it has ``config`` and ``source``, else None."""
    stored = folder / SENSITIVITY_JSON
    if not stored.is_file():
        return None
    previous = SensitivityResult.from_dict(json.loads(stored.read_text()))
    if previous.config == config and previous.meta.get("source") == source:
        return previous
    return None


def write_sweep(folder: Path, result: SensitivityResult) -> None:
    """Write ``sensitivity.json``, ``.csv`` and ``.png`` into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / SENSITIVITY_JSON, result.to_dict())
    atomic_write_bytes(folder / "sensitivity.csv", result.to_csv().encode())
    plot_sensitivity(result, folder / "sensitivity.png")


def _build(job: SensitivityJob) -> Built:
    """The model file and the evaluation split, through the one build rule."""
    if not is_model_file(job.model):
        raise ConfigError(
            f"sensitivity probes trained weights: give a .safetensors or .sqz file, not the "
            f"registry name {job.model!r}"
        )
    if not Path(job.model).is_file():  # before the data loads, which may take a while
        raise MissingFileError(f"weights file not found: {job.model}")
    subset = job.calib_images if job.calib is not None else 0
    spec = BuildSpec(
        job.model, job.chooser, data_dir=job.data_dir, train=job.split == "train",
        train_images=subset, test_images=subset,
    )  # fmt: skip
    return build(spec)


def _report(job: SensitivityJob, plan: Plan, emit: Callback) -> dict[str, Any]:
    """The chosen plan on the evaluation data: top-1 of the model and of its plan, the bytes."""
    from squeezenet.train.evaluate import evaluate

    emit(SensitivityEvent("plan", info=f"report on {job.data}"))
    built = build(BuildSpec(job.model, job.data, data_dir=job.data_dir, train=job.split == "train"))
    data = _split(job, built)
    loaded = load_any(job.model)
    measure = plan_measure(
        loaded, data, preprocess=built.preprocess, batch_size=job.config.batch_size
    )
    top1, size = measure(plan)
    base = evaluate(loaded.model, data, built.preprocess, batch_size=job.config.batch_size)
    return {
        "data": job.data,
        "chosen_on": job.calib,
        "images": base.n,
        "baseline_top1": base.top1,
        "top1": top1,
        "drop_points": round(100 * (base.top1 - top1), 3),
        "file_bytes": size,
    }


def _split(job: SensitivityJob, built: Built) -> Data:
    return built.train_split if job.split == "train" else built.test_data


def _chooser_data(job: SensitivityJob, built: Built) -> Data:
    """The images every choice is made on. A calibration set is labelled by the uncompressed
    model itself, so the sweep and the plan score top-1 agreement with it (its own labels may
    not even be the model's classes: CIFAR-10 for an ImageNet model)."""
    data = _split(job, built)
    if job.calib is None:
        return data
    if not isinstance(data, ArrayDataset | FileListDataset):
        raise ConfigError(f"--calib {job.calib}: expected an image set or a CSV manifest")
    return teacher_labelled(
        built.model, data, built.preprocess, built.classes, batch_size=job.config.batch_size
    )


def _sweep_event(event: SensitivityProgress) -> SensitivityEvent:
    p = event.probe
    info = f"{p.layer} {p.kind} {p.value:g}: top-1 {p.top1:.3f}"
    return SensitivityEvent("sweep", event.done, event.total, info)


def _plan(
    job: SensitivityJob,
    result: SensitivityResult,
    built: Built | None,
    chooser: Data | None,
    emit: Callback,
) -> Plan:
    """The plan within ``job.max_drop``: calibrated on the images when ``job.verify``."""
    if not job.verify:
        return plan_from_sensitivity(result, job.max_drop)
    built = built or _build(job)
    measure = plan_measure(
        load_any(job.model),  # the file as `squeezenet compress` reads it (its class names)
        chooser if chooser is not None else _chooser_data(job, built),
        preprocess=built.preprocess,
        batch_size=job.config.batch_size,
    )
    emit(SensitivityEvent("plan", info="compress + evaluate"))
    rounds = [0]

    def counted(candidate: Plan) -> tuple[float, int]:
        top1, size = measure(candidate)
        rounds[0] += 1
        emit(SensitivityEvent("plan", rounds[0], info=f"top-1 {top1:.3f}, {size:,} B"))
        return top1, size

    return calibrate_plan(result, job.max_drop, counted)
