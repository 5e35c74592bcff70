"""The light install against the full one, on one machine in one run: installed size, cold
``predict`` of one image (process start to printed answer), its peak memory, and the batch-1
latency of the runtime engines beside ONNX Runtime on the torch export.

Builds the wheel of this checkout and installs it in fresh virtual environments: ``light``
(no extras), ``light+onnx`` (the ``onnx`` extra) and ``full`` (the ``torch`` extra, what
``pip install -e '.[torch]'`` gives), unless ``--reuse`` finds them under ``--venvs``. Sizes are
``site-packages`` without pip and setuptools. Cold ``predict``: the median of 3 runs after one
unmeasured run, each a fresh process (``squeezenet predict squeezenet1_0-dc IMAGE``; the light
install's default engine is numpy, the full one's torch). Peak memory: the child's maximum
resident set (``os.wait4``). Latency: ``squeezenet bench --batch 1,32 --engines
onnxruntime,numpy,onnxruntime-graph`` in the full venv (one process, one run). With the shared
ImageNet sample: the shipped model's logits on its 500 images in the full venv's torch path and
the light venv's numpy engine (top-1 of each, images with the same top-1 class, the largest
difference relative to each image's logit range).

    python benchmarks/bench_light.py > benchmarks/results/light_install.json

Prints one JSON document; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "tests_light" / "golden" / "images" / "a" / "0.png"
MANIFEST = ROOT.parent / "shared" / "data" / "imagenet-sample" / "manifest.csv"
KINDS = {"light": "", "light+onnx": "[onnx]", "full": "[torch]"}
NOT_COUNTED = ("pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence.pth")


def main() -> None:
    args = _parse()
    venvs = Path(args.venvs)
    wheel = _build_wheel(venvs / "wheel")
    document: dict[str, Any] = {"command": " ".join(sys.argv), "machine": _machine()}
    document["wheel_bytes"] = wheel.stat().st_size
    for kind, extra in KINDS.items():
        python = _venv(venvs / kind.replace("+", "-"), wheel, extra, reuse=args.reuse)
        entry: dict[str, Any] = {"site_packages_mb": _size_mb(python)}
        entry["has_torch"] = _has(python, "torch")
        if kind != "light+onnx":
            entry["cold_predict"] = _cold_predict(python, args.runs)
        document[kind] = entry
        print(f"{kind}: {entry}", file=sys.stderr)
    document["latency"] = _latency(venvs / "full" / "bin" / "squeezenet")
    if MANIFEST.is_file():
        document["sample"] = _sample_logits(venvs)
    print(json.dumps(document, indent=2))


# The light venv's numpy engine and the full venv's torch path on the same 500 images.
LOGITS = """
import sys, numpy as np
from squeezenet.runtime.image_lists import labelled_images
samples, _ = labelled_images(sys.argv[1])
paths, labels = [p for p, _ in samples], np.array([l for _, l in samples])
if sys.argv[3] == "torch":
    import torch
    from squeezenet.data.transforms import eval_transform
    from squeezenet.runtime.images import load_image
    from squeezenet.workflows.load import load_pretrained
    loaded = load_pretrained("squeezenet1_0-dc")
    transform = eval_transform(loaded.preprocess)
    with torch.no_grad():
        logits = np.concatenate([
            loaded.model(torch.stack([transform(load_image(p)) for p in paths[i:i + 50]])).numpy()
            for i in range(0, len(paths), 50)])
else:
    from squeezenet.runtime import load
    model = load()
    logits = np.concatenate([model.logits(model.prepare(paths[i:i + 50]))
                             for i in range(0, len(paths), 50)])
np.savez(sys.argv[2], logits=logits, labels=labels)
"""


def _sample_logits(venvs: Path) -> dict[str, Any]:
    """Logits of the shipped model on the sample: torch path (full) against numpy (light)."""
    files = {}
    for kind, engine in (("full", "torch"), ("light", "numpy")):
        files[kind] = venvs / f"sample_{kind}.npz"
        python = venvs / kind / "bin" / "python"
        _run([str(python), "-c", LOGITS, str(MANIFEST), str(files[kind]), engine])
    torch_run, numpy_run = np.load(files["full"]), np.load(files["light"])
    a, b, labels = torch_run["logits"], numpy_run["logits"], torch_run["labels"]
    spread = a.max(axis=1) - a.min(axis=1)
    return {
        "images": len(labels),
        "top1_torch": float((a.argmax(1) == labels).mean()),
        "top1_numpy": float((b.argmax(1) == labels).mean()),
        "same_top1_class": int((a.argmax(1) == b.argmax(1)).sum()),
        "max_abs_diff_over_range": float((np.abs(a - b).max(axis=1) / spread).max()),
    }


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venvs", default="/tmp/bench-light", help="where the venvs are made")
    parser.add_argument("--reuse", action="store_true", help="reuse venvs made before")
    parser.add_argument("--runs", type=int, default=3, help="measured cold runs (median)")
    return parser.parse_args()


def _run(command: list[str], **kwargs: Any) -> str:
    result = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    return result.stdout


def _build_wheel(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)])
    return next(folder.glob("*.whl"))


def _venv(folder: Path, wheel: Path, extra: str, *, reuse: bool) -> Path:
    python = folder / "bin" / "python"
    if reuse and python.is_file():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    print(f"making {folder} ({wheel.name}{extra})", file=sys.stderr)
    _run([sys.executable, "-m", "venv", str(folder)])
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}{extra}"])
    return python


def _site_packages(python: Path) -> Path:
    return Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).strip()
    )


def _size_mb(python: Path) -> float:
    total = 0
    for entry in _site_packages(python).iterdir():
        if entry.name.startswith(NOT_COUNTED):
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files if not p.is_symlink())
    return round(total / 1e6, 1)


def _has(python: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", code]).returncode == 0


def _cold_predict(python: Path, runs: int) -> dict[str, Any]:
    """``squeezenet predict squeezenet1_0-dc IMAGE``: seconds and peak MiB of fresh processes."""
    command = [
        str(python.parent / "squeezenet"),
        "predict",
        "squeezenet1_0-dc",
        str(IMAGE),
        "--json",
    ]
    seconds, peaks, answer = [], [], None
    for i in range(runs + 1):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{command} failed")
        answer = json.loads(out)[0]["top"][0]
        if i:  # the first run is not measured (page cache, .pyc files)
            seconds.append(elapsed)
            peaks.append(usage.ru_maxrss / 1024)
    return {
        "seconds_median": round(statistics.median(seconds), 3),
        "seconds": [round(s, 3) for s in seconds],
        "peak_mib_median": round(statistics.median(peaks), 1),
        "top1": answer,
    }


def _latency(squeezenet: Path) -> dict[str, Any]:
    command = [
        str(squeezenet), "bench", "squeezenet1_0-dc", "--batch", "1,32", "--seconds", "3",
        "--engines", "onnxruntime,numpy,onnxruntime-graph", "--json",
    ]  # fmt: skip
    result: dict[str, Any] = json.loads(_run(command))
    return result


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": model, "cores": os.cpu_count(), "avx512": " avx512f" in flags}


if __name__ == "__main__":
    main()
