"""CLI smoke tests of export, predict and bench."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cli_helpers import run
from squeezenet.data import CIFAR10
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model


@pytest.fixture()
def weights(tmp_path: Path) -> Path:
    model = create_model("squeezenet_small", seed=0)
    return save_weights(
        model,
        tmp_path / "m.safetensors",
        model_name="squeezenet_small",
        preprocess=CIFAR10,
        class_names=[f"c{i}" for i in range(10)],
    )


def test_export_json(capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "export",
        str(weights),
        "--format",
        "torchscript",
        "-o",
        str(tmp_path / "m.pt"),
        "--json",
    )
    assert code == 0
    document = json.loads(out)
    assert document["max_abs_diff"] <= 1e-4 and (tmp_path / "m.pt").is_file()


def test_predict_json(capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image)
    code, out, _ = run(capsys, "predict", str(weights), str(image), "--top", "2", "--json")
    assert code == 0
    [result] = json.loads(out)
    assert len(result["top"]) == 2 and result["top"][0]["name"].startswith("c")


def test_bench_json(capsys: pytest.CaptureFixture[str], weights: Path) -> None:
    code, out, _ = run(
        capsys,
        "bench",
        str(weights),
        "--batch",
        "1,2",
        "--seconds",
        "0.05",
        "--engines",
        "eager_nchw,eager_channels_last",
        "--json",
    )
    assert code == 0
    rows = json.loads(out)["rows"]
    assert {(r["engine"], r["batch"]) for r in rows} == {
        (e, b) for e in ("eager_nchw", "eager_channels_last") for b in (1, 2)
    }


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["export", "squeezenet1_1", "--format", "caffe", "-o", "x"], "--format"),
        (["predict", "/nonexistent.safetensors", "x.jpg"], "weights file not found"),
        (["bench", "squeezenet1_1", "--engines", "tpu"], "--engines"),
    ],
)
def test_deploy_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err
