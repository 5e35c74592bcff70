"""Export parity for every registered model, ONNX and TorchScript, on small inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from squeezenet.deploy.bench import benchmark
from squeezenet.deploy.engines import check_engines, make_engine
from squeezenet.deploy.export import ExportParityError, export_model, run_onnx
from squeezenet.errors import ConfigError, InputError, UserError
from squeezenet.models import create_model, get_spec, list_models

# The dynamic-batch and parity-failure tests export squeezenet1_1 as its parity test does.
pytestmark = pytest.mark.usefixtures("onnx_export_once")
SMALL_INPUT = {"alexnet": 96, "squeezenet_small": 32}  # others: 64 px (the ceil-mode pools matter)


def _shape(name: str) -> tuple[int, int, int]:
    spec = get_spec(name)
    size = SMALL_INPUT.get(name, 64)
    return (spec.config.in_channels, size, size)


# Slow: the ONNX exports of two bypass variants (~3 s each). The default suite exports each
# stem plain (onnx-squeezenet1_0, onnx-squeezenet1_1) and each bypass kind on one stem
# (onnx-squeezenet1_1_simple_bypass, onnx-squeezenet1_0_complex_bypass): the same layers and
# the same exporter code; TorchScript still runs every model. AlexNet (61 M parameters) runs
# the same export code as the SqueezeNets: slow suite only, in both formats.
SLOW_ONNX = ("squeezenet1_0_simple_bypass", "squeezenet1_1_complex_bypass")


def _parity_cases() -> list[object]:
    cases: list[object] = []
    for fmt in ("onnx", "torchscript"):
        for name in list_models():
            slow = (fmt == "onnx" and name in SLOW_ONNX) or name == "alexnet"
            marks = [pytest.mark.slow] if slow else []
            cases.append(pytest.param(name, fmt, marks=marks, id=f"{fmt}-{name}"))
    return cases


@pytest.mark.parametrize(("name", "fmt"), _parity_cases())
def test_export_parity(name: str, fmt: str, tmp_path: Path) -> None:
    model = create_model(name, seed=0, num_classes=10)
    out = tmp_path / f"{name}.{fmt}"
    report = export_model(model, out, fmt, _shape(name))  # type: ignore[arg-type]
    assert report.max_abs_diff <= 1e-4
    assert out.is_file() and out.stat().st_size == report.bytes


def test_onnx_batch_axis_is_dynamic(tmp_path: Path) -> None:
    model = create_model("squeezenet1_1", seed=0, num_classes=10).eval()
    report = export_model(model, tmp_path / "m.onnx", "onnx", (3, 64, 64))
    x = torch.rand(5, 3, 64, 64)
    out = run_onnx(report.path.read_bytes(), x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), atol=1e-4)


def test_parity_failure_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import squeezenet.deploy.export as export

    monkeypatch.setattr(export, "run_onnx", lambda data, x: np.zeros((2, 10), np.float32) + 5)
    model = create_model("squeezenet1_1", seed=0, num_classes=10)
    with pytest.raises(ExportParityError, match="differs from PyTorch") as info:
        export_model(model, tmp_path / "m.onnx", "onnx", (3, 64, 64))
    assert not list(tmp_path.iterdir())
    assert isinstance(info.value, UserError) and isinstance(info.value, RuntimeError)
    assert "\n" not in str(info.value) and "another ONNX opset" in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "target", "error", "match"),
    [
        ("caffe", "m.caffe", ConfigError, "unknown export format 'caffe'"),
        ("onnx", ".", InputError, "it is a folder"),
        ("torchscript", "file/m.pt", InputError, "is a file, not a folder"),
    ],
)
def test_export_user_errors_come_before_the_export(
    tmp_path: Path, fmt: str, target: str, error: type[Exception], match: str
) -> None:
    (tmp_path / "file").write_bytes(b"")
    model = create_model("squeezenet_small", seed=0)
    with pytest.raises(error, match=match):
        export_model(model, tmp_path / target, fmt, (3, 32, 32))  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_unknown_engines_and_batch_sizes_are_config_errors() -> None:
    model = create_model("squeezenet_small", seed=0)
    with pytest.raises(ConfigError, match="engine: expected some of torch, eager_nchw"):
        make_engine("tpu", model, (3, 32, 32))
    with pytest.raises(ConfigError, match=r"--engines: .* got 'tpu', 'gpu'"):
        check_engines(["eager_nchw", "tpu", "gpu"], "--engines")
    with pytest.raises(ConfigError, match="got none"):
        check_engines([])
    assert check_engines(["torch", "compile"]) == ("torch", "compile")
    with pytest.raises(ConfigError, match=r"batches: expected batch sizes >= 1, got \[1, 0\]"):
        benchmark(model, (3, 32, 32), 1, batches=(1, 0), engines=("eager_nchw",))
    with pytest.raises(ConfigError, match=r"engines: .* got 'tpu'"):
        benchmark(model, (3, 32, 32), 1, engines=("tpu",))


def test_bench_smoke() -> None:
    model = create_model("squeezenet_small", seed=0)
    rows = benchmark(
        model,
        (3, 32, 32),
        23_511_040,
        batches=(1, 4),
        min_seconds=0.05,
        engines=("eager_nchw", "eager_channels_last", "onnxruntime"),
    )
    assert {(r.engine, r.batch) for r in rows} == {
        (e, b) for e in ("eager_nchw", "eager_channels_last", "onnxruntime") for b in (1, 4)
    }
    assert all(r.max_abs_diff <= 1e-4 and r.images_per_s > 0 for r in rows)


def test_the_export_memo_tells_apart_what_the_export_depends_on() -> None:
    """conftest's onnx_export_once answers only a call it has seen: models whose state dicts and
    reprs agree but whose forward differs (a simple bypass adds no parameter) are told apart."""
    from conftest import _export_key

    x = torch.zeros(1, 3, 64, 64)

    def key(name: str, **kwargs: object) -> str:
        return _export_key(create_model(name, seed=0, num_classes=10, **kwargs), x, 18)

    assert key("squeezenet1_0") == key("squeezenet1_0")
    assert key("squeezenet1_0") != key("squeezenet1_0_simple_bypass")
    assert key("squeezenet1_0") != key("squeezenet1_0", dropout=0.1)  # config only
    model = create_model("squeezenet1_0", seed=0, num_classes=10)
    before = _export_key(model, x, 18)
    with torch.no_grad():
        model.final_conv.bias.add_(1.0)
    assert _export_key(model, x, 18) != before
    assert _export_key(model.train(), x, 18) != _export_key(model.eval(), x, 18)
    assert _export_key(model, x, 17) != _export_key(model, x, 18)
    assert _export_key(model, torch.rand(1, 3, 64, 64), 18) == _export_key(model, x, 18)
    assert _export_key(model, torch.zeros(1, 3, 32, 32), 18) != _export_key(model, x, 18)
