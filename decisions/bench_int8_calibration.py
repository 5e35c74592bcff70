"""How the int8 engine's activation calibration is chosen: variants scored on held-out proxies.

Each variant quantizes the imported published SqueezeNet with ONNX Runtime's static QDQ
quantization (int8 weights per output channel, uint8 activations) and is scored by top-1
agreement with, and KL to, the float32 model on the held-out proxy sets of
``benchmarks/proxy_sets.py`` (CIFAR-10 *test* images, mosaics of them, crops of the photographs
that scikit-image and matplotlib ship). Calibration images come from the CIFAR-10 *training*
split.
The ImageNet evaluation images are never read.

    python decisions/bench_int8_calibration.py > benchmarks/results/int8_calibration_proxies.jsonl
    python decisions/bench_int8_calibration.py --only gptq --decompose >> (the same file)

Prints one JSON line per variant (about 10 minutes here). ``--only WORD`` runs the variants
whose name holds WORD. ``--decompose`` splits the int8 error (nearest and GPTQ weight rounding)
into its parts by taking Q/DQ pairs out of the quantized graph (the uint8 clamp at zero point 0
stood for a ReLU, so a ReLU is put back): the weights alone (every activation in float), and
every activation quantized but the fire2 squeeze output, the input image and the fire3 squeeze
output, cumulatively (the three that a greedy search on 200-image subsets of the proxies took
out first, in that order).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the records beside this one
import proxy_sets
from equalize import equalize_

from squeezenet.compress.proxy_sampler import ProxyConfig, ProxySampler
from squeezenet.data.sources import load_dataset
from squeezenet.deploy.export import onnx_bytes
from squeezenet.deploy.int8 import CalibrationReader, int8_model_onnx
from squeezenet.deploy.int8_calibration import calibration_batches
from squeezenet.deploy.runtimes import onnx_session
from squeezenet.workflows.load import load_any


def main() -> None:
    from onnxruntime.quantization import CalibrationMethod as M

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="run the variants whose name holds this")
    parser.add_argument("--decompose", action="store_true", help="split the int8 error")
    args = parser.parse_args()

    teacher = load_any(proxy_sets.imported_weights(Path(tempfile.mkdtemp())))
    assert teacher.preprocess is not None
    sets = proxy_sets.held_out(teacher.preprocess)
    reference = {name: proxy_sets.logits(teacher.model, batches) for name, batches in sets.items()}
    dense = onnx_bytes(teacher.model.eval(), torch.zeros(1, 3, 227, 227))
    graph = onnx.load_from_string(dense).graph
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    logits = [n.name for n in graph.node if n.op_type in ("ReduceMean", "Reshape")]
    plain = calibration_batches("cifar10", teacher.preprocess, images=256)
    sampler = ProxySampler(
        load_dataset("cifar10", "train"), teacher.preprocess, ProxyConfig(mix="mosaic")
    )
    mosaic = [b.contiguous().numpy().astype(np.float32) for b in sampler.batches(256, 32, 123)]
    wide = calibration_batches("cifar10", teacher.preprocess, images=1024)
    ends = (convs[0], convs[-1])
    variants: list[tuple[str, list[np.ndarray], Any, dict[str, Any]]] = [
        ("minmax", plain, M.MinMax, {}),
        ("minmax, GPTQ weight rounding (default)", plain, M.MinMax, {"gptq": True}),
        ("entropy", plain, M.Entropy, {}),
        ("percentile 99.999", plain, M.Percentile, {}),
        ("percentile 99.9999", plain, M.Percentile, {"extra": {"CalibPercentile": 99.9999}}),
        ("minmax moving-average", plain, M.MinMax, {"extra": {"CalibMovingAverage": True}}),
        ("minmax, 1024 images", wide, M.MinMax, {}),
        ("minmax, mosaic calibration", mosaic, M.MinMax, {}),
        ("minmax, conv1 float", plain, M.MinMax, {"exclude": convs[:1]}),
        ("minmax, conv1+conv10 float", plain, M.MinMax, {"exclude": ends}),
        ("minmax, logits float", plain, M.MinMax, {"exclude": logits}),
        ("minmax, Conv only", plain, M.MinMax, {"ops": ["Conv"]}),
    ]
    for name, calibration, method, options in variants:
        if args.only not in name:
            continue
        if options.pop("gptq", False):
            model = int8_model_onnx(teacher.model, calibration)
        else:
            model = _quantize(dense, calibration, method, **options)
        print(json.dumps({"variant": name, **proxy_scores(model, sets, reference)}), flush=True)
    if args.decompose:
        for rounding, model in (
            ("nearest", _quantize(dense, plain, M.MinMax)),
            ("gptq", int8_model_onnx(teacher.model, plain)),
        ):
            _decompose(rounding, model, sets, reference)
    if args.only and args.only not in "equalisation":
        return
    for strength in (0.5, 1.0):  # cross-layer equalisation of the activation ranges first
        equalized = copy.deepcopy(teacher.model).eval()
        equalize_(equalized, plain, strength)
        data = onnx_bytes(equalized, torch.zeros(1, 3, 227, 227))
        model = _quantize(data, plain, M.MinMax)
        name = f"minmax after equalisation, strength {strength}"
        print(json.dumps({"variant": name, **proxy_scores(model, sets, reference)}), flush=True)


def _decompose(
    rounding: str, model: bytes, sets: dict[str, list[torch.Tensor]], reference: dict[str, Any]
) -> None:
    graph = onnx.load_from_string(model).graph
    activations = [n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"]
    steps: list[tuple[str, set[str]]] = [
        ("all quantized", set()),
        ("weights only (activations float)", set(activations)),
    ]
    dropped: set[str] = set()
    for tensor, label in (
        ("relu_1", "fire2 squeeze"),
        ("input", "input"),
        ("relu_4", "fire3 squeeze"),
    ):
        dropped = dropped | {tensor}
        steps.append((f"float: {', '.join(sorted(dropped))} ({label} added)", set(dropped)))
    for label, drop in steps:
        scored = proxy_scores(float_activations(model, drop), sets, reference)
        print(json.dumps({"decompose": rounding, "variant": label, **scored}), flush=True)


def float_activations(model: bytes, tensors: set[str]) -> bytes:
    """``model`` with the Q/DQ pairs of the activation ``tensors`` taken out (those tensors stay
    float; a ReLU replaces a uint8 clamp at zero point 0, which ONNX Runtime folded it into)."""
    proto = onnx.load_from_string(model)
    graph = proto.graph
    zero = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    remove, rename, added = set(), {}, []
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in tensors]:
        source = q.input[0]
        if source != "input" and int(zero[q.input[2]]) == 0:
            added.append(onnx.helper.make_node("Relu", [source], [source + "_float_relu"]))
            source += "_float_relu"
        remove.add(q.output[0])
        for dq in [d for d in graph.node if d.input and d.input[0] == q.output[0]]:
            remove.add(dq.output[0])
            rename[dq.output[0]] = source
    nodes = [n for n in graph.node if n.output[0] not in remove] + added
    for node in nodes:
        node.input[:] = [rename.get(x, x) for x in node.input]
    ready = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {""}
    ordered: list[onnx.NodeProto] = []
    while nodes:  # topological order again (the ReLUs were appended)
        ready_now = [n for n in nodes if all(x in ready for x in n.input)]
        ordered += ready_now
        ready.update(o for n in ready_now for o in n.output)
        nodes = [n for n in nodes if n not in ready_now]
    del graph.node[:]
    graph.node.extend(ordered)
    return proto.SerializeToString()


def _quantize(
    dense: bytes,
    calibration: Sequence[np.ndarray],
    method: Any,
    *,
    exclude: Sequence[str] = (),
    ops: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as folder:
        source, prepared, target = (os.path.join(folder, f) for f in ("f.onnx", "p.onnx", "q.onnx"))
        Path(source).write_bytes(dense)
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_static(
            prepared, target, CalibrationReader("input", calibration), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=method, nodes_to_exclude=list(exclude), op_types_to_quantize=ops,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, **(extra or {})},
        )  # fmt: skip
        return Path(target).read_bytes()


def proxy_scores(
    model: bytes, sets: dict[str, list[torch.Tensor]], reference: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """The int8 ONNX ``model`` on the held-out ``sets``: per set [top-1 agreement, KL] with the
    float32 ``reference`` logits, their mean KL, the file's bytes and a short sha256."""
    session = onnx_session(model)
    proxy: dict[str, list[float]] = {}
    for name, batches in sets.items():
        out = [session.run(None, {"input": x.contiguous().numpy()})[0] for x in batches]
        got, ref = torch.from_numpy(np.concatenate(out)), reference[name]
        agreement = float((got.argmax(1) == ref.argmax(1)).float().mean())
        kl = F.kl_div(F.log_softmax(got, 1), F.log_softmax(ref, 1), reduction="batchmean",
                      log_target=True)  # fmt: skip
        proxy[name] = [round(agreement, 4), round(float(kl), 5)]
    return {
        "sha256": hashlib.sha256(model).hexdigest()[:12],
        "bytes": len(model),
        "proxy": proxy,
        "mean_kl": round(statistics.mean(v[1] for v in proxy.values()), 5),
    }


if __name__ == "__main__":
    main()
