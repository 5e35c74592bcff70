"""A compact ONNX file from a ``.sqz``: codebook indices and codebooks instead of float weights.

The dense export of a 0.43 MB ``.sqz`` is a 5 MB ONNX file: clustering does not shrink a file
whose weights are stored as floats. ONNX has no look-up-table operator (onnx/onnx#5329), but a
``Gather`` over a codebook is one, in standard operators any runtime has. Each weight-shared
layer's weight initializer is replaced by the smallest of

* ``dense``: one uint8 (uint16 past 256 entries) index per weight into the codebook with 0.0
  prepended: ``Reshape(Gather(codebook, Cast(codes)))``;
* ``complement``: one uint8 index per weight into the codebook alone, and the flat positions of
  the zero weights (int32), set by ``ScatterND``: what near-dense 8-bit layers need, whose 256
  values and zero do not fit a byte.

Every other tensor (biases, non-shared layers) stays as it was. ONNX Runtime and OpenVINO
constant-fold these subgraphs when a session is created, so inference runs on dense float
weights, as fast as the dense export (``bench`` checks it). The graph is rebuilt from the dense
export, and a layer is replaced only when its initializer equals the file's decoded weight bit
for bit.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from squeezenet.errors import ConfigError, InputError
from squeezenet.formats.model import CompressedModel
from squeezenet.runtime.onnx_graph import onnx_session


@dataclass(frozen=True)
class CompactLayer:
    """How one layer was stored."""

    name: str
    mode: str  # "dense" (uint8 / uint16 codes) or "complement" (codes + zero positions)
    index_dtype: str
    bytes: int  # codes, positions and codebook


def compact_onnx(dense_onnx: bytes, model: CompressedModel) -> tuple[bytes, list[CompactLayer]]:
    """``dense_onnx`` with each layer of ``model`` stored as codes and a codebook.

    Args:
        dense_onnx: the ONNX export of ``from_compressed(model)`` (initializers named by their
            state-dict keys, as ``torch.onnx.export`` writes them).
        model: the decoded ``.sqz``.

    Raises:
        InputError: no layer of ``model`` is found among the graph's initializers.
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(dense_onnx)
    initializers = {init.name: init for init in proto.graph.initializer}
    nodes, rows = [], []
    for layer in model.layers:
        key = f"{layer.name}.weight"
        init = initializers.get(key)
        if init is None:
            continue
        dense = numpy_helper.to_array(init)
        weight = layer.dense_weight()
        if dense.shape != weight.shape or not np.array_equal(
            dense.view(np.uint32), weight.view(np.uint32)
        ):
            continue  # e.g. folded by the exporter: keep the float tensor
        tensors, layer_nodes, row = _layer_graph(key, layer.name, weight)
        proto.graph.initializer.remove(init)
        proto.graph.initializer.extend(numpy_helper.from_array(t, n) for n, t in tensors.items())
        nodes += layer_nodes
        rows.append(row)
    if not rows:
        raise InputError("no weight-shared layer of the .sqz matches the exported graph")
    # The new nodes make the weights; put them first so the graph stays topologically sorted.
    old = list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend([*nodes, *old])
    onnx.checker.check_model(proto)
    return proto.SerializeToString(), rows


def _layer_graph(
    key: str, name: str, weight: np.ndarray
) -> tuple[dict[str, np.ndarray], list[Any], CompactLayer]:
    """Initializers and nodes that compute ``key`` (the layer's weight) from codes."""
    from onnx import TensorProto, helper

    flat = weight.reshape(-1)
    values = np.unique(flat)
    nonzero = values[values != 0]
    shape = np.array(weight.shape, dtype=np.int64)
    zeros = np.flatnonzero(flat == 0).astype(np.int32)
    options: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]] = {}
    book = np.concatenate([[np.float32(0)], nonzero]).astype(np.float32)  # index 0: 0.0
    codes = np.searchsorted(nonzero, flat) + 1
    codes[flat == 0] = 0
    dtype = np.uint8 if len(book) <= 256 else np.uint16
    options["dense"] = (codes.astype(dtype), book, None, dtype)
    if len(nonzero) <= 256 and len(book) > 256:
        near = np.searchsorted(nonzero, flat).clip(0, len(nonzero) - 1).astype(np.uint8)
        options["complement"] = (near, nonzero.astype(np.float32), zeros, np.uint8)

    def size(option: tuple[np.ndarray, np.ndarray, np.ndarray | None, type]) -> int:
        c, b, z, _ = option
        return c.nbytes + b.nbytes + (z.nbytes if z is not None else 0)

    mode = min(options, key=lambda m: size(options[m]))
    c, b, z, dtype = options[mode]
    p = f"{name}.sqz"
    tensors = {f"{p}.codes": c, f"{p}.codebook": b, f"{p}.shape": shape}
    nodes = [
        helper.make_node("Cast", [f"{p}.codes"], [f"{p}.index"], to=TensorProto.INT32),
        helper.make_node("Gather", [f"{p}.codebook", f"{p}.index"], [f"{p}.values"], axis=0),
    ]
    flat_out = f"{p}.values"
    if z is not None:
        tensors[f"{p}.zeros"] = z
        tensors[f"{p}.zero_shape"] = np.array([len(z)], dtype=np.int64)
        tensors[f"{p}.axes"] = np.array([1], dtype=np.int64)
        nodes += [
            helper.make_node("Cast", [f"{p}.zeros"], [f"{p}.zero_index"], to=TensorProto.INT64),
            helper.make_node("Unsqueeze", [f"{p}.zero_index", f"{p}.axes"], [f"{p}.where"]),
            helper.make_node(
                "ConstantOfShape",
                [f"{p}.zero_shape"],
                [f"{p}.zero_values"],
                value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
            ),
            helper.make_node(
                "ScatterND", [f"{p}.values", f"{p}.where", f"{p}.zero_values"], [f"{p}.scattered"]
            ),
        ]
        flat_out = f"{p}.scattered"
    nodes.append(helper.make_node("Reshape", [flat_out, f"{p}.shape"], [key]))
    row = CompactLayer(name, mode, np.dtype(dtype).name, size(options[mode]))
    return tensors, nodes, row


@dataclass(frozen=True)
class CompactReport:
    """What :func:`export_compact` wrote and measured."""

    path: str
    bytes: int
    dense_bytes: int  # the dense export of the same model
    max_abs_diff: dict[str, float]  # per runtime, against the .sqz decode run in PyTorch
    load_ms: dict[str, float]  # ONNX Runtime session creation, compact and dense
    layers: list[CompactLayer]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": [asdict(layer) for layer in self.layers]}


COMPACT_TOLERANCE = 1e-5  # max |compact - decode| accepted in every runtime


def export_compact(
    sqz: str | Path, out: str | Path, *, batch: int = 2, seed: int = 0
) -> CompactReport:
    """Write the compact ONNX of a ``.sqz`` file, checked in ONNX Runtime (and OpenVINO when
    installed) against the file's decode run in PyTorch.

    Raises:
        ExportParityError: a runtime differs by more than :data:`COMPACT_TOLERANCE`.
    """
    import torch

    from squeezenet.compress.plain_data import from_compressed
    from squeezenet.deploy.engines import openvino_engine
    from squeezenet.deploy.export import ExportParityError, check_target, onnx_bytes, write
    from squeezenet.formats import read_sqz

    path = Path(out)
    check_target(path)
    cm = read_sqz(sqz)
    model = from_compressed(cm).eval()
    size = int(cm.preprocess["crop"]) if cm.preprocess else 224
    channels = int(cm.preprocess.get("channels", 3)) if cm.preprocess else 3
    x = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        reference = model(x).numpy()
    dense = onnx_bytes(model, x[:1])
    data, rows = compact_onnx(dense, cm)
    diffs, load_ms = {}, {}
    for name, blob in (("onnxruntime", data), ("onnxruntime dense", dense)):
        start = time.perf_counter()
        session = onnx_session(blob)
        load_ms[name] = round(1000 * (time.perf_counter() - start), 1)
        if name == "onnxruntime":
            diffs[name] = float(
                np.abs(session.run(None, {"input": x.numpy()})[0] - reference).max()
            )
    with contextlib.suppress(ConfigError):  # OpenVINO not installed: checked where it is
        diffs["openvino"] = float(np.abs(openvino_engine(data)(x) - reference).max())
    worst = max(diffs.values())
    if not worst <= COMPACT_TOLERANCE:
        raise ExportParityError(
            f"the compact ONNX differs from the .sqz decode by {worst:.3g} "
            f"(> {COMPACT_TOLERANCE:g}) in {max(diffs, key=lambda k: diffs[k])}; nothing was "
            "written; export without --compact"
        )
    write(path, data)
    return CompactReport(str(path), len(data), len(dense), diffs, load_ms, rows)
