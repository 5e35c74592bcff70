"""Which int8 format is right on every x86 CPU: variants scored on held-out proxies, per CPU.

ONNX Runtime's x86 kernels multiply uint8 activations by int8 weights with ``vpdpbusd`` where
the CPU has VNNI (exact int32 sums) and with ``vpmaddubsw`` where it has only AVX2 or AVX-512
without VNNI, which adds pairs of products in 16 bits *with saturation*: a file that is right on
a VNNI machine can be wrong on an ordinary AVX2 one. Each variant below is one integer format
(``squeezenet.deploy.int8.Int8Config.format``) and one weight rounding, built once from the
imported published SqueezeNet, calibrated on 256 CIFAR-10 *training* images; the files' bytes do
not depend on the CPU. They are then scored, by top-1 agreement with and mean KL(float32 ||
int8) to the float32 model, on the held-out proxy families of ``proxy_sets.py`` (CIFAR-10
*test* images, mosaics of them, crops of the shipped photographs), on each CPU kind. The
ImageNet evaluation images are never read.

Two stages, so the scoring needs only numpy and onnxruntime and can run on another CPU, or on
an emulated one (``qemu-x86_64 -cpu EPYC-Milan``: an AVX2 + FMA Zen 3 without AVX-512 or VNNI,
whose integer instructions QEMU executes exactly, saturation included):

    python benchmarks/bench_int8_portable.py build /tmp/portable --images 200
    python benchmarks/bench_int8_portable.py score /tmp/portable \\
        >> benchmarks/results/int8_portable.jsonl
    QEMU_CPU=EPYC-Milan qemu-x86_64 .venv/bin/python benchmarks/bench_int8_portable.py score \\
        /tmp/portable >> benchmarks/results/int8_portable.jsonl

``score`` prints one JSON line per variant, with the CPU's name and its AVX2 / AVX-512 / VNNI
flags as numpy sees them (and ``QEMU_CPU``, the emulated model, where set). ``--only WORD``
scores the variants whose name holds WORD.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS: dict[str, dict[str, str]] = {
    "u8s8 gptq (the old default)": {"format": "u8s8", "rounding": "gptq"},
    "u8s8 nearest": {"format": "u8s8", "rounding": "nearest"},
    "u8s7 nearest": {"format": "u8s7", "rounding": "nearest"},
    "u8s7 gptq": {"format": "u8s7", "rounding": "gptq"},
    "u8u8 nearest": {"format": "u8u8", "rounding": "nearest"},
    "u8u8 gptq": {"format": "u8u8", "rounding": "gptq"},
    "s8s8 gptq": {"format": "s8s8", "rounding": "gptq"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("build", "score", "speed"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--images", type=int, default=200, help="per proxy family (build)")
    parser.add_argument("--only", default="", help="score the variants whose name holds this")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (score)")
    args = parser.parse_args()
    if args.stage == "build":
        build(args.folder, args.images)
    elif args.stage == "speed":
        speed(args.folder, args.only)
    else:
        score(args.folder, args.only, args.threads)


def build(folder: Path, images: int) -> None:
    """Every variant's int8 ONNX, the proxy inputs and the float32 references, into ``folder``."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import proxy_sets

    from squeezenet.deploy.int8 import Int8Config, int8_model_onnx
    from squeezenet.deploy.int8_calibration import calibration_batches
    from squeezenet.workflows.load import load_any

    folder.mkdir(parents=True, exist_ok=True)
    teacher = load_any(proxy_sets.imported_weights(Path(tempfile.mkdtemp())))
    assert teacher.preprocess is not None
    for name, batches in proxy_sets.held_out(teacher.preprocess).items():
        x = torch.cat(batches)[:images].contiguous().numpy().astype(np.float32)
        with torch.no_grad():
            reference = teacher.model.eval()(torch.from_numpy(x)).numpy()
        np.save(folder / f"{name}.x.npy", x)
        np.save(folder / f"{name}.ref.npy", reference)
    from squeezenet.deploy.export import onnx_bytes

    (folder / "float32.onnx").write_bytes(onnx_bytes(teacher.model, torch.zeros(1, 3, 227, 227)))
    calibration = calibration_batches("cifar10", teacher.preprocess)
    for variant, options in VARIANTS.items():
        data = int8_model_onnx(teacher.model, calibration, Int8Config(**options))  # type: ignore[arg-type]
        (folder / f"{_slug(variant)}.onnx").write_bytes(data)
    print(json.dumps({"built": str(folder), "variants": list(VARIANTS), "images": images}))


def score(folder: Path, only: str, threads: int) -> None:
    import onnxruntime as ort

    sets = sorted(p.name[: -len(".x.npy")] for p in folder.glob("*.x.npy"))
    cpu = _cpu()
    for variant in VARIANTS:
        if only not in variant:
            continue
        data = (folder / f"{_slug(variant)}.onnx").read_bytes()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        proxy: dict[str, list[float]] = {}
        for name in sets:
            x, reference = np.load(folder / f"{name}.x.npy"), np.load(folder / f"{name}.ref.npy")
            got = np.concatenate(
                [session.run(None, {"input": x[i : i + 25]})[0] for i in range(0, len(x), 25)]
            )
            agreement = float((got.argmax(1) == reference.argmax(1)).mean())
            proxy[name] = [round(agreement, 4), round(_kl(reference, got), 5), len(x)]
        row: dict[str, Any] = {
            "variant": variant,
            **VARIANTS[variant],
            "sha256": hashlib.sha256(data).hexdigest()[:12],
            "bytes": len(data),
            "proxy": proxy,
            "mean_kl": round(statistics.mean(v[1] for v in proxy.values()), 5),
            "cpu": cpu,
            "onnxruntime": ort.__version__,
        }
        print(json.dumps(row), flush=True)


def speed(folder: Path, only: str, seconds: float = 3.0) -> None:
    """ms per image of every variant (and the float32 ONNX) in ONNX Runtime and OpenVINO, batch 1
    and 32, all in this one run: ratios to ONNX Runtime float32 are this machine's."""
    import time

    from squeezenet.deploy.runtimes import onnxruntime_runner, openvino_runner

    x = np.load(sorted(folder.glob("*.x.npy"))[0])[:32]
    names = ["float32", *(v for v in VARIANTS if only in v)]
    rows = []
    for name in names:
        data = (folder / f"{'float32' if name == 'float32' else _slug(name)}.onnx").read_bytes()
        for runtime, make in (("onnxruntime", onnxruntime_runner), ("openvino", openvino_runner)):
            run = make(data)
            for batch in (1, 32):
                for _ in range(3):
                    run(x[:batch])
                calls, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds or calls < 5:
                    run(x[:batch])
                    calls += 1
                ms = 1000 * (time.perf_counter() - started) / calls / batch
                rows.append({"variant": name, "runtime": runtime, "batch": batch, "ms": ms})
    base = {r["batch"]: r["ms"] for r in rows if r["variant"] == "float32"
            and r["runtime"] == "onnxruntime"}  # fmt: skip
    for row in rows:
        row["vs_onnxruntime_float32"] = round(base[row["batch"]] / row["ms"], 3)
        row["ms"] = round(row["ms"], 3)
        print(json.dumps({**row, "cpu": _cpu()}), flush=True)


def _kl(reference: np.ndarray, got: np.ndarray) -> float:
    """Mean KL(softmax(reference) || softmax(got)) over the rows, in nats."""
    p, q = _log_softmax(reference.astype(np.float64)), _log_softmax(got.astype(np.float64))
    return float((np.exp(p) * (p - q)).sum(1).mean())


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))  # type: ignore[no-any-return]


def _cpu() -> dict[str, Any]:
    """The CPU's model name and the int8-relevant features numpy detects at run time."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    keys = ("AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512VNNI", "AVXVNNI")
    flags = {k.lower(): bool(features.get(k)) for k in keys}
    return {"model": name, "emulated": os.environ.get("QEMU_CPU"), **flags}


def _slug(variant: str) -> str:
    return variant.split(" (")[0].replace(" ", "-")


if __name__ == "__main__":
    main()
