"""CLI smoke tests of export, predict and bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import png_bomb, run
from squeezenet.cli import main
from squeezenet.data import CIFAR10
from squeezenet.deploy.int8_calibration import same_images
from squeezenet.io.weights import save_weights
from squeezenet.models import create_model

# Every int8 export and engine here starts with a dynamo ONNX export of the same model.
pytestmark = pytest.mark.usefixtures("onnx_export_once")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A squeezenet_small weights file that no test changes (shared: its int8 export is too),
    at a quarter of the widths: every int8 engine here calibrates and runs GPTQ on 256 images."""
    model = create_model("squeezenet_small", seed=0, base_e=32, incr_e=32)
    return save_weights(
        model,
        tmp_path_factory.mktemp("weights") / "m.safetensors",
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
    assert all(r["peak_fraction"] > 0 for r in rows)  # the peak is measured before the rows


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["export", "squeezenet1_1", "--format", "caffe", "-o", "x"], "--format"),
        (["predict", "/nonexistent.safetensors", "x.jpg"], "weights file not found"),
        (["bench", "squeezenet1_1", "--engines", "tpu"], "--engines"),
        (["bench", "squeezenet1_1", "--engines", ","], "--engines"),
        (["bench", "squeezenet1_1", "--batch", "1,0"], "--batch"),
        (["bench", "squeezenet1_1", "--batch", "one"], "--batch"),
        (["predict", "/nonexistent.safetensors", "x.jpg", "--engine", "tpu"], "--engine"),
        (["predict", "/nonexistent.safetensors", "x.jpg", "--top", "0"], "--top"),
        (["predict", "squeezenet1_1", "x.jpg"], "predict needs a model file"),
        (["export", "squeezenet1_1"], "--output"),
    ],
)
def test_deploy_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err


def test_predict_an_unreadable_image_is_one_line(
    capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    code, out, err = run(capsys, "predict", str(weights), str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1 and "bad.jpg" in err


def test_predict_a_decompression_bomb_is_one_line(
    capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path
) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    code, out, err = run(capsys, "predict", str(weights), str(bomb))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "bomb.png" in err and "400000000 pixels" in err and "downscale it" in err


def test_eval_skip_bad_skips_a_decompression_bomb(
    capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path
) -> None:
    for i in range(2):
        Image.new("RGB", (32, 32), (i * 90, 40, 0)).save(tmp_path / f"{i}.png")
    png_bomb(tmp_path / "bomb.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n0.png,0\nbomb.png,1\n1.png,1\n")
    code, out, err = run(capsys, "eval", str(weights), "--data", str(manifest), "-q")
    assert code == 2 and err.count("\n") == 1 and "bomb.png" in err  # without --skip-bad
    code, out, err = run(
        capsys, "eval", str(weights), "--data", str(manifest), "--skip-bad", "-q", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert (result["n"], result["skipped"]) == (2, 1)


def test_export_parity_failure_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import squeezenet.deploy.export as export

    monkeypatch.setattr(export, "onnx_bytes", lambda model, example, opset: b"onnx")
    monkeypatch.setattr(export, "run_onnx", lambda data, x: np.full((2, 10), 5, np.float32))
    target = tmp_path / "m.onnx"
    code, out, err = run(capsys, "export", str(weights), "-o", str(target))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: the onnx export differs from PyTorch")
    assert "try the torchscript format or another ONNX opset" in err
    assert "Traceback" not in err and not target.exists()


def test_a_bug_in_a_deploy_command_keeps_its_traceback(
    capsys: pytest.CaptureFixture[str], weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import squeezenet.deploy.bench as bench

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("an internal bug")

    monkeypatch.setattr(bench, "benchmark", broken)
    with pytest.raises(ValueError, match="an internal bug"):  # not SystemExit(2)
        main(["bench", str(weights), "--engines", "eager_nchw"])
    assert "error:" not in capsys.readouterr().err


def test_eval_warns_when_an_engine_is_calibrated_on_the_evaluation_images(
    capsys: pytest.CaptureFixture[str], weights: Path, tmp_path: Path
) -> None:
    """Calibrating an int8 engine on the very images it is scored on gives a bound, not an
    accuracy: eval says so on stderr (stdout stays one JSON document); other images: silence."""
    rng = np.random.default_rng(0)
    for folder in ("eval", "calib"):
        for label in ("c0", "c1"):
            (tmp_path / folder / label).mkdir(parents=True)
            for i in range(2):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / folder / label / f"{i}.png")
    base = ["eval", str(weights), "--data", str(tmp_path / "eval"), "--json", "-q"]
    engine = ["--engine", "onnxruntime-int8", "--calib", str(tmp_path / "eval")]
    code, out, err = run(capsys, *base, *engine)  # the warning end to end, once
    assert code == 0 and json.loads(out)["n"] == 4
    assert "--calib is the evaluation data" in err, err
    # the rule behind it (each int8 engine build costs seconds): other images, no warning
    assert not same_images(str(tmp_path / "calib"), str(tmp_path / "eval"), "test")
    assert same_images("synthetic", "synthetic", "train")  # calibration reads the train split
    assert not same_images("synthetic", "synthetic", "test")
    code, out, err = run(capsys, *base, "--calib", str(tmp_path / "calib"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "int8 engines only" in err


def test_the_engine_names_in_help_are_the_engines() -> None:
    """--help lists the engines without importing torch; it must name exactly the real ones."""
    from squeezenet.cli.options import ENGINE_NAMES
    from squeezenet.deploy.engines import ENGINES

    assert sorted(ENGINE_NAMES.split(" | ")) == sorted(["torch", *ENGINES])


@pytest.fixture(scope="module")
def exported(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The weights exported to int8 ONNX (synthetic calibration), with a PNG beside it; the
    tests only read it, so one export serves them all."""
    folder = tmp_path_factory.mktemp("exported")
    target = folder / "q.onnx"
    argv = ["export", weights, "--int8", "--calib", "synthetic", "-o", target, "--json"]
    with pytest.raises(SystemExit) as exit_info:  # capsys is function-scoped: run() needs it
        main([str(a) for a in argv])
    assert exit_info.value.code in (0, None)
    Image.new("RGB", (32, 32), (10, 200, 30)).save(folder / "x.png")
    return target


def test_an_exported_onnx_runs_in_eval_predict_and_bench(
    capsys: pytest.CaptureFixture[str], exported: Path, weights: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "eval", exported, "--data", "synthetic", "--json")
    assert code == 0 and 0 <= json.loads(out)["top1"] <= 1
    code, out, _ = run(
        capsys, "eval", exported, "--data", "synthetic", "--against", weights, "--json"
    )
    assert code == 0 and json.loads(out)["agreement"] > 0.5
    image = exported.parent / "x.png"
    code, out, _ = run(capsys, "predict", exported, image, "--top", "2", "--json")
    assert code == 0 and json.loads(out)[0]["top"][0]["name"].startswith("c")
    code, out, _ = run(capsys, "bench", exported, "--batch", "2", "--seconds", "0.05", "--json")
    document = json.loads(out)
    assert code == 0 and document["precision"] == "int8" and document["baseline"] == "onnxruntime"
    assert [r["engine"] for r in document["rows"]] == ["onnxruntime"]
    assert document["rows"][0]["peak_fraction"] > 0


def test_a_wrong_int8_file_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], exported: Path, tmp_path: Path
) -> None:
    from deploy.test_selfcheck import corrupt_a_scale

    bad = tmp_path / "bad.onnx"
    corrupt_a_scale(exported, bad)
    for argv in (
        ["eval", bad, "--data", "synthetic"],
        ["predict", bad, exported.parent / "x.png"],
        ["bench", bad, "--batch", "1", "--seconds", "0.05"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1, (argv, err)
        assert err.startswith(f"error: {bad} on onnxruntime: on this machine the model's outputs")
        assert "Traceback" not in err


def test_an_exported_onnx_is_not_requantized(
    capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    for extra in (["--engine", "onnxruntime-int8"], ["--calib", "synthetic"]):
        code, _, err = run(capsys, "eval", exported, "--data", "synthetic", *extra)
        assert code == 2 and "an exported .onnx file runs as it is" in err


def test_the_int8_engine_checks_its_kernels(
    capsys: pytest.CaptureFixture[str], weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that computes something else (here: logits doubled) is refused in one line."""
    import squeezenet.deploy.onnx_file as onnx_file

    real = onnx_file.runner
    monkeypatch.setattr(onnx_file, "runner", lambda data, rt: lambda x: 2 * real(data, rt)(x))
    code, out, err = run(
        capsys, "eval", weights, "--data", "synthetic", "--engine", "onnxruntime-int8",
        "--calib", "synthetic",
    )  # fmt: skip
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "the onnxruntime-int8 engine's model on onnxruntime: on this machine" in err


def test_bench_says_what_the_int8_engines_calibrated_on(
    capsys: pytest.CaptureFixture[str], weights: Path
) -> None:
    code, out, err = run(
        capsys, "bench", weights, "--engines", "onnxruntime-int8", "--batch", "1",
        "--seconds", "0.05", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["calibration"].startswith("uniform noise")
    assert "note: the int8 engines are calibrated on uniform noise" in err
