"""How the int8 engine's activation calibration is chosen: variants scored on held-out proxies.

Each variant quantizes the imported published SqueezeNet with ONNX Runtime's static QDQ
quantization (int8 weights per output channel, uint8 activations) and is scored by top-1
agreement with, and KL to, the float32 model on the held-out proxy sets of
``bench_proxies.py`` (CIFAR-10 *test* images, mosaics of them, crops of the photographs that
scikit-image and matplotlib ship). Calibration images come from the CIFAR-10 *training* split.
The ImageNet evaluation images are never read.

    python benchmarks/bench_int8_calibration.py > benchmarks/results/int8_calibration_proxies.jsonl

Prints one JSON line per variant (about 10 minutes here).
"""

from __future__ import annotations

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_proxies as bp
from equalize import equalize_

from squeezenet.compress.proxy import ProxyConfig, ProxySampler
from squeezenet.data.registry import load_dataset
from squeezenet.deploy.export import onnx_bytes, onnx_session
from squeezenet.deploy.int8 import _Reader
from squeezenet.jobs.calibration import calibration_batches
from squeezenet.jobs.load import load_any


def main() -> None:
    from onnxruntime.quantization import CalibrationMethod as M

    teacher = load_any(bp._weights(Path(tempfile.mkdtemp())))
    assert teacher.preprocess is not None
    sets = bp._held_out(teacher.preprocess)
    reference = {name: bp._logits(teacher.model, batches) for name, batches in sets.items()}
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
        model = _quantize(dense, calibration, method, **options)
        print(json.dumps({"variant": name, **_score(model, sets, reference)}), flush=True)
    for strength in (0.5, 1.0):  # cross-layer equalisation of the activation ranges first
        equalized = copy.deepcopy(teacher.model).eval()
        equalize_(equalized, plain, strength)
        data = onnx_bytes(equalized, torch.zeros(1, 3, 227, 227))
        model = _quantize(data, plain, M.MinMax)
        name = f"minmax after equalisation, strength {strength}"
        print(json.dumps({"variant": name, **_score(model, sets, reference)}), flush=True)


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
            prepared, target, _Reader("input", calibration), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=method, nodes_to_exclude=list(exclude), op_types_to_quantize=ops,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, **(extra or {})},
        )  # fmt: skip
        return Path(target).read_bytes()


def _score(
    model: bytes, sets: dict[str, list[torch.Tensor]], reference: dict[str, torch.Tensor]
) -> dict[str, Any]:
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
