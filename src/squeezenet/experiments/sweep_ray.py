"""Design-space sweeps on Ray: each trial a Ray task, on a local instance or a cluster.

The result store stays :mod:`squeezenet.experiments.sweep`'s: one fsynced JSON line per finished
trial in ``results.jsonl``, written by the driver alone, in the order trials finish; a rerun
skips the finished keys, and Ctrl-C cancels the tasks in flight and keeps what is stored. A trial
whose worker dies (a killed process, a lost node) is retried by Ray up to ``max_retries`` times;
after that, or when the trial itself raises, a record with ``"failed": true`` and the error is
stored, so no trial vanishes silently (a rerun tries failed trials again). A trial checkpoints
in the sweep folder's ``inflight/KEY/`` (on a cluster: where its worker can reach the sweep
folder), so a retried or rerun trial continues from its last checkpoint.

Ray is an optional extra: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezenet.errors import ConfigError
from squeezenet.experiments.resumable import discard
from squeezenet.experiments.sweep import (
    SweepEvent,
    Trial,
    append_record,
    prepare_sweep,
    run_trial,
    trial_dir,
)

WORKER_MACHINE = "worker_machine"  # the key under which a Ray task returns its machine


@dataclass(frozen=True)
class RayConfig:
    """Where and how trials run on Ray."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); None: local
    cpus_per_trial: float = 1.0  # Ray resources each trial holds (and torch threads it uses)
    gpus_per_trial: float = 0.0  # > 0: trials train on a GPU
    max_retries: int = 2  # re-runs of a trial whose worker process died
    local_cpus: int | None = None  # CPUs of the local instance (None: all)

    def __post_init__(self) -> None:
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0 or self.max_retries < 0:
            raise ConfigError(
                "--cpus-per-trial must be > 0, --gpus-per-trial >= 0 and retries >= 0"
            )


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"
        ) from None
    return ray


def _remote_trial(
    trial: dict[str, Any], data_dir: str | None, device: str, threads: int, run_dir: str
) -> Any:
    """What a Ray worker runs: one trial from its plain-data form, checkpointing in ``run_dir``
    (resumed from there by a rerun on a machine that sees the folder). The record carries the
    worker's own machine (:data:`WORKER_MACHINE`): its host and torch threads, not the driver's."""
    import torch

    from squeezenet.experiments.provenance import machine

    torch.set_num_threads(max(1, threads))
    record = run_trial(Trial.from_dict(trial), data_dir=data_dir, device=device, run_dir=run_dir)
    return {**record, WORKER_MACHINE: machine()}


def run_sweep_ray(
    trials: Sequence[Trial],
    out: str | Path,
    config: RayConfig = RayConfig(),
    *,
    data_dir: str | None = None,
    callback: Callable[[SweepEvent], None] | None = None,
    meta: dict[str, Any] | None = None,
    remote: Callable[..., Any] = _remote_trial,
) -> list[dict[str, Any]]:
    """:func:`squeezenet.experiments.sweep.run_sweep` with the trials as Ray tasks.

    Returns the records of all ``trials`` in their order (failed ones as failure records).
    """
    ray = import_ray()
    folder, keys, done = prepare_sweep(trials, out, meta)
    pending = {t.key: (i, t) for i, t in enumerate(trials) if t.key not in done}
    for index, trial in enumerate(trials):
        if trial.key in done and callback:
            callback(SweepEvent("skip", index, len(trials), trial, done[trial.key]))
    if pending:
        _init(ray, config)
        device = "cuda" if config.gpus_per_trial > 0 else "cpu"
        task = ray.remote(remote).options(
            num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial,
            max_retries=config.max_retries, retry_exceptions=False,
        )  # fmt: skip
        threads = max(1, int(config.cpus_per_trial))
        refs = {
            task.remote(
                t.to_dict(), data_dir, device, threads, str(trial_dir(folder, t).resolve())
            ): key
            for key, (_, t) in pending.items()
        }
        for index, trial in pending.values():
            if callback:
                callback(SweepEvent("start", index, len(trials), trial))
        _collect(ray, refs, pending, folder, done, len(trials), callback, meta)
    return [done[k] for k in keys]


def _init(ray: Any, config: RayConfig) -> None:
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
    if config.address is not None:
        ray.init(address=config.address, **options)
    else:
        ray.init(num_cpus=config.local_cpus, **options)


def _collect(
    ray: Any,
    refs: dict[Any, str],
    pending: dict[str, tuple[int, Trial]],
    folder: Path,
    done: dict[str, dict[str, Any]],
    total: int,
    callback: Callable[[SweepEvent], None] | None,
    meta: dict[str, Any] | None,
) -> None:
    """Store each record as its task ends (the driver is the only writer)."""
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            key = refs[ready[0]]
            index, trial = pending[key]
            try:
                record = ray.get(ready[0])
            except Exception as exc:
                record = failure_record(trial, exc)
            record = _with_meta(record, meta)
            append_record(folder, record)
            if not record.get("failed"):
                discard(trial_dir(folder, trial))
            done[key] = record
            if callback:
                kind = "failed" if record.get("failed") else "done"
                callback(SweepEvent(kind, index, total, trial, record))
    except KeyboardInterrupt:
        for ref in waiting:
            ray.cancel(ref, force=True)
        raise


def _with_meta(record: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any]:
    """``record`` with the driver's ``meta`` (command, machine); the machine is the worker's
    where the worker reported one, since that is where the trial trained."""
    record = dict(record)
    worker = record.pop(WORKER_MACHINE, None)
    if meta is None:
        return record
    meta = {**meta, "machine": worker} if worker is not None else meta
    return {**record, "meta": meta}


def failure_record(trial: Trial, error: BaseException) -> dict[str, Any]:
    """The record of a trial that could not finish: its key, its trial and the error."""
    message = " ".join(str(error).split())[:2000]
    return {
        "key": trial.key,
        "trial": trial.to_dict(),
        "label": trial.label,
        "failed": True,
        "error": f"{type(error).__name__}: {message}",
        "time": time.time(),
    }
