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
from typing import Literal

import numpy as np
import torch
from torch import nn

from squeezenet.atomic import atomic_write_bytes
from squeezenet.deploy.onnx_file import ModelInfo, check_inputs_for, stamp_checked
from squeezenet.errors import ConfigError, InputError, UserError
from squeezenet.runtime.onnx_graph import onnx_session

log = logging.getLogger(__name__)
Format = Literal["onnx", "torchscript"]
FORMATS: tuple[Format, ...] = ("onnx", "torchscript")
ONNX_OPSET = 18  # the dynamo exporter's native opset: no version conversion on the way
PARITY_TOLERANCE = 1e-4  # max |exported - pytorch| accepted on the random check batch


class ExportParityError(UserError, RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance (nothing written).

    A user error: the model may use an operator the exporter mistranslates, and another format
    or opset may export it correctly; the message says so.
    """


@dataclass(frozen=True)
class ExportReport:
    """Where the export went and how closely it matches PyTorch."""

    path: Path
    format: str
    input_shape: tuple[int, ...]  # shape of the parity batch (N, C, H, W)
    max_abs_diff: float  # max |exported - pytorch| on that batch
    tolerance: float
    bytes: int


def onnx_bytes(model: nn.Module, example: torch.Tensor, *, opset: int = ONNX_OPSET) -> bytes:
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


def export_model(
    model: nn.Module,
    out: str | Path,
    fmt: Format,
    input_shape: tuple[int, int, int],
    *,
    batch: int = 2,
    seed: int = 0,
    tolerance: float = PARITY_TOLERANCE,
    opset: int = ONNX_OPSET,
    info: ModelInfo = ModelInfo(),
) -> ExportReport:
    """Export ``model`` (eval mode) to ``out`` and check parity on a random ``batch``; an ONNX
    file also carries ``info`` and a self-check (docs/ONNX.md), run here before it is written.

    Args:
        input_shape: (C, H, W) of one input.
        opset: the ONNX opset (``fmt="onnx"`` only).
    Raises:
        ConfigError: ``fmt`` is not one of :data:`FORMATS`.
        InputError: ``out`` is a folder, or cannot be written (the message says why).
        ExportParityError: outputs differ by more than ``tolerance`` (nothing is written).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    path = Path(out)
    check_target(path)
    model = model.eval().to(memory_format=torch.contiguous_format)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, *input_shape, generator=generator)
    with torch.no_grad():
        reference = model(x).numpy()
    if fmt == "onnx":
        data = onnx_bytes(model, x[:1], opset=opset)
        exported = run_onnx(data, x.numpy())
    else:
        data, exported = _torchscript(model, x)
    diff = float(np.abs(exported - reference).max())
    if not diff <= tolerance:
        other = "the torchscript format or another ONNX opset" if fmt == "onnx" else "ONNX"
        raise ExportParityError(
            f"the {fmt} export differs from PyTorch by {diff:.3g} (> {tolerance:g}), so nothing "
            f"was written; try {other}, and report a bug if the model is a registered one"
        )
    if fmt == "onnx":
        data = _stamp_float(model, data, input_shape, info, path)
    write(path, data)
    log.info("exported %s to %s (max abs diff %.3g)", fmt, path, diff)
    return ExportReport(path, fmt, tuple(x.shape), diff, tolerance, len(data))


def _stamp_float(
    model: nn.Module, data: bytes, shape: tuple[int, int, int], info: ModelInfo, path: Path
) -> bytes:
    """``data`` with ``info`` and its self-check, verified by this machine's ONNX Runtime."""
    inputs = check_inputs_for(shape, info.preprocess)
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs.images())).numpy()
    data, _, _ = stamp_checked(data, reference, inputs, info, precision="float32", path=path)
    return data


def _torchscript(model: nn.Module, x: torch.Tensor) -> tuple[bytes, np.ndarray]:
    """The traced model's serialisation and the outputs of its reloaded copy on ``x``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(model, x[:1])  # type: ignore[no-untyped-call]
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        loaded = torch.jit.load(io.BytesIO(buffer.getvalue()))  # type: ignore[no-untyped-call]
    with torch.no_grad():
        exported: np.ndarray = loaded(x).numpy()
    return buffer.getvalue(), exported


def check_target(path: Path) -> None:
    """Fail before the export (it takes seconds) when ``path`` cannot become a file."""
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; name the file to write")
    existing = next((folder for folder in path.parents if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"cannot write {path}: {existing} is a file, not a folder")


def write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating its folder; an OS error (a file where a
    folder should be, no permission) is the caller's to fix, so it is an :class:`InputError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:
        above = exc.filename is not None and Path(exc.filename) in path.parents
        where = f" ({exc.filename})" if above else ""  # e.g. a file where a folder should be
        raise InputError(f"cannot write {path}: {exc.strerror or exc}{where}") from exc
