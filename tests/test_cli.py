"""CLI contract: stdout results, one JSON document with --json, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run


@pytest.mark.parametrize(
    ("name", "params"), [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)]
)
def test_summary_json(capsys: pytest.CaptureFixture[str], name: str, params: int) -> None:
    code, out, err = run(capsys, "summary", name, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["params"] == params
    assert document["size_bytes"] == 4 * params
    assert {"name", "out_shape", "params", "macs"} <= set(document["layers"][0])
    assert sum(layer["params"] for layer in document["layers"]) == params
    assert err == ""


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "squeezenet1_0")
    assert code == 0
    assert "fire9" in out and "1,248,424" in out and "818.9 M" in out


def test_summary_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "squeezenet1_0", "--squeeze-ratio", "0.75", "--json")
    assert code == 0 and json.loads(out)["params"] == 4_841_704


def test_sweep_lists_fig3_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", "--sweep", "--json")
    assert code == 0
    points = json.loads(out)
    assert [p["value"] for p in points if p["axis"] == "squeeze_ratio"] == [
        0.125,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert [p["value"] for p in points if p["axis"] == "pct_3x3"] == [
        0.01,
        0.125,
        0.25,
        0.5,
        0.75,
        0.99,
    ]
    by_sr = {p["value"]: p for p in points if p["axis"] == "squeeze_ratio"}
    assert by_sr[0.125]["size_bytes"] == 4 * 1_248_424
    assert by_sr[0.75]["size_mib"] == pytest.approx(19.0, rel=0.05)  # paper: ~19 MB
    assert by_sr[1.0]["size_mib"] == pytest.approx(24.0, rel=0.05)  # paper: ~24 MB


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["summary", "no_such_model"], "known models: alexnet"),
        (["summary", "squeezenet1_0", "--pct-3x3", "2"], "pct_3x3"),
        (["summary", "squeezenet1_0", "--input-size", "20"], "--input-size"),
        (["summary", "--no-such-flag"], "No such option"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_console_script_has_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "squeezenet", "summary", "no_such_model"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model 'no_such_model'")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "squeezenet_small", "--data", "no-such-dataset"], "unknown dataset"),
        (
            ["train", "squeezenet_small", "--data", "fashion-mnist", "--data-dir", "/nonexistent"],
            "apt-get install -y dataset-fashion-mnist",
        ),
        (["train", "--resume", "/nonexistent-run"], "not a run folder"),
        (["eval", "/nonexistent.safetensors", "--data", "synthetic"], "weights file not found"),
    ],
)
def test_train_and_eval_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and needle in err, err


def test_train_then_eval_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code, out, _ = run(
        capsys,
        "train",
        "squeezenet_small",
        "--data",
        "synthetic",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--set",
        "base_e=16",
        "--set",
        "incr_e=16",
        "-o",
        str(run_dir),
        "--quiet",
        "--json",
    )
    assert code == 0 and json.loads(out)["epoch"] == 1
    code, out, _ = run(
        capsys,
        "eval",
        str(run_dir / "model.safetensors"),
        "--data",
        "synthetic",
        "--json",
        "--quiet",
    )
    document = json.loads(out)
    assert code == 0 and {"top1", "top5", "n"} <= set(document) and document["n"] == 128
