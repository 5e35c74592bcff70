"""int8 ONNX with ONNX Runtime's static quantization, calibrated on proxy images.

QDQ format, int8 weights per output channel, uint8 activations whose ranges come from
calibration images (never the evaluation images): on CPUs with AVX-512 VNNI or AVX-VNNI, ONNX
Runtime runs the convolutions as u8 x s8 integer dot products. :func:`int8_model_onnx` first
rounds the weights onto their int8 grids with GPTQ (:mod:`squeezenet.deploy.gptq`, the
input covariances measured on the same calibration images) and hands ONNX Runtime those grids,
so its quantizer only reads the levels back; ``rounding="nearest"`` leaves the rounding to ONNX
Runtime. The parity check of a float
export (1e-4) cannot hold for int8, so :func:`int8_parity` measures top-1 agreement of the file's
own arithmetic with the float model on the calibration batch instead, and the file carries a
self-check that every machine which runs it repeats (:mod:`squeezenet.deploy.selfcheck`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from squeezenet.deploy.onnx_file import ModelInfo, check_inputs_for, stamp_checked
from squeezenet.deploy.selfcheck import exact_outputs
from squeezenet.errors import ConfigError

Calibration = Literal["minmax", "entropy", "percentile"]
Rounding = Literal["gptq", "nearest"]
# Integer formats, activations then weights. ONNX Runtime's x86 kernels for u8 x s8 products on
# CPUs without VNNI (AVX2, AVX-512F/BW) sum pairs of products in 16 bits with saturation
# (vpmaddubsw): 255 * 127 * 2 overflows, 255 * 64 * 2 does not. "u8s7" keeps int8 weights on
# the 7-bit grid -64..64 and "u8u8" stores them as uint8 (zero point 128; the u8 x u8 kernels
# widen to 16 bits first): both are exact on every x86 CPU and in OpenVINO. "u8s8" uses the
# whole int8 grid, exact only where the CPU has VNNI or AMX; "s8s8" saturates the same way and
# OpenVINO runs it wrong. The default, u8s7, runs the fast u8 x s8 kernels (2.2x ONNX Runtime
# float32, 3.0x in OpenVINO on a VNNI CPU, where u8u8 gives 1.2x and 0.9x) for 0.003 nats more
# mean KL on the held-out proxies than u8u8 (docs/RESULTS.md, "A portable int8 file").
Int8Format = Literal["u8s7", "u8s8", "u8u8", "s8s8"]
CALIBRATIONS: tuple[str, ...] = ("minmax", "entropy", "percentile")
FORMATS: tuple[str, ...] = ("u8s7", "u8s8", "u8u8", "s8s8")
# The int8 export's parity bar: top-1 agreement with float32 on the calibration images. It
# catches a broken quantization (a mis-wired or mis-calibrated graph agrees near chance). It is
# not an accuracy bar: proxy images sit near the decision boundaries of an ImageNet model, so a
# correct int8 SqueezeNet agrees 0.73 on its CIFAR-10 calibration images here, and 0.87 on the
# ImageNet sample (docs/RESULTS.md). Measure accuracy with `eval --engine ... --against`.
INT8_AGREEMENT = 0.5


@dataclass(frozen=True)
class Int8Config:
    """How :func:`int8_onnx` quantizes."""

    calibration: Calibration = "minmax"  # activation ranges (chosen on proxies: docs/RESULTS.md)
    per_channel: bool = True  # one weight scale per output channel
    format: Int8Format = "u8s7"  # integer types (see Int8Format: portable and fast)
    # weight rounding onto the grid (chosen on proxies: docs/RESULTS.md); gptq needs per_channel
    rounding: Rounding = "gptq"

    def __post_init__(self) -> None:
        if self.rounding not in ("gptq", "nearest"):
            raise ConfigError(f"int8 rounding: expected gptq or nearest, got {self.rounding!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"int8 calibration: expected one of {', '.join(CALIBRATIONS)}, "
                f"got {self.calibration!r}"
            )
        if self.format not in FORMATS:
            raise ConfigError(
                f"int8 format: expected one of {', '.join(FORMATS)}, got {self.format!r}"
            )

    @property
    def qmax(self) -> int:
        """The largest weight level: 64 on the 7-bit grid, else 127 (symmetric grids)."""
        return 64 if self.format == "u8s7" else 127


class CalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over preprocessed batches, for
    ``onnxruntime.quantization.quantize_static``: each :meth:`get_next` feeds the next batch.

    Args:
        name: the ONNX graph's input name (``"input"`` in this package's exports).
        batches: float32 ``(N, C, H, W)`` batches, preprocessed for the model; read once.
    """

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self.name = name
        self.items: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next ``{name: batch}`` feed, or None when the batches are spent."""
        batch = next(self.items, None)
        return None if batch is None else {self.name: batch}

    def rewind(self) -> None:  # some ONNX Runtime versions call it
        pass


def int8_model_onnx(
    model: Any, calibration: Sequence[np.ndarray], config: Int8Config = Int8Config()
) -> bytes:
    """The QDQ int8 ONNX of the PyTorch ``model`` (left unchanged), calibrated on
    ``calibration`` (float32 ``(N, C, H, W)`` batches preprocessed for the model); with
    ``config.rounding == "gptq"`` its weights are rounded by GPTQ on the same images first.

    Raises:
        ConfigError: no calibration batch.
    """
    import copy

    import torch
    from torch.nn.utils import parametrize

    from squeezenet.deploy.export import onnx_bytes
    from squeezenet.deploy.gptq import GptqConfig, gptq_, input_covariances

    if not calibration:
        raise ConfigError("int8: give calibration images (--calib)")
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    for module in model.modules():  # a decoded .sqz: bake shared weights into plain tensors
        for name in list(getattr(module, "parametrizations", {})):
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    steps: dict[str, np.ndarray] = {}
    if config.rounding == "gptq" and config.per_channel:
        batches = [torch.from_numpy(x) for x in calibration]
        rows = gptq_(model, input_covariances(model, batches), GptqConfig(qmax=config.qmax))
        steps = {f"{row.name}.weight": row.step.numpy() for row in rows}
    dense = onnx_bytes(model, torch.zeros(1, *calibration[0].shape[1:]))
    return int8_onnx(dense, calibration, config, weight_steps=steps)


def int8_onnx(
    dense_onnx: bytes,
    calibration: Sequence[np.ndarray],
    config: Int8Config = Int8Config(),
    *,
    weight_steps: Mapping[str, np.ndarray] | None = None,
) -> bytes:
    """The QDQ int8 model of ``dense_onnx`` (input ``"input"``), calibrated on ``calibration``
    (float32 ``(N, C, H, W)`` batches already preprocessed for the model).

    Args:
        weight_steps: per weight initializer, its per-output-channel steps (symmetric, zero
            point 0), for weights already on those grids; others get ONNX Runtime's min/max.

    Raises:
        ConfigError: no calibration batch.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ConfigError("int8: give calibration images (--calib)")
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[config.calibration]
    with tempfile.TemporaryDirectory() as folder:
        source, prepared, target = (os.path.join(folder, f) for f in ("f.onnx", "p.onnx", "q.onnx"))
        Path(source).write_bytes(dense_onnx)
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared,
            target,
            CalibrationReader("input", calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=config.per_channel,
            reduce_range=config.format == "u8s7",
            activation_type=QuantType.QInt8 if config.format == "s8s8" else QuantType.QUInt8,
            weight_type=QuantType.QUInt8 if config.format == "u8u8" else QuantType.QInt8,
            calibrate_method=method,
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "TensorQuantOverrides": _weight_overrides(
                    weight_steps or {}, unsigned=config.format == "u8u8"
                ),
            },
        )
        return Path(target).read_bytes()


def _weight_overrides(
    steps: Mapping[str, np.ndarray], *, unsigned: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """ONNX Runtime's per-channel TensorQuantOverrides pinning each weight's grid (symmetric:
    zero point 0 for int8, 128 for uint8)."""
    zero = np.array(128, np.uint8) if unsigned else np.array(0, np.int8)
    return {
        name: [
            {"axis": 0, "scale": np.array(s, dtype=np.float32), "zero_point": zero}
            for s in np.asarray(step, dtype=np.float32)
        ]
        for name, step in steps.items()
    }


def int8_parity(float_logits: np.ndarray, int8_logits: np.ndarray) -> dict[str, Any]:
    """Top-1 agreement and max |difference| of the int8 model against the float one."""
    agreement = float((float_logits.argmax(1) == int8_logits.argmax(1)).mean())
    return {
        "agreement": agreement,
        "max_abs_diff": float(np.abs(float_logits - int8_logits).max()),
        "threshold": INT8_AGREEMENT,
        "images": len(float_logits),
    }


def export_int8(
    model: Any,
    out: str | os.PathLike[str],
    calibration: Sequence[np.ndarray],
    *,
    info: ModelInfo = ModelInfo(),
    config: Int8Config = Int8Config(),
) -> dict[str, Any]:
    """Write the int8 ONNX of ``model`` (eval mode) with the model's metadata and a self-check
    (docs/ONNX.md), after two checks: :func:`int8_parity` of the file's own arithmetic on the
    calibration images (the same on every CPU), and the self-check run by this machine's ONNX
    Runtime kernels.

    Raises:
        ExportParityError: top-1 agreement below :data:`INT8_AGREEMENT` (nothing is written).
        ModelCheckError: this machine's int8 kernels do not compute the file (nothing written).
    """
    import torch

    from squeezenet.deploy.export import ExportParityError, check_target, write

    path = Path(out)
    check_target(path)
    model = model.eval().to(memory_format=torch.contiguous_format)
    data = int8_model_onnx(model, calibration, config)
    with torch.no_grad():
        reference = np.concatenate([model(torch.from_numpy(x)).numpy() for x in calibration])
    parity = int8_parity(reference, exact_outputs(data, calibration))
    if parity["agreement"] < INT8_AGREEMENT:
        raise ExportParityError(
            f"the int8 export agrees with float32 on {parity['agreement']:.3f} of the "
            f"calibration images (< {INT8_AGREEMENT}); nothing was written; calibrate on images "
            "closer to the deployment data"
        )
    c, h, w = calibration[0].shape[1:]
    inputs = check_inputs_for((c, h, w), info.preprocess)
    with torch.no_grad():
        check_reference = model(torch.from_numpy(inputs.images())).numpy()
    measured = {
        "int8_format": config.format,
        "rounding": config.rounding,
        "calibration_agreement": parity["agreement"],
        "calibration_images": parity["images"],
    }
    data, _, here = stamp_checked(
        data, check_reference, inputs, info, precision="int8", path=path, export=measured
    )
    write(path, data)
    return {
        "path": str(path),
        "bytes": len(data),
        "int8_format": config.format,
        **parity,
        "check": here.to_dict(),
    }
