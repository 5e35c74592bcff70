"""Design-space sweeps: grids, trial keys, resuming without repeating finished points."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run
from squeezenet.experiments.sweep import (
    INFLIGHT,
    RESULTS,
    Trial,
    parse_grid,
    read_records,
    run_sweep,
    run_trial,
    trial_dir,
    trials_for,
)
from squeezenet.train.config import recipe
from squeezenet.train.loop import FitEvent

TINY = recipe("small", epochs=1, batch_size=32, warmup_epochs=0.0, checkpoint_every=0)


def _trials(values: str = "0.125,0.25,0.5,0.75") -> list[Trial]:
    return trials_for(
        parse_grid([f"squeeze_ratio={values}"]),
        model="squeezenet_small",
        data="synthetic",
        train=TINY,
        train_images=64,
        test_images=64,
    )


def _fake(trial: Trial) -> dict[str, Any]:
    return {"key": trial.key, "label": trial.label, "top1": 0.5}


def test_grid_is_a_product_with_typed_values() -> None:
    grid = parse_grid(["squeeze_ratio=0.25,0.5", "bypass=none,simple", "batch_norm=true"])
    assert len(grid) == 4
    assert grid[0] == {"squeeze_ratio": 0.25, "bypass": "none", "batch_norm": True}
    for bad in (["squeeze_ratio"], ["=1,2"], ["a=1", "a=2"], ["x="]):
        with pytest.raises(ValueError, match="--grid"):
            parse_grid(bad)


def test_trial_keys_are_stable_and_validated() -> None:
    a, b = _trials("0.25")[0], _trials("0.25")[0]
    assert a.key == b.key and len(a.key) == 16
    assert a.key != _trials("0.5")[0].key
    assert Trial.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    with pytest.raises(ValueError, match=r"squeeze_ratio|no option"):
        trials_for(
            parse_grid(["no_such_field=1"]), model="squeezenet_small", data="synthetic", train=TINY
        )


def test_an_interrupted_sweep_resumes_without_repeating_finished_points(tmp_path: Path) -> None:
    trials = _trials()
    calls: list[str] = []

    def interrupted(trial: Trial) -> dict[str, Any]:
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the third trial
        calls.append(trial.key)
        return _fake(trial)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(trials, tmp_path, runner=interrupted)
    assert [r["key"] for r in read_records(tmp_path)] == [t.key for t in trials[:2]]

    again: list[str] = []
    records = run_sweep(trials, tmp_path, runner=lambda t: again.append(t.key) or _fake(t))
    assert again == [t.key for t in trials[2:]]  # only the missing points ran
    assert [r["key"] for r in records] == [t.key for t in trials]
    assert len((tmp_path / RESULTS).read_text().splitlines()) == 4
    assert run_sweep(trials, tmp_path, runner=lambda t: pytest.fail("nothing left to run"))


def test_a_torn_last_line_is_dropped_and_rerun(tmp_path: Path) -> None:
    trials = _trials("0.25,0.5")
    run_sweep(trials[:1], tmp_path, runner=_fake)
    with (tmp_path / RESULTS).open("a") as handle:
        handle.write('{"key": "' + trials[1].key + '", "top1"')  # crash mid-append
    assert [r["key"] for r in read_records(tmp_path)] == [trials[0].key]
    ran: list[str] = []
    run_sweep(trials, tmp_path, runner=lambda t: ran.append(t.key) or _fake(t))
    assert ran == [trials[1].key]
    assert all(json.loads(line) for line in (tmp_path / RESULTS).read_text().splitlines())


def test_run_trial_trains_and_reports_size_and_accuracy() -> None:
    record = run_trial(_trials("0.25")[0])
    assert record["params"] > 0 and record["size_bytes"] == 4 * record["params"]
    assert 0.0 <= record["top1"] <= 1.0 and record["train_images"] == 64
    assert record["trial"]["overrides"] == {"squeeze_ratio": 0.25}
    assert len(record["history"]) == 1
    json.dumps(record)  # JSON-ready


def test_a_trial_killed_mid_run_resumes_from_its_checkpoint_to_the_same_result(
    tmp_path: Path,
) -> None:
    trial = _trials("0.25")[0]
    trial = dataclasses.replace(trial, train=dataclasses.replace(trial.train, epochs=2))
    whole = run_sweep([trial], tmp_path / "whole")[0]

    def killed_after_one_epoch(event: FitEvent) -> None:
        if event.kind == "epoch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(
            trial, callback=killed_after_one_epoch, run_dir=trial_dir(tmp_path / "cut", trial)
        )
    assert (trial_dir(tmp_path / "cut", trial) / "checkpoint.safetensors").is_file()
    resumed = run_sweep([trial], tmp_path / "cut")[0]
    assert resumed["resumed_at_step"] == 2 and "resumed_at_step" not in whole  # 64 / 32 a epoch
    for field in ("top1", "top5", "train_loss", "eval_loss"):
        assert resumed[field] == whole[field], field
    assert [h["train_loss"] for h in resumed["history"]] == [
        h["train_loss"] for h in whole["history"]
    ]
    assert resumed["seconds"] > 0
    # the checkpoint goes once the record is stored, and git never sees the scratch folder
    assert [p.name for p in (tmp_path / "cut" / INFLIGHT).iterdir()] == [".gitignore"]
    assert (tmp_path / "cut" / INFLIGHT / ".gitignore").read_text() == "*\n"


def test_cli_sweep_resumes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "sweep",
        "--grid",
        "bypass=none,simple",
        "--data",
        "synthetic",
        "--epochs",
        "1",
        "--train-images",
        "64",
        "--test-images",
        "32",
        "--batch-size",
        "32",
        "--out",
        tmp_path,
        "--json",
        "-q",
    ]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0
    first = json.loads(stdout)
    assert [r["trial"]["overrides"]["bypass"] for r in first] == ["none", "simple"]
    code, stdout, _ = run(capsys, *argv)
    assert code == 0 and json.loads(stdout) == first  # nothing retrained
    code, _, stderr = run(
        capsys, "sweep", "--grid", "bypass", "--data", "synthetic", "--out", tmp_path
    )
    assert code == 2 and "--grid" in stderr
