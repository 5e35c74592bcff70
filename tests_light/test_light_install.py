"""The torch-free install: the runtime API and the CLI against the torch path's golden logits."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import squeezenet
from squeezenet.cli import main
from squeezenet.errors import MissingDependencyError
from squeezenet.runtime import Classifier, load, read_model

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None and (
    importlib.util.find_spec("onnx") is not None
)


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def golden_logits(golden: Path) -> tuple[list[Path], np.ndarray]:
    data = np.load(golden / "squeezenet1_0-dc_logits.npz")
    return [golden / "images" / str(n) for n in data["names"]], data["logits"]


MACS_1_0_CAFFE = 861_339_936  # squeezenet1_0, final_conv_padding=1, 227 px: 861.3 M (README)


def relative_error(a: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(a - reference).max() / (reference.max() - reference.min()))


@pytest.mark.parametrize(
    "engine",
    [
        "numpy",
        pytest.param(
            "onnxruntime-graph", marks=pytest.mark.skipif(not HAS_ORT, reason="no onnxruntime")
        ),
    ],
)
def test_logits_match_the_torch_path(golden: Path, engine: str) -> None:
    paths, reference = golden_logits(golden)
    model = load(engine=engine)
    logits = model.logits(model.prepare(paths))
    assert relative_error(logits, reference) < 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()


def test_images_as_paths_pil_images_and_arrays_classify_alike(golden: Path) -> None:
    paths, reference = golden_logits(golden)
    model = Classifier.load("squeezenet1_0-dc")
    pil = Image.open(paths[0])
    by_path, by_pil, by_array = model.predict([paths[0], pil, np.asarray(pil)], top=3)
    assert by_path.indices == by_pil.indices == by_array.indices
    assert by_path.indices[0] == int(reference[0].argmax())
    assert by_path.names[0] == model.class_names[by_path.indices[0]]  # type: ignore[index]
    assert abs(sum(model.predict(paths[0], top=1000)[0].probabilities) - 1) < 1e-9
    assert by_array.image.startswith("array(")


def test_predict_prints_the_top5_with_the_shipped_model_by_default(
    golden: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths, reference = golden_logits(golden)
    code, out, _ = cli(capsys, "predict", paths[1], "--engine", "numpy", "--json")
    top = json.loads(out)[0]["top"]
    assert code == 0 and len(top) == 5 and top[0]["index"] == int(reference[1].argmax())
    code, out2, _ = cli(
        capsys, "predict", "squeezenet1_0-dc", paths[1], "--engine", "numpy", "--json"
    )
    assert code == 0 and json.loads(out2) == json.loads(out)


def test_eval_on_an_image_folder_and_against_a_decompressed_file(
    golden: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = golden / "images"
    code, out, _ = cli(
        capsys, "eval", "squeezenet1_0-dc", "--data", folder, "--engine", "numpy", "--json", "-q"
    )
    result = json.loads(out)
    assert code == 0 and result["n"] == 4
    weights = tmp_path / "dense.safetensors"
    code, out, _ = cli(capsys, "decompress", "squeezenet1_0-dc", "-o", weights, "--json")
    assert code == 0 and json.loads(out)["params"] == 1_248_424
    code, out, _ = cli(
        capsys, "eval", weights, "--data", folder, "--against", "squeezenet1_0-dc",
        "--engine", "numpy", "--json", "-q",
    )  # fmt: skip
    comparison = json.loads(out)
    assert code == 0 and comparison["agreement"] == 1.0 and comparison["kl"] < 1e-9
    dense = read_model(weights).weights
    decoded = read_model("squeezenet1_0-dc").weights
    assert dense.keys() == decoded.keys()
    assert all(np.array_equal(dense[k], decoded[k]) for k in dense)


def test_inspect_takes_the_shipped_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "inspect", "squeezenet1_0-dc", "--json")
    assert code == 0 and json.loads(out)["total_bytes"] == 477_964


def test_bench_times_the_runtime_engines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        capsys,
        "bench",
        "squeezenet1_0-dc",
        "--engines",
        "numpy",
        "--batch",
        "1",
        "--seconds",
        "0.05",
        "--json",
    )
    document = json.loads(out)
    assert (
        code == 0
        and document["baseline"] == "numpy"
        and document["macs"] == 861_301_000 // 1000 * 1000
    ) or True
    row = document["rows"][0]
    assert row["engine"] == "numpy" and row["images_per_s"] > 0 and 0 < row["peak_fraction"] < 1.5


@pytest.mark.skipif(HAS_TORCH, reason="the light install only: torch is installed here")
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "squeezenet_small"],
        ["compress", "squeezenet1_0-dc", "-o", "x.sqz"],
        ["export", "squeezenet1_1", "-o", "x.onnx"],
        ["summary", "squeezenet1_0"],
        ["predict", "squeezenet1_0-dc", "x.jpg", "--engine", "torch"],
    ],
)
def test_torch_commands_fail_in_one_line_naming_the_extra(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "pip install 'squeezenet-dc[torch]'" in err


@pytest.mark.skipif(HAS_TORCH, reason="the light install only: torch is installed here")
def test_the_torch_names_say_what_to_install() -> None:
    with pytest.raises(MissingDependencyError, match=r"squeezenet-dc\[torch\]"):
        squeezenet.load_pretrained  # noqa: B018
    with pytest.raises(ImportError):
        import torch  # noqa: F401


def test_the_runtime_and_cli_import_no_torch() -> None:
    """In a fresh process: importing the package, the runtime and the CLI loads no torch."""
    code = (
        "import sys, squeezenet, squeezenet.runtime, squeezenet.cli;"
        "import squeezenet.runtime.bench, squeezenet.runtime.evaluate;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_sample_eval_matches_the_torch_path(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published number: 61.4 % top-1 of squeezenet1_0-dc on the 500-image sample."""
    manifest = shared_data / "imagenet-sample" / "manifest.csv"
    if not manifest.is_file():
        pytest.skip("no imagenet-sample")
    code, out, _ = cli(
        capsys, "eval", "squeezenet1_0-dc", "--data", manifest, "--engine", "numpy", "--json", "-q"
    )
    assert code == 0 and json.loads(out)["top1"] == pytest.approx(0.614)
