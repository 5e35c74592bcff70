"""Shared test settings: deterministic, single-threaded CPU torch."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

# One thread per test process: the suite runs one worker per core (pytest-xdist), and tests may
# run beside another torch job; set before torch and numpy load their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when it is absent (CI without the reference data)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Every byte of ``tensor`` with its dtype, shape and strides (the memory format)."""
    header = f"{tensor.dtype}{tuple(tensor.shape)}{tensor.stride()}".encode()
    flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return header + flat.numpy().tobytes()


def _export_key(model: torch.nn.Module, example: torch.Tensor, opset: int) -> str:
    """What ``onnx_bytes(model, example, opset=opset)`` depends on: per module, its class and
    forward, its plain attributes (a Fire's bypass, a SqueezeNet's config: the repr alone does
    not show them), its mode and forward hooks; every state tensor; the example's dtype, shape
    and strides; the opset. Not the example's values: the exporter traces the forward with
    symbolic inputs (zeros and random examples give the same bytes, checked on the registered
    models), and the deploy code passes zeros where export_model passes a random batch."""
    digest = hashlib.sha256(f"{model!r}|{opset}".encode())
    for name, module in model.named_modules():
        attributes = sorted(
            (key, repr(value))
            for key, value in vars(module).items()
            if not key.startswith("_") and not isinstance(value, torch.Tensor | torch.nn.Module)
        )
        kind = type(module)
        digest.update(f"{name}|{kind.__module__}.{kind.__qualname__}|{kind.forward!r}".encode())
        hooks = [*module._forward_pre_hooks.values(), *module._forward_hooks.values()]
        digest.update(repr(attributes).encode() + repr(hooks).encode())
    for name, tensor in model.state_dict(keep_vars=True).items():
        digest.update(name.encode() + _tensor_bytes(tensor))
    digest.update(f"{example.dtype}{tuple(example.shape)}{example.stride()}".encode())
    return digest.hexdigest()


_ONNX_EXPORTS: dict[str, bytes] = {}
_KEEP_AT_MOST = 32 << 20  # bytes of one kept export: SqueezeNets are 3-5 MB, AlexNet 230 MB


@pytest.fixture(scope="module")
def onnx_export_once() -> Iterator[None]:
    """``onnx_bytes`` runs the dynamo exporter once per distinct call and answers a repeated
    one (the same module tree, weights, input shape and opset: :func:`_export_key`) from
    memory. The export is deterministic (the same call gives the same bytes), so this changes
    no outcome; a dynamo export of a SqueezeNet costs 2-4 s of CPU, and the deploy tests export
    the same model again and again. Every distinct export still runs the exporter (and its
    parity check) once."""
    from squeezenet.deploy import engines, export

    real = export.onnx_bytes

    def once(
        model: torch.nn.Module, example: torch.Tensor, *, opset: int = export.ONNX_OPSET
    ) -> bytes:
        key = _export_key(model, example, opset)
        if key in _ONNX_EXPORTS:
            return _ONNX_EXPORTS[key]
        data = real(model, example, opset=opset)
        if len(data) <= _KEEP_AT_MOST:
            _ONNX_EXPORTS[key] = data
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "onnx_bytes", once)
        patch.setattr(engines, "onnx_bytes", once)  # imported by name there
        yield
