"""A SqueezeNet's layer list written as an ONNX graph with the ``onnx`` helpers, and run in ONNX
Runtime: the torch-free way to the fast CPU engine (no ``torch.onnx`` export).

The graph computes what :class:`squeezenet.runtime.numpy_engine.NumpyNetwork` computes: every
convolution with its batch norm folded in (:func:`squeezenet.runtime.params.conv_params`) and its
ReLU as a separate node (ONNX Runtime fuses the pair), 3x3/2 max pools in Caffe's ceil mode, Fire
modules as two expand convolutions concatenated on the channels plus the bypass (SqueezeNet
Sec. 3.2, Sec. 6), then a global average pool flattened to ``(N, classes)``. Dropout is the
identity at inference and has no node.

``onnx`` and ``onnxruntime`` are optional: they are imported by the functions that need them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from squeezenet.arch.layers import Conv, Fire, GlobalAvgPool, Layer, MaxPool
from squeezenet.errors import InputError, MissingDependencyError, pip_command
from squeezenet.runtime.params import conv_params

if TYPE_CHECKING:
    import onnx

OPSET = 18  # the opset of squeezenet.deploy.export's files, so both graphs use the same ops
INPUT, OUTPUT = "input", "logits"


def _missing(package: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"the ONNX Runtime engine needs the {package} package, which is not installed: "
        + pip_command("onnx")
    )


class _GraphWriter:
    """Appends nodes and initializers for one layer list; each method returns its output name."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        try:
            from onnx import helper, numpy_helper
        except ImportError:
            raise _missing("onnx") from None
        self.helper, self.numpy_helper = helper, numpy_helper
        self.weights = weights
        self.nodes: list[Any] = []  # onnx.NodeProto
        self.initializers: list[Any] = []  # onnx.TensorProto
        self._pools = 0

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, conv: Conv, x: str) -> str:
        """``conv`` (batch norm folded), then its ReLU: ``(N, I, H, W)`` -> ``(N, O, H', W')``."""
        weight, bias = conv_params(conv, self.weights)
        names = (f"{conv.name}.weight", f"{conv.name}.bias")
        for name, value in zip(names, (weight, bias), strict=True):
            self.initializers.append(self.numpy_helper.from_array(value, name))
        pad = conv.padding
        y = self.node(
            "Conv",
            [x, *names],
            conv.name,
            kernel_shape=[conv.kernel, conv.kernel],
            strides=[conv.stride, conv.stride],
            pads=[pad, pad, pad, pad],
        )
        return self.node("Relu", [y], f"{conv.name}.relu") if conv.relu else y

    def fire(self, fire: Fire, x: str) -> str:
        s = self.conv(fire.squeeze, x)  # (N, s1x1, H, W)
        expanded = [self.conv(fire.expand1x1, s), self.conv(fire.expand3x3, s)]
        y = self.node("Concat", expanded, f"{fire.name}.concat", axis=1)  # (N, e1x1 + e3x3, H, W)
        if fire.bypass == "simple":
            return self.node("Add", [y, x], f"{fire.name}.bypass")
        if fire.shortcut is not None:
            return self.node("Add", [y, self.conv(fire.shortcut, x)], f"{fire.name}.bypass")
        return y

    def max_pool(self, pool: MaxPool, x: str) -> str:
        self._pools += 1
        return self.node(
            "MaxPool",
            [x],
            f"pool{self._pools}",
            kernel_shape=[pool.kernel, pool.kernel],
            strides=[pool.stride, pool.stride],
            ceil_mode=int(pool.ceil_mode),
        )

    def layer(self, layer: Layer, x: str) -> str:
        if isinstance(layer, Conv):
            return self.conv(layer, x)
        if isinstance(layer, Fire):
            return self.fire(layer, x)
        if isinstance(layer, MaxPool):
            return self.max_pool(layer, x)
        assert isinstance(layer, GlobalAvgPool)
        y = self.node("GlobalAveragePool", [x], "avgpool")  # (N, classes, 1, 1)
        return self.node("Flatten", [y], OUTPUT, axis=1)  # (N, classes)


def build_graph(
    layers: tuple[Layer, ...],
    weights: Mapping[str, np.ndarray],
    input_shape: tuple[int, int, int],
    *,
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """The ONNX model (an ``onnx.ModelProto``, opset :data:`OPSET`) of a SqueezeNet.

    Args:
        layers: the network, from :func:`squeezenet.arch.layers.layer_list`; it ends in
            :class:`GlobalAvgPool`.
        weights: state-dict name -> array (float32 or castable), as a ``.sqz`` decodes to.
        input_shape: ``(C, H, W)`` of one input; the graph's input ``"input"`` is float32
            ``(batch, C, H, W)`` with a dynamic batch, its output ``"logits"`` ``(batch, classes)``.
        metadata: stored as the model's ``metadata_props`` (e.g. the ``squeezenet.model``,
            ``squeezenet.config`` ... keys of :mod:`squeezenet.deploy.onnx_file`).

    Raises:
        InputError: ``weights`` lacks a tensor of a layer or has it in the wrong shape.
        MissingDependencyError: ``onnx`` is not installed.
    """
    if not layers or not isinstance(layers[-1], GlobalAvgPool):
        raise ValueError("a SqueezeNet's layer list ends in GlobalAvgPool (see layer_list)")
    writer = _GraphWriter(weights)
    x = INPUT
    for layer in layers:
        x = writer.layer(layer, x)
    assert x == OUTPUT
    classes = _out_channels(layers)
    helper = writer.helper
    graph = helper.make_graph(
        writer.nodes,
        "squeezenet",
        [helper.make_tensor_value_info(INPUT, 1, ["batch", *input_shape])],  # 1: FLOAT
        [helper.make_tensor_value_info(OUTPUT, 1, ["batch", classes])],
        initializer=writer.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    # the IR version this opset needs, not the installed onnx's newest, which a runtime older
    # than that onnx would refuse
    model: onnx.ModelProto = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="squeezenet",
    )
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


def _out_channels(layers: tuple[Layer, ...]) -> int:
    """The channels of the last convolution's output: the number of classes."""
    last = [layer for layer in layers if isinstance(layer, Conv | Fire)][-1]
    return last.out_channels


class OnnxRuntimeNetwork:
    """A SqueezeNet's layers with their weights as a built ONNX graph (:func:`build_graph`) run
    by ONNX Runtime's CPU provider with every graph optimisation on: ``network(x)`` maps float32
    ``(N, C, H, W)`` inputs of ``input_shape`` to ``(N, classes)`` logits, as ``NumpyNetwork``.

    Args:
        threads: ONNX Runtime's intra-op threads (0: its default, one per core).

    Raises:
        InputError: ``weights`` lacks a tensor of a layer or has it in the wrong shape.
        MissingDependencyError: ``onnx`` or ``onnxruntime`` is not installed.
    """

    def __init__(
        self,
        layers: tuple[Layer, ...],
        weights: Mapping[str, np.ndarray],
        input_shape: tuple[int, int, int],
        *,
        threads: int = 0,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        self.layers = layers
        self.input_shape = input_shape
        self.model = build_graph(layers, weights, input_shape, metadata=metadata)
        self.session = onnx_session(self.model.SerializeToString(), threads=threads)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            c, h, w = self.input_shape
            raise InputError(f"expected float32 (N, {c}, {h}, {w}) inputs, got {x.shape}")
        out: np.ndarray = self.session.run([OUTPUT], {INPUT: x})[0]
        return out


def onnx_session(data: bytes, *, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session for ``data`` with every graph optimisation on.

    Args:
        threads: intra-op threads (0: ONNX Runtime's default, one per core).
    Raises:
        MissingDependencyError: ONNX Runtime is not installed (names the pip command).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise _missing("onnxruntime") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
