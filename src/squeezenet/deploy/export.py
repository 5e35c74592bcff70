"""ONNX and TorchScript export with a parity check that runs on every export.

SqueezeNet's ceil-mode max-pooling has broken its ONNX export before (pytorch/pytorch#2898,
pytorch/vision#690); comparing the exported graph's outputs with PyTorch's on a random batch is
what catches such a regression, so :func:`export_model` always does it.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)
Format = Literal["onnx", "torchscript"]
PARITY_TOLERANCE = 1e-4  # max |exported - pytorch| accepted on the random check batch


class ExportParityError(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """Where the export went and how closely it matches PyTorch."""

    path: Path
    format: str
    input_shape: tuple[int, ...]  # shape of the parity batch (N, C, H, W)
    max_abs_diff: float  # max |exported - pytorch| on that batch
    tolerance: float
    bytes: int


def onnx_bytes(model: nn.Module, example: torch.Tensor, *, opset: int = 18) -> bytes:
    """The ONNX serialisation of ``model`` with a dynamic batch axis (input "input")."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            input_names=["input"],
            output_names=["logits"],
            dynamo=True,
            opset_version=opset,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        assert program is not None
        path = os.path.join(folder, "model.onnx")
        program.save(path)
        return Path(path).read_bytes()


def run_onnx(data: bytes, x: np.ndarray, *, threads: int = 0) -> np.ndarray:
    """Run an ONNX model (bytes) on ``x`` with ONNX Runtime's CPU provider."""
    session = onnx_session(data, threads=threads)
    result: np.ndarray = session.run(None, {session.get_inputs()[0].name: x})[0]
    return result


def onnx_session(data: bytes, *, threads: int = 0) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _atomic_write(path: Path, data: bytes) -> None:
    from squeezenet.io.atomic import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def export_model(
    model: nn.Module,
    out: str | Path,
    fmt: Format,
    input_shape: tuple[int, int, int],
    *,
    batch: int = 2,
    seed: int = 0,
    tolerance: float = PARITY_TOLERANCE,
) -> ExportReport:
    """Export ``model`` (eval mode) to ``out`` and check parity on a random ``batch``.

    Args:
        input_shape: (C, H, W) of one input.
    Raises:
        ExportParityError: outputs differ by more than ``tolerance`` (nothing is written).
    """
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"unknown export format {fmt!r}; use onnx or torchscript")
    model = model.eval().to(memory_format=torch.contiguous_format)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *input_shape, generator=generator)
    with torch.no_grad():
        reference = model(x).numpy()
    if fmt == "onnx":
        data = onnx_bytes(model, x[:1])
        exported = run_onnx(data, x.numpy())
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(model, x[:1])  # type: ignore[no-untyped-call]
            buffer = _ts_bytes(scripted)
            loaded = torch.jit.load(io.BytesIO(buffer))  # type: ignore[no-untyped-call]
        with torch.no_grad():
            exported = loaded(x).numpy()
        data = buffer
    diff = float(np.abs(exported - reference).max())
    if not diff <= tolerance:
        raise ExportParityError(
            f"{fmt} export differs from PyTorch by {diff:.3g} (> {tolerance:g}); "
            "the exported file was not written"
        )
    path = Path(out)
    _atomic_write(path, data)
    log.info("exported %s to %s (max abs diff %.3g)", fmt, path, diff)
    return ExportReport(path, fmt, tuple(x.shape), diff, tolerance, len(data))


def _ts_bytes(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()
