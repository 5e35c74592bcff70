"""ONNX files this package writes: their metadata (docs/ONNX.md) and running them, checked.

Every export stamps the model's name, config, preprocessing, class names and a self-check
(:mod:`squeezenet.deploy.selfcheck`) into the file, so ``eval``, ``predict`` and ``bench`` can
run an exported file alone, and refuse, on the machine that runs it, an engine that does not
compute it. numpy, onnx and the runtimes only: no torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from squeezenet.deploy.runtimes import Runner, cpu_int8_note, runner
from squeezenet.deploy.selfcheck import (
    CHECK_KEY,
    CheckFormatError,
    CheckInputs,
    CheckResult,
    SelfCheck,
    exact_outputs,
    make_check,
    metadata_of,
    verify,
    with_metadata,
)
from squeezenet.errors import MissingFileError

FORMAT_KEY = "squeezenet.format"
FORMAT = "squeezenet-onnx/1"
MODEL_KEY, CONFIG_KEY = "squeezenet.model", "squeezenet.config"
PREPROCESS_KEY, CLASSES_KEY = "squeezenet.preprocess", "squeezenet.classes"


@dataclass(frozen=True)
class ModelInfo:
    """What a file says of its model, so that it runs alone."""

    model_name: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    preprocess: Mapping[str, Any] | None = None  # Preprocess.to_dict()
    class_names: Sequence[str] | None = None


@dataclass(frozen=True)
class OnnxFile:
    """An exported ONNX file and what its metadata says."""

    path: Path
    data: bytes
    model_name: str
    config: dict[str, Any]
    preprocess: dict[str, Any] | None
    class_names: list[str] | None
    check: SelfCheck

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.check.inputs.shape


def check_inputs_for(
    shape: tuple[int, int, int], preprocess: Mapping[str, Any] | None
) -> CheckInputs:
    """Check images in the model's own input range: its preprocessing's mean, std and pixel
    scale (a model without one gets pixels in 0..1, no normalisation)."""
    if preprocess is None:
        return CheckInputs(shape, (0.0,) * shape[0], (1.0,) * shape[0])
    return CheckInputs(
        shape,
        tuple(float(v) for v in preprocess["mean"]),
        tuple(float(v) for v in preprocess["std"]),
        float(preprocess["value_scale"]),
    )


def stamp(
    data: bytes,
    reference: np.ndarray,
    inputs: CheckInputs,
    info: ModelInfo,
    *,
    precision: str,
    export: Mapping[str, Any] | None = None,
) -> tuple[bytes, SelfCheck]:
    """``data`` with the package's metadata and a self-check whose exact outputs are computed
    here (the file's own arithmetic); ``reference`` holds the float32 model's logits on
    ``inputs.images()``."""
    exact = exact_outputs(data, [inputs.images()])
    check = make_check(inputs, exact, reference, precision=precision, export=export)
    entries = {
        FORMAT_KEY: FORMAT,
        MODEL_KEY: info.model_name,
        CONFIG_KEY: json.dumps(dict(info.config)),
        CHECK_KEY: check.to_json(),
    }
    if info.preprocess is not None:
        entries[PREPROCESS_KEY] = json.dumps(dict(info.preprocess))
    if info.class_names is not None:
        entries[CLASSES_KEY] = json.dumps(list(info.class_names))
    return with_metadata(data, entries), check


def stamp_checked(
    data: bytes,
    reference: np.ndarray,
    inputs: CheckInputs,
    info: ModelInfo,
    *,
    precision: str,
    path: str | Path,
    export: Mapping[str, Any] | None = None,
    runtime: str = "onnxruntime",
) -> tuple[bytes, Runner, CheckResult]:
    """:func:`stamp`, then the stamped file run in ``runtime`` on this machine and verified, as
    a reader of the file at ``path`` would (nothing is written).

    Raises:
        ModelCheckError: this machine's ``runtime`` does not compute the file.
    """
    data, check = stamp(data, reference, inputs, info, precision=precision, export=export)
    file = OnnxFile(
        Path(path), data, info.model_name, dict(info.config),
        dict(info.preprocess) if info.preprocess is not None else None,
        list(info.class_names) if info.class_names is not None else None, check,
    )  # fmt: skip
    run, result = checked_runner(file, runtime)
    return data, run, result


def read_onnx(path: str | Path) -> OnnxFile:
    """An ONNX file exported by this package.

    Raises:
        MissingFileError: no such file.
        CheckFormatError: not an ONNX model, or one without this package's metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"ONNX file not found: {path}")
    data = path.read_bytes()
    try:
        meta = metadata_of(data)
    except Exception as exc:  # onnx raises DecodeError, ValueError ... on foreign bytes
        raise CheckFormatError(
            f"{path} is not an ONNX model ({type(exc).__name__}); give a file written by "
            "squeezenet export"
        ) from None
    if meta.get(FORMAT_KEY) != FORMAT or CHECK_KEY not in meta:
        raise CheckFormatError(
            f"{path} has no squeezenet metadata (it was not written by this package's export, "
            f"or by a version before self-checking files): re-export it with squeezenet export",
            field=FORMAT_KEY,
        )
    try:
        config = json.loads(meta.get(CONFIG_KEY, "{}"))
        preprocess = json.loads(meta[PREPROCESS_KEY]) if PREPROCESS_KEY in meta else None
        classes = json.loads(meta[CLASSES_KEY]) if CLASSES_KEY in meta else None
    except ValueError as exc:
        raise CheckFormatError(f"{path}: damaged metadata ({exc}); re-export it") from None
    check = SelfCheck.from_json(meta[CHECK_KEY])
    return OnnxFile(path, data, meta.get(MODEL_KEY, ""), config, preprocess, classes, check)


def checked_runner(file: OnnxFile, runtime: str = "onnxruntime") -> tuple[Runner, CheckResult]:
    """``file`` in ``runtime``, verified on this machine against the file's self-check.

    Raises:
        ModelCheckError: the runtime's outputs leave the file's arithmetic (nothing run).
        ConfigError: an unknown runtime, or OpenVINO missing.
    """
    run = runner(file.data, runtime)
    hint = cpu_int8_note() if file.check.precision == "int8" and runtime == "onnxruntime" else ""
    result = verify(run, file.check, what=f"{file.path} on {runtime}", hint=hint)
    return run, result
