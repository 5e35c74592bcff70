"""Inference engines behind one call signature: float32 NCHW batch in, numpy logits out."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.deploy.export import onnx_bytes, onnx_session
from squeezenet.deploy.int8 import int8_model_onnx
from squeezenet.errors import ConfigError

Engine = Callable[[torch.Tensor], np.ndarray]
ENGINES = (
    "eager_nchw", "eager_channels_last", "onnxruntime", "compile", "onnxruntime-int8", "openvino",
    "openvino-int8", "openvino-bf16",
)  # fmt: skip


class _FlushDenormals:
    """Flush denormal floats to zero inside the block, as ONNX Runtime does on CPU.

    Randomly initialised (untrained) SqueezeNets produce denormal activations that slow eager
    PyTorch 10-30x; without this, engine comparisons on such models measure that artefact. The
    setting is process-wide, so it is switched back off on exit.
    """

    def __enter__(self) -> None:
        torch.set_flush_denormal(True)

    def __exit__(self, *args: object) -> None:
        torch.set_flush_denormal(False)


def check_engines(names: Iterable[str], option: str = "engines") -> tuple[str, ...]:
    """``names`` as a tuple, each one of :data:`ENGINES` or ``torch`` (eager channels_last).

    Args:
        option: what the names were given as, for the message (e.g. ``"--engines"``).
    Raises:
        ConfigError: no names, or an unknown one.
    """
    result = tuple(names)
    unknown = [name for name in result if name != "torch" and name not in ENGINES]
    if unknown or not result:
        got = ", ".join(map(repr, unknown)) if unknown else "none"
        raise ConfigError(f"{option}: expected some of torch, {', '.join(ENGINES)}; got {got}")
    return result


def torch_engine(model: nn.Module, *, channels_last: bool) -> Engine:
    """Eager PyTorch, NCHW or channels_last (denormals flushed, as ONNX Runtime does)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).eval().to(memory_format=fmt)  # engines never share a layout

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        with _FlushDenormals():
            out: np.ndarray = model(x.contiguous(memory_format=fmt)).numpy()
        return out

    return run


def compiled_engine(model: nn.Module) -> Engine:
    """``torch.compile`` (inductor) on channels_last; compiles on the first call."""
    model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
    compiled: Any = torch.compile(model, dynamic=False)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> np.ndarray:
        with _FlushDenormals():
            out: np.ndarray = compiled(x.contiguous(memory_format=torch.channels_last)).numpy()
        return out

    return run


def onnxruntime_engine(
    model: nn.Module, input_shape: tuple[int, int, int], *, threads: int = 0
) -> Engine:
    """Export to ONNX in memory; run with ONNX Runtime (CPU provider, all graph optimisations)."""
    session: Any = onnx_session(
        onnx_bytes(model.eval(), torch.zeros(1, *input_shape)), threads=threads
    )
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> np.ndarray:
        out: np.ndarray = session.run(None, {name: x.contiguous().numpy()})[0]
        return out

    return run


def onnx_data_engine(data: bytes) -> Engine:
    """ONNX Runtime (CPU provider, every graph optimisation) on a serialised ONNX model."""
    session: Any = onnx_session(data)
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> np.ndarray:
        out: np.ndarray = session.run(None, {name: x.contiguous().numpy()})[0]
        return out

    return run


def openvino_engine(data: bytes, *, precision: str = "f32") -> Engine:
    """OpenVINO (CPU plugin) on a serialised ONNX model, the same file ONNX Runtime reads.

    ``precision`` is the plugin's inference precision: ``"f32"``, or ``"bf16"`` (activations
    and weights in bfloat16 on AMX tiles or AVX-512 BF16; a CPU without them is an error).

    Raises:
        ConfigError: the ``openvino`` package is not installed, or ``bf16`` on a CPU that
            has no bfloat16 units.
    """
    try:
        import openvino as ov
    except ImportError:
        raise ConfigError(
            "the openvino engine needs the openvino package: pip install -e '.[openvino]'"
        ) from None
    core = ov.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ConfigError(
            "this CPU has no bfloat16 units (OpenVINO lists no BF16 capability), so "
            "openvino-bf16 would only emulate them: use the openvino (float32) or an int8 engine"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as handle:
            handle.write(data)
        # float32 unless asked: on CPUs with AVX-512 BF16 the CPU plugin otherwise runs in
        # bfloat16 by default, 1e-2 away from the float model (measured on this machine)
        compiled = core.compile_model(
            core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": precision}
        )
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> np.ndarray:
        out: np.ndarray = request.infer([x.contiguous().numpy()])[compiled.output(0)]
        return np.array(out, copy=True)

    return run


def make_engine(
    name: str,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    calibration: Sequence[np.ndarray] | None = None,
) -> Engine:
    """One of :data:`ENGINES` (``torch`` means eager channels_last).

    Args:
        calibration: for the int8 engines, preprocessed proxy batches that set the activation
            ranges (never evaluation images); None: uniform noise, fit for timing only.

    Raises:
        ConfigError: an unknown engine name, or an engine whose package is missing.
    """
    check_engines([name], "engine")
    if name in ("torch", "eager_channels_last"):
        return torch_engine(model, channels_last=True)
    if name == "eager_nchw":
        return torch_engine(model, channels_last=False)
    if name == "compile":
        return compiled_engine(model)
    if name == "onnxruntime":
        return onnxruntime_engine(model, input_shape)
    if name.endswith("-int8"):
        if calibration is None:
            noise = np.random.default_rng(0).uniform(-1, 1, (8, *input_shape))
            calibration = [noise.astype(np.float32)]
        data = int8_model_onnx(model, calibration)
    else:
        data = onnx_bytes(model.eval(), torch.zeros(1, *input_shape))
    if name.startswith("onnxruntime"):
        return onnx_data_engine(data)
    return openvino_engine(data, precision="bf16" if name == "openvino-bf16" else "f32")


class EngineModule(nn.Module):
    """An engine as a module (``forward`` returns a float32 tensor), so code written for
    PyTorch models (evaluate, compare) runs any engine."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.engine(x.float()), dtype=np.float32))
