"""The self-check an exported ONNX file carries, verified on the machine that runs it.

An int8 file's bytes do not depend on the CPU that wrote it; the kernels that run it do (ONNX
Runtime adds pairs of u8 x s8 products in 16 bits with saturation on x86 CPUs without VNNI,
OpenVINO mis-runs int8 activations: docs/RESULTS.md). So every ONNX file this package writes
carries, in its metadata (docs/ONNX.md), the outputs of a few deterministic inputs computed two
ways at export: ``exact``, the graph run node by node with every quantize / dequantize in
float32 and no fused integer kernel (the file's own arithmetic, the same on every CPU up to float
rounding), and ``reference``, the float32 PyTorch model. Where the file runs, :func:`verify`
feeds the engine the same inputs and refuses it when its outputs leave the file's arithmetic by
more than the file's ``tolerance`` (mean KL, nats). numpy and ONNX Runtime only: no torch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from squeezenet.errors import FileFormatError, UserError

CHECK_KEY = "squeezenet.check"
CHECK_VERSION = 1
CHECK_IMAGES = 8  # enough to see a kernel error (docs/RESULTS.md); 64 KB of float32 logits
# KL(exact || engine) allowed where the file runs, nats. Correct engines (ONNX Runtime on AVX-512
# VNNI, AVX2 with 7-bit weights, OpenVINO) stay below 3e-4 on the check inputs; a saturating
# kernel or a mis-run graph is above 0.03 (docs/RESULTS.md, "A portable int8 file").
INT8_TOLERANCE = 5e-3
# Float files: ONNX Runtime and OpenVINO in float32 are within ~1e-5 of PyTorch's logits.
FLOAT_TOLERANCE = 1e-4
# max |engine - exact| allowed, as a fraction of max |exact|: KL cannot see a wrong scale on
# logits near zero (an untrained model's). Correct int8 engines stay below 0.01 of it, a
# saturating kernel reached 0.11; float engines stay below 1e-5.
INT8_RELATIVE = 0.05
FLOAT_RELATIVE = 1e-3


class ModelCheckError(UserError, RuntimeError):
    """An engine on this machine does not compute the file's arithmetic (nothing was run)."""


class CheckFormatError(FileFormatError):
    """An ONNX file whose self-check metadata is missing or damaged."""


@dataclass(frozen=True)
class CheckInputs:
    """Deterministic check images: ``count`` images of ``cell`` x ``cell`` pixel blocks, each
    block's channels uniform in 0..1 (numpy's PCG64, ``seed``), scaled to ``value_scale`` and
    normalised as ``(pixel - mean) / std``; shape ``(count, *shape)``."""

    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    value_scale: float = 1.0
    count: int = CHECK_IMAGES
    seed: int = 0
    cell: int = 4  # block side in pixels: flat patches as in photographs, unlike pixel noise

    def images(self) -> np.ndarray:
        """The float32 ``(count, C, H, W)`` inputs (the same bytes on every machine)."""
        c, h, w = self.shape
        rng = np.random.default_rng(self.seed)
        coarse = rng.uniform(0.0, 1.0, (self.count, c, -(-h // self.cell), -(-w // self.cell)))
        pixels = coarse.repeat(self.cell, 2).repeat(self.cell, 3)[:, :, :h, :w] * self.value_scale
        mean = np.asarray(self.mean, dtype=np.float64).reshape(1, c, 1, 1)
        std = np.asarray(self.std, dtype=np.float64).reshape(1, c, 1, 1)
        return ((pixels - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class SelfCheck:
    """What a file carries to check itself, and what its export measured."""

    inputs: CheckInputs
    exact: np.ndarray  # (count, classes) float32: the file's own arithmetic
    reference: np.ndarray  # (count, classes) float32: the float32 model
    tolerance: float  # KL(exact || engine) allowed where the file runs, nats
    relative: float  # max |engine - exact| allowed, as a fraction of max |exact|
    precision: str  # "int8" or "float32"
    export: Mapping[str, Any]  # measured at export: kl and agreement to the reference, ...

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": CHECK_VERSION,
                "inputs": asdict(self.inputs),
                "exact": _encode(self.exact),
                "reference": _encode(self.reference),
                "tolerance": self.tolerance,
                "relative_tolerance": self.relative,
                "precision": self.precision,
                "export": dict(self.export),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SelfCheck:
        """Inverse of :meth:`to_json`.

        Raises:
            CheckFormatError: not a self-check record of a version this package reads.
        """
        try:
            record = json.loads(text)
            if record["version"] != CHECK_VERSION:
                raise CheckFormatError(
                    f"self-check version {record['version']!r}, this package reads "
                    f"{CHECK_VERSION}: upgrade squeezenet or re-export the file",
                    field=CHECK_KEY,
                )
            spec = dict(record["inputs"])
            for key in ("shape", "mean", "std"):
                spec[key] = tuple(spec[key])
            inputs = CheckInputs(**spec)
            exact = _decode(record["exact"], inputs.count)
            reference = _decode(record["reference"], inputs.count)
            tolerances = float(record["tolerance"]), float(record["relative_tolerance"])
            return cls(
                inputs, exact, reference, *tolerances, str(record["precision"]),
                dict(record["export"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CheckFormatError):
                raise
            raise CheckFormatError(
                f"damaged self-check record ({type(exc).__name__}: {exc}); re-export the file",
                field=CHECK_KEY,
            ) from None


@dataclass(frozen=True)
class CheckResult:
    """One verification: the engine against the file's arithmetic and its float32 model."""

    kl_exact: float  # KL(exact || engine), nats: what the tolerance bounds
    relative_diff: float  # max |engine - exact| / max |exact|: what the relative one bounds
    kl_reference: float  # KL(reference || engine): the engine's error against float32
    agreement: float  # top-1 agreement of the engine with the reference on the check inputs
    tolerance: float
    images: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def mean_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """Mean over rows of KL(softmax(p) || softmax(q)), nats (float64 throughout)."""
    p, q = _log_softmax(p_logits), _log_softmax(q_logits)
    return float((np.exp(p) * (p - q)).sum(1).mean())


def make_check(
    inputs: CheckInputs,
    exact: np.ndarray,
    reference: np.ndarray,
    *,
    precision: str,
    export: Mapping[str, Any] | None = None,
) -> SelfCheck:
    """The record for a file whose arithmetic gives ``exact`` on ``inputs.images()`` and whose
    float32 model gives ``reference``; ``export`` adds what else the export measured."""
    exact = np.asarray(exact, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    measured = {
        "kl": round(mean_kl(reference, exact), 6),
        "agreement": float((exact.argmax(1) == reference.argmax(1)).mean()),
        **(export or {}),
    }
    if precision == "int8":
        return SelfCheck(
            inputs, exact, reference, INT8_TOLERANCE, INT8_RELATIVE, precision, measured
        )
    return SelfCheck(inputs, exact, reference, FLOAT_TOLERANCE, FLOAT_RELATIVE, precision, measured)


def verify(
    run: Callable[[np.ndarray], np.ndarray], check: SelfCheck, *, what: str, hint: str = ""
) -> CheckResult:
    """Run ``check``'s inputs through ``run`` (float32 NCHW batch -> logits) and compare.

    Args:
        what: the file and engine, for the message (e.g. ``"q.onnx on onnxruntime"``).
        hint: a sentence on the likely cause on this machine, appended to the message.
    Raises:
        ModelCheckError: KL(exact || engine) above the file's tolerance.
    """
    got = np.asarray(run(check.inputs.images()), dtype=np.float32)
    if got.shape != check.exact.shape:
        raise ModelCheckError(
            f"{what}: the engine returned outputs of shape {got.shape} for the file's check "
            f"inputs, the file recorded {check.exact.shape}; re-export the file"
        )
    scale = float(np.abs(check.exact).max()) or 1.0
    result = CheckResult(
        kl_exact=mean_kl(check.exact, got),
        relative_diff=float(np.abs(got - check.exact).max()) / scale,
        kl_reference=mean_kl(check.reference, got),
        agreement=float((got.argmax(1) == check.reference.argmax(1)).mean()),
        tolerance=check.tolerance,
        images=len(got),
    )
    if not (result.kl_exact <= check.tolerance and result.relative_diff <= check.relative):
        raise ModelCheckError(  # a NaN fails too
            f"{what}: on this machine the model's outputs differ from the file's own arithmetic "
            f"on its {result.images} check images by KL {result.kl_exact:.3g} nats and "
            f"{result.relative_diff:.3g} of the largest logit (allowed {check.tolerance:g} and "
            f"{check.relative:g}; KL to float32 {result.kl_reference:.3g} here, "
            f"{check.export.get('kl', float('nan')):.3g} at export), so its answers would be "
            f"wrong; nothing was run.{(' ' + hint) if hint else ''}"
        )
    return result


def metadata_of(data: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialised ONNX model, as a dict."""
    import onnx

    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


def with_metadata(data: bytes, entries: Mapping[str, str]) -> bytes:
    """``data`` (a serialised ONNX model) with ``entries`` set in its ``metadata_props``."""
    import onnx

    proto = onnx.load_from_string(data)
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    out: bytes = proto.SerializeToString()
    return out


def exact_outputs(data: bytes, batches: Sequence[np.ndarray]) -> np.ndarray:
    """The file's own arithmetic on ``batches``: ONNX Runtime with every graph optimisation
    off, so each Quantize/DequantizeLinear runs as written in float32 and no fused integer
    kernel (whose sums depend on the CPU's instructions) is used."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x})[0] for x in batches])


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str, rows: int) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")
    if rows < 1 or flat.size % rows:
        raise ValueError(f"{flat.size} values do not make {rows} rows")
    return flat.reshape(rows, -1).astype(np.float32)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(1, keepdims=True))
    return out
