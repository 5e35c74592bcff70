"""ONNX runtimes on serialised models: numpy batch in, numpy logits out (no torch).

One call signature for ONNX Runtime and OpenVINO, so the engines, the self-check of exported
files and a torch-free install share them.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from squeezenet.errors import ConfigError
from squeezenet.runtime.onnx_graph import onnx_session

Runner = Callable[[np.ndarray], np.ndarray]  # float32 (N, C, H, W) -> (N, classes) logits
RUNTIMES = ("onnxruntime", "openvino")


def onnxruntime_runner(data: bytes, *, threads: int = 0) -> Runner:
    """ONNX Runtime (CPU provider, every graph optimisation) on a serialised ONNX model."""
    session = onnx_session(data, threads=threads)
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]
        return out

    return run


def openvino_runner(data: bytes, *, precision: str = "f32") -> Runner:
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
        Path(path).write_bytes(data)
        # float32 unless asked: on CPUs with AVX-512 BF16 the CPU plugin otherwise runs in
        # bfloat16 by default, 1e-2 away from the float model (measured on this machine)
        compiled = core.compile_model(
            core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": precision}
        )
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        out = request.infer([np.ascontiguousarray(x, np.float32)])[compiled.output(0)]
        return np.array(out, copy=True)

    return run


def runner(data: bytes, runtime: str) -> Runner:
    """One of :data:`RUNTIMES` on ``data``.

    Raises:
        ConfigError: an unknown runtime, or OpenVINO missing.
    """
    if runtime == "onnxruntime":
        return onnxruntime_runner(data)
    if runtime == "openvino":
        return openvino_runner(data)
    raise ConfigError(f"an ONNX file runs in {' or '.join(RUNTIMES)}, not {runtime!r}")


def cpu_int8_note() -> str:
    """A sentence on this CPU's int8 dot-product instructions, for error messages ("" off x86,
    and where the CPU has VNNI, whose int32 sums do not saturate). Read from the CPUID bits
    numpy dispatches on, which an emulator reports too (``/proc/cpuinfo`` shows the host's)."""
    features: dict[str, bool] = {}
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            features = importlib.import_module(module).__cpu_features__
            break
        except (ImportError, AttributeError):
            continue
    if "AVX2" not in features or features.get("AVX512VNNI") or features.get("AVXVNNI"):
        return ""
    return (
        "This CPU has no VNNI, so its int8 kernels add pairs of u8 x s8 products in 16 bits, "
        "which saturate for weights on the whole int8 grid: export with --int8-format u8s7 "
        "(the default, exact on every x86 CPU), or run the float32 model."
    )
