"""Inference engines behind one call signature: float32 NCHW batch in, numpy logits out."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.arch.config import SqueezeNetConfig
from squeezenet.arch.layers import layer_list
from squeezenet.deploy.export import onnx_bytes
from squeezenet.deploy.int8 import int8_model_onnx
from squeezenet.deploy.onnx_file import ModelInfo, check_inputs_for, stamp_checked
from squeezenet.deploy.runtimes import Runner, onnxruntime_runner, openvino_runner
from squeezenet.errors import ConfigError
from squeezenet.io.weights import plain_state_dict
from squeezenet.runtime.numpy_engine import NumpyNetwork

Engine = Callable[[torch.Tensor], np.ndarray]


@dataclass(frozen=True)
class EngineInputs:
    """What an engine factory is given: the model and what some engines need besides it."""

    model: nn.Module
    input_shape: tuple[int, int, int]  # (C, H, W)
    # The int8 engines: preprocessed proxy batches that set the activation ranges (never
    # evaluation images); None: uniform noise, fit for timing only.
    calibration: Sequence[np.ndarray] | None = None
    # The model's preprocessing record, which puts the int8 self-check images in its input range.
    preprocess: Mapping[str, Any] | None = None


EngineFactory = Callable[[EngineInputs], Engine]
# name -> factory, in the order bench and --help list them; register_engine adds one.
_FACTORIES: dict[str, EngineFactory] = {}
ENGINES: tuple[str, ...] = ()


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make an engine selectable by ``name`` (``--engine``, ``bench --engines``); a name taken
    twice is a bug, not input."""
    global ENGINES
    if name in _FACTORIES or name == "torch":
        raise ValueError(f"engine {name!r} is already registered; pick another name")
    _FACTORIES[name] = factory
    ENGINES = tuple(_FACTORIES)


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
    data = onnx_bytes(model.eval(), torch.zeros(1, *input_shape))
    return from_runner(onnxruntime_runner(data, threads=threads))


def onnx_data_engine(data: bytes) -> Engine:
    """ONNX Runtime (CPU provider, every graph optimisation) on a serialised ONNX model."""
    return from_runner(onnxruntime_runner(data))


def openvino_engine(data: bytes, *, precision: str = "f32") -> Engine:
    """OpenVINO (CPU plugin) on a serialised ONNX model (see :func:`openvino_runner`).

    Raises:
        ConfigError: the ``openvino`` package is not installed, or ``bf16`` on a CPU that
            has no bfloat16 units.
    """
    return from_runner(openvino_runner(data, precision=precision))


def from_runner(run: Runner) -> Engine:
    """A numpy runner as an :data:`Engine` (torch tensor in)."""

    def engine(x: torch.Tensor) -> np.ndarray:
        return run(x.contiguous().numpy())

    return engine


def int8_engine(
    runtime: str,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    calibration: Sequence[np.ndarray],
    preprocess: Mapping[str, Any] | None,
) -> Engine:
    """The int8 ONNX of ``model`` in ``runtime``, checked on this machine as an exported file
    is (:func:`squeezenet.deploy.onnx_file.checked_runner`).

    Raises:
        ModelCheckError: this machine's kernels do not compute the int8 model's arithmetic.
    """
    inputs = check_inputs_for(input_shape, preprocess)
    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(inputs.images())).numpy()
    _, run, _ = stamp_checked(
        int8_model_onnx(model, calibration), reference, inputs, ModelInfo(), precision="int8",
        path=f"the {runtime}-int8 engine's model", runtime=runtime,
    )  # fmt: skip
    return from_runner(run)


def make_engine(
    name: str,
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    calibration: Sequence[np.ndarray] | None = None,
    preprocess: Mapping[str, Any] | None = None,
) -> Engine:
    """One of :data:`ENGINES` (``torch`` means eager channels_last).

    Args:
        calibration: for the int8 engines, preprocessed proxy batches that set the activation
            ranges (never evaluation images); None: uniform noise, fit for timing only.
        preprocess: the model's preprocessing record (``Preprocess.to_dict()``), which puts the
            int8 engines' self-check images in the model's input range.

    Raises:
        ConfigError: an unknown engine name, or an engine whose package is missing.
        ModelCheckError: an int8 engine whose kernels do not compute its model on this machine.
    """
    check_engines([name], "engine")
    factory = _FACTORIES["eager_channels_last" if name == "torch" else name]
    return factory(EngineInputs(model, input_shape, calibration, preprocess))


def _int8(runtime: str) -> EngineFactory:
    def factory(given: EngineInputs) -> Engine:
        calibration = given.calibration
        if calibration is None:
            calibration = [noise_calibration(given.input_shape)]
        return int8_engine(runtime, given.model, given.input_shape, calibration, given.preprocess)

    return factory


def _openvino(precision: str) -> EngineFactory:
    def factory(given: EngineInputs) -> Engine:
        data = onnx_bytes(given.model.eval(), torch.zeros(1, *given.input_shape))
        return openvino_engine(data, precision=precision)

    return factory


def runtime_engine(name: str) -> EngineFactory:
    """A torch-free runtime engine (``numpy``, ``onnxruntime-graph``) on a SqueezeNet module:
    its layer list and effective weights, run outside torch."""

    def factory(given: EngineInputs) -> Engine:
        config = getattr(given.model, "config", None)
        if not isinstance(config, SqueezeNetConfig):
            raise ConfigError(f"the {name} engine runs SqueezeNets only")
        weights = {k: v.float().numpy() for k, v in plain_state_dict(given.model).items()}
        layers = layer_list(config)
        if name == "numpy":
            network: Runner = NumpyNetwork(layers, weights)
        else:
            from squeezenet.runtime.onnx_graph import OnnxRuntimeNetwork

            network = OnnxRuntimeNetwork(layers, weights, given.input_shape)
        return from_runner(network)

    return factory


for _name, _factory in (
    ("eager_nchw", lambda given: torch_engine(given.model, channels_last=False)),
    ("eager_channels_last", lambda given: torch_engine(given.model, channels_last=True)),
    ("onnxruntime", lambda given: onnxruntime_engine(given.model, given.input_shape)),
    ("compile", lambda given: compiled_engine(given.model)),
    ("onnxruntime-int8", _int8("onnxruntime")),
    ("openvino", _openvino("f32")),
    ("openvino-int8", _int8("openvino")),
    ("openvino-bf16", _openvino("bf16")),
    ("numpy", runtime_engine("numpy")),
    ("onnxruntime-graph", runtime_engine("onnxruntime-graph")),
):
    register_engine(_name, _factory)


def noise_calibration(input_shape: tuple[int, int, int]) -> np.ndarray:
    """Uniform noise in -1..1 standing in for calibration images: right for timing, not for
    outputs (bench says so when it uses it)."""
    return np.random.default_rng(0).uniform(-1, 1, (8, *input_shape)).astype(np.float32)


class EngineModule(nn.Module):
    """An engine as a module (``forward`` returns a float32 tensor), so code written for
    PyTorch models (evaluate, compare) runs any engine."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.engine(x.float()), dtype=np.float32))
