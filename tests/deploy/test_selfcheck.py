"""The self-check an exported ONNX file carries, and its verification where the file runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data import CIFAR10
from squeezenet.deploy.export import export_model
from squeezenet.deploy.int8 import Int8Config, export_int8
from squeezenet.deploy.int8_calibration import calibration_batches
from squeezenet.deploy.onnx_file import ModelInfo, checked_runner, read_onnx
from squeezenet.deploy.selfcheck import (
    INT8_TOLERANCE,
    CheckFormatError,
    CheckInputs,
    ModelCheckError,
    SelfCheck,
    make_check,
    mean_kl,
    verify,
)
from squeezenet.models import create_model

# The same small model is exported (float, int8, in engines) by test after test.
pytestmark = pytest.mark.usefixtures("onnx_export_once")
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
INFO = ModelInfo("squeezenet_small", {}, CIFAR10.to_dict(), [f"c{i}" for i in range(10)])


def small_model() -> torch.nn.Module:
    return create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()


def test_check_inputs_are_the_same_bytes_on_every_machine() -> None:
    """numpy's PCG64 and float64 arithmetic are the same everywhere: the golden hash pins it."""
    x = CheckInputs((3, 32, 32), CIFAR10.mean, CIFAR10.std).images()
    assert x.shape == (8, 3, 32, 32) and x.dtype == np.float32
    digest = hashlib.sha256(x.tobytes()).hexdigest()
    assert digest == "0567dfff64a8ef00b5ccede1627ffe7cb755bb74fc87427a3d40f44334d713a2"
    # 4 x 4 pixel blocks: flat patches, as in photographs
    assert np.all(x[:, :, :4, :4] == x[:, :, :1, :1])


def test_a_self_check_survives_its_json() -> None:
    inputs = CheckInputs((3, 8, 8), (0.0,) * 3, (1.0,) * 3, count=2)
    rng = np.random.default_rng(0)
    exact, reference = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    check = make_check(inputs, exact, reference, precision="int8", export={"note": 1})
    again = SelfCheck.from_json(check.to_json())
    assert again.inputs == inputs and again.tolerance == INT8_TOLERANCE
    assert np.array_equal(again.exact, check.exact)
    assert np.array_equal(again.reference, reference.astype(np.float32))
    assert again.export["kl"] == pytest.approx(mean_kl(reference, exact), abs=1e-6)
    assert again.export["note"] == 1


@pytest.mark.parametrize("text", ["{", '{"version": 1}', '{"version": 99}'])
def test_a_damaged_self_check_is_a_format_error(text: str) -> None:
    with pytest.raises(CheckFormatError, match="re-export"):
        SelfCheck.from_json(text)


def test_verify_refuses_outputs_off_the_files_arithmetic() -> None:
    inputs = CheckInputs((3, 8, 8), (0.0,) * 3, (1.0,) * 3, count=4)
    exact = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    check = make_check(inputs, exact, exact, precision="int8")
    assert verify(lambda x: exact + 1e-3, check, what="f").kl_exact < 1e-5  # a rounding apart
    with pytest.raises(ModelCheckError):
        verify(lambda x: exact + 0.1 * np.abs(exact).max(), check, what="f")  # same softmax
    with pytest.raises(ModelCheckError, match=r"f: on this machine .* check images") as info:
        verify(lambda x: exact * 3, check, what="f", hint="A hint.")
    assert str(info.value).endswith("A hint.") and "\n" not in str(info.value)
    with pytest.raises(ModelCheckError):
        verify(lambda x: exact * np.nan, check, what="f")  # NaN fails too


def test_a_float_export_carries_its_model_and_passes_its_check(tmp_path: Path) -> None:
    export_model(small_model(), tmp_path / "m.onnx", "onnx", (3, 32, 32), info=INFO)
    file = read_onnx(tmp_path / "m.onnx")
    assert file.model_name == "squeezenet_small" and file.class_names == INFO.class_names
    assert file.preprocess is not None and Preprocess.from_dict(file.preprocess) == CIFAR10
    assert file.check.precision == "float32"
    _, result = checked_runner(file)
    assert result.kl_exact <= file.check.tolerance and result.agreement == 1.0


def test_an_int8_export_records_its_format_and_agreement(tmp_path: Path) -> None:
    calib = calibration_batches("synthetic", CIFAR10, images=32)
    report = export_int8(small_model(), tmp_path / "q.onnx", calib, info=INFO)
    file = read_onnx(tmp_path / "q.onnx")
    assert (
        file.check.precision == "int8" and file.check.export["int8_format"] == Int8Config().format
    )
    assert file.check.export["calibration_agreement"] == report["agreement"]
    assert report["check"]["kl_exact"] <= INT8_TOLERANCE


def corrupt_a_scale(source: Path, target: Path, factor: float = 4.0) -> None:
    """``source`` with the per-channel weight scales of its last conv multiplied."""
    proto = onnx.load(str(source))
    scales = [i for i in proto.graph.initializer if i.name.endswith("_scale") and i.dims]
    last = scales[-1]
    values = onnx.numpy_helper.to_array(last) * np.float32(factor)
    last.CopyFrom(onnx.numpy_helper.from_array(values, last.name))
    onnx.save(proto, str(target))


def test_a_file_with_a_corrupted_scale_is_refused(tmp_path: Path) -> None:
    calib = calibration_batches("synthetic", CIFAR10, images=32)
    export_int8(small_model(), tmp_path / "q.onnx", calib, info=INFO)
    corrupt_a_scale(tmp_path / "q.onnx", tmp_path / "bad.onnx")
    with pytest.raises(ModelCheckError, match=r"bad\.onnx on onnxruntime"):
        checked_runner(read_onnx(tmp_path / "bad.onnx"))


def test_a_foreign_onnx_file_is_a_format_error(tmp_path: Path) -> None:
    export_model(small_model(), tmp_path / "m.onnx", "onnx", (3, 32, 32), info=INFO)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "plain.onnx"))
    with pytest.raises(CheckFormatError, match="no squeezenet metadata"):
        read_onnx(tmp_path / "plain.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(CheckFormatError, match="not an ONNX model"):
        read_onnx(tmp_path / "junk.onnx")


def published(tmp_path: Path) -> Path:
    net = SHARED / "squeezenet-dc" / "compressed_SqueezeNet.net"
    if not net.is_file() or not (SHARED / "cifar10" / "cifar10_jpeg.npz").is_file():
        pytest.skip(f"reference data missing: {net} or CIFAR-10 (see ../shared/data/README.md)")
    from squeezenet.workflows.compress_file import import_caffe_dc

    import_caffe_dc(net, tmp_path / "sq.safetensors")
    return tmp_path / "sq.safetensors"


# Slow: the same self-check path runs in the default suite on small models
# (test_an_int8_export_records_its_format_and_agreement,
# test_a_file_with_a_corrupted_scale_is_refused); this one adds the published weights at
# 227 px, and needs ../shared/data.
@pytest.mark.slow
def test_the_published_int8_export_agrees_here_as_it_did_at_export(tmp_path: Path) -> None:
    """The imported published weights at 227 px, exported to int8 on whatever CPU runs the
    suite: this CPU's kernels agree with float32 on the calibration images as the file's own
    arithmetic did at export (a saturating AVX2 kernel agreed 0.32 against 0.72)."""
    from squeezenet.workflows.load import load_any

    loaded = load_any(published(tmp_path))
    assert loaded.preprocess is not None
    calib = calibration_batches("cifar10", loaded.preprocess, images=64)
    info = ModelInfo("squeezenet1_0", loaded.config, loaded.preprocess.to_dict())
    report = export_int8(loaded.model, tmp_path / "q.onnx", calib, info=info)
    file = read_onnx(tmp_path / "q.onnx")
    run, result = checked_runner(file)
    with torch.no_grad():
        reference = np.concatenate([loaded.model(torch.from_numpy(x)).numpy() for x in calib])
    here = np.concatenate([run(x) for x in calib])
    agreement = float((here.argmax(1) == reference.argmax(1)).mean())
    recorded = file.check.export["calibration_agreement"]
    assert recorded == report["agreement"] > 0.5
    assert abs(agreement - recorded) <= 3 / len(reference)  # a rounding tie or two at most
    assert result.kl_exact <= file.check.tolerance


QEMU = shutil.which("qemu-x86_64")


@pytest.mark.slow
@pytest.mark.skipif(QEMU is None or os.uname().machine != "x86_64", reason="needs qemu-user")
def test_an_avx2_cpu_refuses_int8_weights_and_runs_the_portable_formats(tmp_path: Path) -> None:
    """Under QEMU's EPYC-Milan (AVX2 + FMA, no AVX-512, no VNNI), ONNX Runtime's u8 x s8
    kernel saturates: the u8s8 file is refused, the u8u8 (default) and u8s7 files pass."""
    from squeezenet.workflows.load import load_any

    loaded = load_any(published(tmp_path))
    assert loaded.preprocess is not None
    calib = calibration_batches("cifar10", loaded.preprocess, images=64)
    info = ModelInfo("squeezenet1_0", loaded.config, loaded.preprocess.to_dict())
    formats = ("u8s8", "u8u8", "u8s7")
    for fmt in formats:
        try:
            export_int8(loaded.model, tmp_path / f"{fmt}.onnx", calib, info=info,
                        config=Int8Config(format=fmt))  # fmt: skip
        except ModelCheckError:  # this machine saturates itself: nothing more to show
            assert fmt == "u8s8"
            return
    script = (
        "import sys\nfrom squeezenet.deploy.onnx_file import read_onnx, checked_runner\n"
        "from squeezenet.deploy.selfcheck import ModelCheckError\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        checked_runner(read_onnx(name)); print(name, 'ok')\n"
        "    except ModelCheckError as e:\n        print(name, 'refused', e)\n"
    )
    env = {**os.environ, "QEMU_CPU": "EPYC-Milan"}
    files = [str(tmp_path / f"{fmt}.onnx") for fmt in formats]
    done = subprocess.run(
        [QEMU, sys.executable, "-c", script, *files], env=env, capture_output=True, text=True,
        timeout=900, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{files[0]} refused") and "This CPU has no VNNI" in lines[0]
    assert lines[1:] == [f"{files[1]} ok", f"{files[2]} ok"]


@pytest.mark.parametrize(
    ("features", "says"),
    [
        ({"AVX2": True, "AVX512VNNI": False, "AVXVNNI": False}, True),  # Zen 3, Haswell..
        ({"AVX2": True, "AVX512VNNI": True}, False),  # Ice Lake+, Zen 4
        ({"AVX2": True, "AVX512VNNI": False, "AVXVNNI": True}, False),  # Alder Lake
        ({"NEON": True, "ASIMD": True}, False),  # not x86: no such kernel
    ],
)
def test_the_int8_hint_names_a_cpu_without_vnni(
    features: dict[str, bool], says: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from squeezenet.deploy.runtimes import cpu_int8_note

    module = importlib.import_module("numpy._core._multiarray_umath")
    monkeypatch.setattr(module, "__cpu_features__", features)
    assert cpu_int8_note().startswith("This CPU has no VNNI") is says
