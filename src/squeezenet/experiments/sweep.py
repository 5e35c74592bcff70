"""Design-space sweeps (SqueezeNet paper Sec. 5-6): one training per grid point, resumable.

A :class:`Trial` is everything that defines one point (model, config overrides, data, training
recipe, data budget); :func:`run_trial` is a plain function of it that returns a JSON record, so
another executor (a process pool, a cluster) can run trials elsewhere and append the records.
:func:`run_sweep` keeps one JSON line per finished trial in ``results.jsonl``; a rerun skips the
trials whose key is already there. A trial in flight checkpoints into ``inflight/KEY/`` (ignored
by git) and a rerun resumes it there, so an interrupted sweep loses at most the steps since the
trial's last checkpoint; the folder goes once the trial's record is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from squeezenet.atomic import atomic_write_bytes, atomic_write_json
from squeezenet.errors import ConfigError
from squeezenet.experiments.resumable import begin, discard
from squeezenet.models import get_spec, resolve_config
from squeezenet.models.summary import summarize
from squeezenet.train.config import TrainConfig
from squeezenet.train.loop import FitEvent, FitResult, fit
from squeezenet.workflows.build import build_for

RESULTS = "results.jsonl"
INFLIGHT = "inflight"  # the checkpoints of unfinished trials, one folder per key


@dataclass(frozen=True)
class Trial:
    """One grid point. ``train_images`` / ``test_images`` > 0 draw seeded subsets (the budget)."""

    model: str
    overrides: tuple[tuple[str, Any], ...]
    data: str
    train: TrainConfig
    train_images: int = 0
    test_images: int = 0

    def __post_init__(self) -> None:
        get_spec(self.model)  # unknown model names fail here, before any training
        resolve_config(self.model, **dict(self.overrides))  # and so do bad config values
        if self.train_images < 0 or self.test_images < 0:
            raise ConfigError("Trial: train_images and test_images must be >= 0 (0: all)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "overrides": dict(self.overrides),
            "data": self.data,
            "train": self.train.to_dict(),
            "train_images": self.train_images,
            "test_images": self.test_images,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        return cls(
            model=data["model"],
            overrides=tuple(sorted(data["overrides"].items())),
            data=data["data"],
            train=TrainConfig(**data["train"]),
            train_images=int(data["train_images"]),
            test_images=int(data["test_images"]),
        )

    @property
    def key(self) -> str:
        """A stable id of everything that defines the result (not where the data lives)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides) or self.model


def parse_grid(specs: Sequence[str]) -> list[dict[str, Any]]:
    """``["squeeze_ratio=0.125,0.25", "bypass=none,simple"]`` -> the cartesian product as
    dicts (values parsed as JSON where possible: numbers, true/false, else strings)."""
    axes: list[tuple[str, list[Any]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not items:
            raise ConfigError(f"--grid expects FIELD=V1,V2,..., got {spec!r}")
        if any(name.strip() == n for n, _ in axes):
            raise ConfigError(f"--grid names {name.strip()!r} twice; give its values once")
        axes.append((name.strip(), [_value(v) for v in items]))
    names = [n for n, _ in axes]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def trials_for(
    grid: Sequence[dict[str, Any]],
    *,
    model: str,
    data: str,
    train: TrainConfig,
    fixed: dict[str, Any] | None = None,
    train_images: int = 0,
    test_images: int = 0,
    seeds: Sequence[int] = (),
) -> list[Trial]:
    """One :class:`Trial` per grid point (``fixed`` overrides apply to all of them), once per
    seed of ``seeds`` (empty: once, with ``train.seed``), point by point."""
    configs = [dataclasses.replace(train, seed=s) for s in seeds] or [train]
    return [
        Trial(model, tuple(sorted({**(fixed or {}), **point}.items())), data, config,
              train_images, test_images)
        for point in grid
        for config in configs
    ]  # fmt: skip


def run_trial(
    trial: Trial,
    *,
    data_dir: str | None = None,
    device: str = "cpu",
    callback: Callable[[FitEvent], None] | None = None,
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train one grid point and evaluate it; returns the record (JSON-ready).

    With ``run_dir``, the training checkpoints there and resumes from it when it holds one (the
    record then says from which step, and its seconds include the earlier attempts').
    """
    attempt = begin(run_dir) if run_dir is not None else None
    clock = time.perf_counter()
    run = build_for(trial, data_dir)
    preprocess = run.preprocess
    summary = summarize(run.model, (preprocess.channels, preprocess.crop, preprocess.crop))
    result = fit(
        run.model,
        run.train_split,
        trial.train,
        preprocess=preprocess,
        eval_data=run.test_data,
        callback=attempt.watch(callback, trial.train.checkpoint_every) if attempt else callback,
        device=device,
        run_dir=attempt.run_dir if attempt else None,
        resume=bool(attempt and attempt.resume),
    )
    seconds = attempt.seconds if attempt else time.perf_counter() - clock
    resumed = {"resumed_at_step": attempt.resumed_step} if attempt and attempt.resume else {}
    return {
        "key": trial.key,
        "trial": trial.to_dict(),
        "label": trial.label,
        "params": summary.params,
        "size_bytes": summary.size_bytes,
        "macs": summary.macs,
        **_fit_record(result),
        "epochs": trial.train.epochs,
        "train_images": len(run.train_split),
        "test_images": len(run.test_data),
        "collapsed": result.collapsed,
        "history": [
            {k: r.get(k) for k in ("epoch", "train_loss", "top1", "top5")} for r in result.history
        ],
        "seconds": round(seconds, 2),
        **resumed,
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
    }


def _fit_record(result: FitResult) -> dict[str, Any]:
    """The last epoch's accuracy and losses (None where the run has no epoch)."""
    last = result.history[-1] if result.history else {}
    return {k: last.get(k) for k in ("top1", "top5", "eval_loss", "train_loss")}


def read_records(out: str | Path, *, include_failed: bool = False) -> list[dict[str, Any]]:
    """The finished records of a sweep folder; a torn last line (a crash mid-append) is
    dropped and the file repaired. Records of failed trials (``"failed": true``, written by
    the Ray engine) are left out unless ``include_failed``."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return []
    text = path.read_text()
    records, good = [], []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "key" in record:
            records.append(record)
            good.append(line)
    repaired = "".join(line + "\n" for line in good)
    if repaired != text:
        atomic_write_bytes(path, repaired.encode())
    return records if include_failed else [r for r in records if not r.get("failed")]


def append_record(out: str | Path, record: dict[str, Any]) -> None:
    """Append one record as one line, flushed to disk before returning."""
    path = Path(out) / RESULTS
    with path.open("a") as handle:
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@dataclass(frozen=True)
class SweepEvent:
    """What :func:`run_sweep` reports: a trial ``start``ed, ``done`` or ``skip``ped."""

    kind: str  # "start", "done", "skip" or "failed" (Ray engine: stored as a failure record)
    index: int  # 0-based position in the sweep
    total: int
    trial: Trial
    record: dict[str, Any] | None = None


def run_sweep(
    trials: Sequence[Trial],
    out: str | Path,
    *,
    runner: Callable[[Trial], dict[str, Any]] | None = None,
    callback: Callable[[SweepEvent], None] | None = None,
    meta: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the trials not yet in ``out/results.jsonl`` and append each record when it ends.

    Returns the records of all ``trials`` in their order (earlier runs' included). Trials run
    in order; an exception or Ctrl-C propagates after the finished trials were stored. The
    default ``runner`` is :func:`run_trial`, checkpointing in :func:`trial_dir` (a custom one
    may do the same); a trial's folder there is removed once its record is stored.
    """
    folder, keys, done = prepare_sweep(trials, out, meta)
    run = runner if runner is not None else _checkpointed(folder)
    for index, trial in enumerate(trials):
        if trial.key in done:
            if callback:
                callback(SweepEvent("skip", index, len(trials), trial, done[trial.key]))
            continue
        if callback:
            callback(SweepEvent("start", index, len(trials), trial))
        record = {**run(trial), **({"meta": meta} if meta else {})}
        append_record(folder, record)
        discard(trial_dir(folder, trial))
        done[trial.key] = record
        if callback:
            callback(SweepEvent("done", index, len(trials), trial, record))
    return [done[k] for k in keys]


def _checkpointed(folder: Path) -> Callable[[Trial], dict[str, Any]]:
    return lambda trial: run_trial(trial, run_dir=trial_dir(folder, trial))


def trial_dir(out: str | Path, trial: Trial) -> Path:
    """Where ``trial`` checkpoints while it runs: ``OUT/inflight/KEY``."""
    return Path(out) / INFLIGHT / trial.key


def prepare_sweep(
    trials: Sequence[Trial], out: str | Path, meta: dict[str, Any] | None
) -> tuple[Path, list[str], dict[str, dict[str, Any]]]:
    """Create the folder, write ``sweep.json``, and return the folder, the trials' keys and the
    finished records by key (what every engine does first)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [t.key for t in trials]
    if len(set(keys)) != len(keys):
        raise ConfigError("the sweep lists the same trial twice; remove the duplicate grid values")
    described = {"trials": [t.to_dict() for t in trials], **(meta or {})}
    atomic_write_json(folder / "sweep.json", described)
    (folder / INFLIGHT).mkdir(exist_ok=True)
    ignore = folder / INFLIGHT / ".gitignore"
    if not ignore.is_file():  # checkpoints are scratch: never committed with the results
        atomic_write_bytes(ignore, b"*\n")
    return folder, keys, {r["key"]: r for r in read_records(folder)}


def budget_description(trial: Trial, *, seed: bool = True) -> str:
    """E.g. ``2 epochs x 10,000 images, batch 128, LR 0.05 cosine, bfloat16, seed 0`` (for
    reports)."""
    t = trial.train
    images = f"{trial.train_images:,}" if trial.train_images else "all"
    return (
        f"{t.epochs} epochs x {images} training images, batch {t.batch_size}, LR {t.lr:g} "
        f"{t.schedule}, {'bfloat16' if t.bf16 else 'float32'}"
        + (f", seed {t.seed}" if seed else "")
    )
