"""The compact ONNX of a .sqz, the int8 export and engines, OpenVINO, and the sgemm peak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch

from squeezenet.arch.preprocess import CIFAR10
from squeezenet.compress import PrunePolicy, prune_
from squeezenet.compress.plain_data import from_compressed, to_compressed
from squeezenet.compress.weight_sharing import quantize_
from squeezenet.data import proxy_images as calibration_module
from squeezenet.deploy.bench import benchmark, sgemm_peak
from squeezenet.deploy.compact import export_compact
from squeezenet.deploy.engines import EngineModule, make_engine, onnx_data_engine
from squeezenet.deploy.export import ExportParityError, export_model, onnx_bytes
from squeezenet.deploy.int8 import INT8_AGREEMENT, export_int8
from squeezenet.deploy.int8_calibration import calibration_batches
from squeezenet.errors import ConfigError
from squeezenet.formats import read_sqz, write_sqz
from squeezenet.models import create_model

# The same small model is exported (float, int8, in engines) by test after test.
pytestmark = pytest.mark.usefixtures("onnx_export_once")
SHAPE = (3, 32, 32)


def _small_sqz(tmp_path: Path, bits: int = 4) -> Path:
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False)
    prune_(model, PrunePolicy.uniform(0.6))
    quantize_(model, bits)
    cm = to_compressed(model, model_name="squeezenet_small", preprocess=CIFAR10)
    path = tmp_path / "small.sqz"
    write_sqz(cm, path)
    return path


def test_the_compact_onnx_keeps_codes_uses_standard_ops_and_matches_the_decode(
    tmp_path: Path,
) -> None:
    sqz = _small_sqz(tmp_path)
    report = export_compact(sqz, tmp_path / "c.onnx")
    proto = onnx.load(str(tmp_path / "c.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    assert {node.domain for node in proto.graph.node} <= {"", "ai.onnx"}
    assert {"Gather", "Cast", "Reshape"} <= {node.op_type for node in proto.graph.node}
    codes = [i for i in proto.graph.initializer if i.name.endswith(".codes")]
    assert len(codes) == len(read_sqz(sqz).layers)
    assert all(i.data_type == onnx.TensorProto.UINT8 for i in codes)  # 4 bits + zero: a byte
    assert report.bytes < 0.5 * report.dense_bytes
    assert report.max_abs_diff["onnxruntime"] <= 1e-5
    x = torch.rand(3, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = from_compressed(read_sqz(sqz)).eval()(x).numpy()
    got = onnx_data_engine((tmp_path / "c.onnx").read_bytes())(x)
    assert np.abs(got - expected).max() <= 1e-5


def test_near_dense_8_bit_layers_take_the_complement_form(tmp_path: Path) -> None:
    """256 values and zero do not fit a byte: codes per weight plus the zeros' positions."""
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False)
    quantize_(model, 4)
    cm = to_compressed(model, model_name="squeezenet_small", preprocess=CIFAR10)
    first = cm.layers[0]  # every weight but one stored, all 256 codebook entries used
    numel = first.numel
    first.bits = 8
    first.codebook = np.linspace(-1, 1, 256).astype(np.float32)
    first.positions = np.arange(1, numel, dtype=np.int64)
    first.codes = (np.arange(numel - 1) % 256).astype(np.uint16)
    write_sqz(cm, tmp_path / "m.sqz")
    report = export_compact(tmp_path / "m.sqz", tmp_path / "m.onnx")
    modes = {row.name: row.mode for row in report.layers}
    assert modes[first.name] == "complement"
    assert report.max_abs_diff["onnxruntime"] <= 1e-5


def test_int8_export_is_calibrated_and_agrees(tmp_path: Path) -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    # 32 images, as the engine test below and test_selfcheck's int8 exports: the same GPTQ
    # weights, so onnx_export_once exports them once
    calib = calibration_batches("synthetic", CIFAR10, images=32)
    report = export_int8(model, tmp_path / "q.onnx", calib)
    assert report["agreement"] >= INT8_AGREEMENT and report["images"] == 32
    proto = onnx.load(str(tmp_path / "q.onnx"))
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_int8_parity_failure_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import squeezenet.deploy.int8 as int8

    monkeypatch.setattr(int8, "int8_parity", lambda a, b: {"agreement": 0.1, "images": 1})
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    calib = calibration_batches("synthetic", CIFAR10, images=32)  # exported above: no re-export
    with pytest.raises(ExportParityError, match="agrees with float32"):
        export_int8(model, tmp_path / "q.onnx", calib)
    assert not (tmp_path / "q.onnx").exists()


def test_calibration_reads_the_training_split_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []
    original = calibration_module.load_dataset

    def spy(data: str, split: str = "test", **kw: Any) -> Any:
        seen.append((data, split))
        return original(data, split, **kw)

    monkeypatch.setattr(calibration_module, "load_dataset", spy)
    batches = calibration_batches("synthetic", CIFAR10, images=16)
    assert seen == [("synthetic", "train")]
    assert sum(len(b) for b in batches) == 16


def test_the_int8_engine_runs_in_evaluate_and_bench_reports_the_peak() -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    calib = calibration_batches("synthetic", CIFAR10, images=32)
    module = EngineModule(make_engine("onnxruntime-int8", model, SHAPE, calibration=calib))
    x = torch.from_numpy(calib[0])
    with torch.no_grad():
        agree = (module(x).argmax(1) == model(x).argmax(1)).float().mean()
    assert agree >= 0.8
    peak = sgemm_peak(size=256, min_seconds=0.05)
    rows = benchmark(
        model, SHAPE, 10**6, batches=(1,), engines=("onnxruntime", "onnxruntime-int8"),
        min_seconds=0.05, peak_gflops=peak, calibration=calib,
    )  # fmt: skip
    assert peak > 0 and all(0 < r.peak_fraction < 10 for r in rows)


def test_openvino_reads_the_same_onnx_with_parity(tmp_path: Path) -> None:
    pytest.importorskip("openvino", reason="pip install -e '.[openvino]'")
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    x = torch.rand(2, *SHAPE, generator=torch.Generator().manual_seed(0))
    run = make_engine("openvino", model, SHAPE)
    with torch.no_grad():
        assert np.abs(run(x) - model(x).numpy()).max() <= 1e-4
    sqz = _small_sqz(tmp_path)
    report = export_compact(sqz, tmp_path / "c.onnx")
    assert report.max_abs_diff["openvino"] <= 1e-5


def test_openvino_bf16_stays_within_bfloat16_precision_of_float32() -> None:
    """The bf16 engine is the same ONNX under OpenVINO's bfloat16 inference precision: within
    bfloat16's rounding of float32, and (on a CPU with bfloat16 units) not silently float32."""
    pytest.importorskip("openvino", reason="pip install -e '.[openvino]'")
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    x = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(x).numpy()
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(ConfigError, match="no bfloat16 units"):
            make_engine("openvino-bf16", model, SHAPE)
        return
    got = make_engine("openvino-bf16", model, SHAPE)(x)
    scale = np.abs(reference).max()
    assert 1e-6 * scale < np.abs(got - reference).max() <= 0.05 * scale


def test_openvino_bf16_refuses_a_cpu_without_bfloat16_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Emulated bfloat16 is slower than float32 and no more exact: a one-line error instead."""
    ov = pytest.importorskip("openvino", reason="pip install -e '.[openvino]'")
    monkeypatch.setattr(ov.Core, "get_property", lambda self, device, name: ["FP32", "INT8"])
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    with pytest.raises(ConfigError, match="use the openvino"):
        make_engine("openvino-bf16", model, SHAPE)


def test_dense_export_still_checks_parity(tmp_path: Path) -> None:
    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    report = export_model(model, tmp_path / "d.onnx", "onnx", SHAPE)
    assert report.max_abs_diff <= 1e-4
    assert len(onnx_bytes(model, torch.zeros(1, *SHAPE))) > 100_000


def test_int8_export_stores_the_gptq_levels_exactly() -> None:
    """The int8 ONNX holds the GPTQ grid (the default format's, 7-bit): ONNX Runtime's quantizer
    reads the levels back."""
    from squeezenet.deploy.gptq import GptqConfig, gptq_, input_covariances
    from squeezenet.deploy.int8 import Int8Config, int8_model_onnx

    model = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    calib = calibration_batches("synthetic", CIFAR10, images=32)  # as above: exported once
    proto = onnx.load_from_string(int8_model_onnx(model, calib))
    stored = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    reference = create_model("squeezenet_small", seed=0, num_classes=10, batch_norm=False).eval()
    qmax = Int8Config().qmax
    covariances = input_covariances(reference, [torch.from_numpy(x) for x in calib])
    rows = gptq_(reference, covariances, GptqConfig(qmax=qmax))
    for row in rows:
        levels = stored[f"{row.name}.weight_quantized"].astype(np.float64)
        weight = dict(reference.named_modules())[row.name].weight.detach().double().numpy()
        expect = weight / row.step.double().numpy().reshape(-1, *[1] * (weight.ndim - 1))
        assert np.array_equal(levels, np.round(expect)), row.name
        assert np.abs(levels).max() <= qmax == 64  # |level| <= 64: no 16-bit pair saturates
        assert np.allclose(stored[f"{row.name}.weight_scale"], row.step.numpy())
    nearest = onnx.load_from_string(int8_model_onnx(model, calib, Int8Config(rounding="nearest")))
    assert any(
        not np.array_equal(onnx.numpy_helper.to_array(i), stored[i.name])
        for i in nearest.graph.initializer
        if i.name.endswith("weight_quantized")
    )
