"""Inference speed of engines across batch sizes, measured in one run against a baseline and
against this machine's float32 matrix-multiply peak measured in the same run.

The timing itself (:func:`measure`) takes any engines; ``squeezenet.deploy.bench`` hands it the
torch engines, :func:`benchmark_runtime` the runtime's (numpy, ONNX Runtime on the built graph).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from squeezenet.arch.layers import Conv, Fire, GlobalAvgPool, Layer, MaxPool, layer_list
from squeezenet.errors import ConfigError
from squeezenet.runtime.classifier import make_network
from squeezenet.runtime.model_file import ModelFile


@dataclass(frozen=True)
class BenchRow:
    """One engine at one batch size."""

    engine: str
    batch: int
    ms_per_image: float
    images_per_s: float
    gflops: float  # 2 x MACs x images/s / 1e9
    max_abs_diff: float  # against the baseline engine
    speedup: float  # images/s over the baseline at this batch size
    peak_fraction: float = float("nan")  # gflops / the sgemm peak measured in the same run
    memory_mb: float = float("nan")  # resident memory the engine added (built and run), MiB

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def check_batches(batches: tuple[int, ...], option: str = "batches") -> tuple[int, ...]:
    """``batches``, checked: at least one size, every one >= 1.

    Args:
        option: what the sizes were given as, for the message (e.g. ``"--batch"``).
    Raises:
        ConfigError: no sizes, or one below 1.
    """
    if not batches or min(batches) < 1:
        raise ConfigError(f"{option}: expected batch sizes >= 1, got {list(batches)}")
    return batches


def numpy_sgemm_peak(size: int = 2048, min_seconds: float = 1.0) -> float:
    """This machine's float32 matrix-multiply rate in GFLOP/s through numpy's BLAS (all its
    threads): two ``size x size`` matrices, the best of repeated timings."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    best = float("inf")
    for _ in range(2):
        a @ b  # warm-up
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def seconds_per_call(run: Callable[[Any], np.ndarray], x: Any, min_seconds: float) -> float:
    """Mean seconds of ``run(x)`` over at least ``min_seconds`` and 5 calls, after 3 warm-ups."""
    for _ in range(3):
        run(x)  # warm-up (and compilation)
    calls, started = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds and calls >= 5:
            return elapsed / calls


@dataclass(frozen=True)
class Timing:
    """How :func:`measure` times: batch sizes, seconds per measurement, the sgemm peak."""

    batches: tuple[int, ...]
    min_seconds: float
    peak_gflops: float | None


def measure(
    built: Mapping[str, Callable[[Any], np.ndarray]],
    memory: Mapping[str, float],
    make_input: Callable[[int], Any],
    macs: int,
    *,
    baseline: str,
    report: Sequence[str],
    timing: Timing,
) -> list[BenchRow]:
    """Time the ``built`` engines on the same batches (``make_input(batch)``), ``baseline``
    first; rows for the engines in ``report``, with speed and max |diff| against ``baseline``."""
    rows: list[BenchRow] = []
    order = list(dict.fromkeys((baseline, *report)))
    for batch in timing.batches:
        x = make_input(batch)
        reference = built[baseline](x)
        base_rate = 0.0
        for name in order:
            seconds = seconds_per_call(built[name], x, timing.min_seconds)
            rate = batch / seconds
            if name == baseline:
                base_rate = rate
            diff = float(np.abs(built[name](x) - reference).max())
            if name in report:
                gflops = 2 * macs * rate / 1e9
                peak = timing.peak_gflops
                fraction = gflops / peak if peak else float("nan")
                row = (name, batch, 1000 * seconds / batch, rate, gflops, diff, rate / base_rate)
                rows.append(BenchRow(*row, fraction, memory[name]))
    return rows


def layer_macs(layers: Sequence[Layer], input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one image through ``layers`` (convolutions only)."""
    _, h, w = input_shape
    total = 0

    def conv(c: Conv, h: int, w: int) -> tuple[int, int, int]:
        oh = (h + 2 * c.padding - c.kernel) // c.stride + 1
        ow = (w + 2 * c.padding - c.kernel) // c.stride + 1
        return c.out_channels * c.in_channels * c.kernel**2 * oh * ow, oh, ow

    for layer in layers:
        if isinstance(layer, Conv):
            macs, h, w = conv(layer, h, w)
            total += macs
        elif isinstance(layer, Fire):
            parts = [layer.squeeze, layer.expand1x1, layer.expand3x3]
            if layer.shortcut is not None:
                total += conv(layer.shortcut, h, w)[0]
            for part in parts:
                total += conv(part, h, w)[0]
        elif isinstance(layer, MaxPool):
            h = -((h - layer.kernel) // -layer.stride) + 1
            w = -((w - layer.kernel) // -layer.stride) + 1
        elif isinstance(layer, GlobalAvgPool):
            h = w = 1
    return total


def benchmark_runtime(
    model: ModelFile,
    engines: Sequence[str],
    timing: Timing,
    *,
    seed: int = 0,
) -> list[BenchRow]:
    """Time the runtime ``engines`` on ``model`` (the first is the baseline of every ratio).

    Raises:
        ConfigError / MissingDependencyError: an unknown engine or one whose extra is missing.
    """
    check_batches(timing.batches)
    built: dict[str, Callable[[Any], np.ndarray]] = {}
    memory: dict[str, float] = {}
    shape = input_shape(model)
    for name in engines:
        before = rss_mb()
        built[name] = make_network(model, name)
        built[name](np.zeros((1, *shape), np.float32))
        memory[name] = rss_mb() - before
    rng = np.random.default_rng(seed)
    macs = layer_macs(layer_list(model.model_config()), shape)
    return measure(
        built, memory, lambda batch: rng.random((batch, *shape), dtype=np.float32), macs,
        baseline=engines[0], report=engines, timing=timing,
    )  # fmt: skip


def input_shape(model: ModelFile) -> tuple[int, int, int]:
    """``(C, H, W)`` of one prepared image of ``model`` (its preprocessing's crop)."""
    config = model.model_config()
    channels = int(getattr(config, "in_channels", 3))
    crop = model.preprocess.crop if model.preprocess else 224
    return channels, crop, crop


def bench_document(model: ModelFile, *, baseline: str, peak: float) -> dict[str, Any]:
    """What a runtime ``bench`` run reports beside its rows: the model, its input and MACs, the
    baseline, numpy's BLAS threads and the sgemm peak measured in the run."""
    shape = input_shape(model)
    return {
        "model": model.model_name,
        "input_shape": list(shape),
        "macs": layer_macs(layer_list(model.model_config()), shape),
        "baseline": baseline,
        "threads": blas_threads(),
        "sgemm_peak_gflops": peak,
        "peak_measured_by": "numpy matmul 2048x2048",
    }


def blas_threads() -> int:
    """The threads numpy's BLAS uses (OPENBLAS/OMP_NUM_THREADS, else this process's CPUs)."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
