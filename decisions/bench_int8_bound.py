"""How close can post-training int8 get to float32 on the evaluation images? An oracle.

The int8 engine (per-channel int8 weights, per-tensor uint8 activations: what ONNX Runtime's and
OpenVINO's integer kernels take) is calibrated on proxy images. This benchmark calibrates the same
quantizer on the *evaluation images themselves* (every one of them), which no deployment can do,
and scores it on those same images: an oracle reference for what a choice of calibration
images can give this quantizer on them (not a strict bound: other range rules could differ).
Nothing here is shipped or chosen; the engine stays as chosen on proxies
(``bench_int8_calibration.py``). The first line is that engine (calibrated on CIFAR-10
training images) on the same images, for reference.

    python decisions/bench_int8_bound.py > benchmarks/results/int8_bound.jsonl

Prints one JSON line per variant: the paired comparison with float32 (top-1 difference ± paired
SE, agreement, KL). About 3 minutes here. (ONNX Runtime's percentile calibrator keeps every
activation value: on all 500 images it runs out of this machine's 24 GiB, so it is not a variant.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # proxy_sets.py
import proxy_sets

from squeezenet.data.sources import load_dataset
from squeezenet.deploy.int8 import Int8Config, int8_model_onnx
from squeezenet.deploy.int8_calibration import calibration_batches
from squeezenet.deploy.runtimes import onnx_session
from squeezenet.train.compare import compare_logits
from squeezenet.train.evaluate import eval_batches
from squeezenet.workflows.load import load_any

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/imagenet-sample/manifest.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SAMPLE), help="the evaluation images (a manifest)")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"skipped: {args.data} not found (the shared ImageNet sample)")
    loaded = load_any(proxy_sets.imported_weights(Path(tempfile.mkdtemp())))
    model, preprocess = loaded.model.eval(), loaded.preprocess
    assert preprocess is not None
    images, labels = [], []
    for x, y in eval_batches(load_dataset(args.data, "test"), preprocess, 32):
        images.append(x.contiguous().numpy().astype(np.float32))
        labels.append(y)
    label = torch.cat(labels)
    with torch.no_grad():
        reference = torch.cat([model(torch.from_numpy(x)) for x in images])
    proxies = calibration_batches("cifar10", preprocess)
    variants = [
        ("engine: GPTQ, minmax, 256 CIFAR-10 training images", proxies, Int8Config()),
        ("bound: GPTQ, minmax, the evaluation images", images, Int8Config()),
        (
            "bound: nearest, minmax, the evaluation images",
            images,
            Int8Config(rounding="nearest"),
        ),
    ]
    for name, calibration, config in variants:
        session = onnx_session(int8_model_onnx(model, calibration, config))
        logits = torch.cat([torch.from_numpy(session.run(None, {"input": x})[0]) for x in images])
        result = compare_logits(logits, reference, label).to_dict()
        print(json.dumps({"variant": name, **result}), flush=True)


if __name__ == "__main__":
    main()
