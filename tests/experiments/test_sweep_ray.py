"""Sweeps on Ray: the same records as the in-process engine, retries of killed workers, reruns.

The Ray tests need ``pip install -e '.[dev,ray]'``; without Ray they skip, and the one that
checks the missing-Ray error runs in the default suite.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from cli_helpers import run
from squeezenet.experiments.sweep import SweepEvent, Trial, read_records, run_sweep, trials_for
from squeezenet.train import recipe

TINY = {"base_e": 16, "incr_e": 16}


def _trials() -> list[Trial]:
    train = recipe("small", epochs=1, batch_size=32, max_steps=3, warmup_epochs=0.5, seed=0)
    # two trials, one per CPU of the local instance: each worker is killed and restarted once
    grid = [{"squeeze_ratio": 0.125, "pct_3x3": 0.25}, {"squeeze_ratio": 0.25, "pct_3x3": 0.5}]
    return trials_for(grid, model="squeezenet_small", data="synthetic", train=train,
                      fixed=TINY, train_images=128, test_images=64)  # fmt: skip


def test_ray_missing_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    code, out, err = run(
        capsys, "sweep", "--grid", "squeeze_ratio=0.25", "--data", "synthetic",
        "-o", tmp_path / "s", "--engine", "ray",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "pip install -e '.[ray]'" in err
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray", reason="pip install -e '.[dev,ray]'")
    # pytest imports this file by path, so Ray's workers cannot import it by name: ship the
    # task bodies defined here (_dies_once, _raises) by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def _dies_once(markers: Path) -> Any:
    """A Ray task body whose first attempt of each trial kills its own worker process (the
    workers were started before the test, so the marker folder travels in the closure)."""

    def body(
        trial: dict[str, Any], data_dir: str | None, device: str, threads: int, run_dir: str
    ) -> Any:
        from squeezenet.experiments.sweep_ray import _remote_trial

        marker = markers / Trial.from_dict(trial).key
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return _remote_trial(trial, data_dir, device, threads, run_dir)

    return body


def _raises(
    trial: dict[str, Any], data_dir: str | None, device: str, threads: int, run_dir: str
) -> Any:
    raise RuntimeError("this trial cannot run")


def test_ray_gives_the_in_process_records_retries_and_resumes(
    ray_local: Any, tmp_path: Path
) -> None:
    from squeezenet.experiments.sweep_ray import RayConfig, run_sweep_ray

    trials = _trials()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Ray's trials run on one thread each: the same arithmetic
    try:
        local = run_sweep(trials, tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    events: list[SweepEvent] = []
    config = RayConfig(cpus_per_trial=1, max_retries=2)
    driver = {"command": "squeezenet sweep", "machine": {"torch_threads": 99}}
    remote = run_sweep_ray(
        trials, tmp_path / "ray", config, callback=events.append, remote=_dies_once(tmp_path),
        meta=driver,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if len(p.name) == 16) == sorted(
        t.key for t in trials
    )  # every first attempt died, and the retry finished each trial
    assert [r["key"] for r in remote] == [r["key"] for r in local]
    for a, b in zip(local, remote, strict=True):
        for field in ("top1", "top5", "train_loss", "eval_loss", "params", "macs"):
            assert a[field] == b[field], field
    assert sorted(e.kind for e in events) == ["done"] * len(trials) + ["start"] * len(trials)
    for record in read_records(tmp_path / "ray"):  # the machine is where the trial trained
        assert record["meta"]["command"] == "squeezenet sweep"
        assert record["meta"]["machine"]["torch_threads"] == 1
        assert "worker_machine" not in record
    again: list[SweepEvent] = []
    run_sweep_ray(trials, tmp_path / "ray", config, callback=again.append, remote=_raises)
    assert [e.kind for e in again] == ["skip"] * len(trials)  # nothing ran again
    assert len(read_records(tmp_path / "ray")) == len(trials) == 2


def test_a_failing_trial_is_stored_with_its_error_and_retried_by_a_rerun(
    ray_local: Any, tmp_path: Path
) -> None:
    from squeezenet.experiments.sweep_ray import RayConfig, run_sweep_ray

    trials = _trials()
    config = RayConfig(max_retries=0)
    records = run_sweep_ray(trials, tmp_path, config, remote=_raises)
    assert all(r["failed"] and "this trial cannot run" in r["error"] for r in records)
    assert read_records(tmp_path) == []  # failures never count as finished
    assert len(read_records(tmp_path, include_failed=True)) == 2
    done = run_sweep_ray(trials, tmp_path, config)
    assert all("top1" in r and not r.get("failed") for r in done)


def _dies_after_an_epoch(markers: Path) -> Any:
    """A Ray task body whose first attempt kills its worker right after the first epoch's
    checkpoint; the retry must continue from that checkpoint, not from step 0."""

    def body(
        trial: dict[str, Any], data_dir: str | None, device: str, threads: int, run_dir: str
    ) -> Any:
        from squeezenet.experiments.sweep import run_trial

        marker = markers / Trial.from_dict(trial).key

        def kill_after_epoch(event: Any) -> None:
            if event.kind == "epoch" and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)

        torch.set_num_threads(threads)
        return run_trial(
            Trial.from_dict(trial), device=device, callback=kill_after_epoch, run_dir=run_dir
        )

    return body


def test_a_worker_killed_mid_trial_is_retried_from_its_checkpoint(
    ray_local: Any, tmp_path: Path
) -> None:
    from squeezenet.experiments.sweep_ray import RayConfig, run_sweep_ray

    train = recipe("small", epochs=2, batch_size=32, warmup_epochs=0.0, seed=0)
    # one trial: its worker is killed once and the retry resumes (two ran the same path twice)
    trials = trials_for([{"squeeze_ratio": 0.125}],
                        model="squeezenet_small", data="synthetic", train=train,
                        fixed=TINY, train_images=64, test_images=64)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_sweep(trials, tmp_path / "local")
    finally:
        torch.set_num_threads(threads)
    config = RayConfig(cpus_per_trial=1, max_retries=1)
    remote = run_sweep_ray(trials, tmp_path / "ray", config, remote=_dies_after_an_epoch(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir() if len(p.name) == 16) == sorted(
        t.key for t in trials
    )  # every first attempt died after its first epoch
    for a, b in zip(local, remote, strict=True):
        assert b["resumed_at_step"] == 2  # 64 images / 32 a step: one epoch done before
        for field in ("top1", "top5", "train_loss", "eval_loss"):
            assert a[field] == b[field], field
    assert [p.name for p in (tmp_path / "ray" / "inflight").iterdir()] == [".gitignore"]
