"""Inference speed of one model across engines and batch sizes, measured in one run, against
this machine's float32 matrix-multiply peak measured in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.deploy.engines import Engine, check_engines, from_runner, make_engine
from squeezenet.deploy.onnx_file import OnnxFile, checked_runner
from squeezenet.runtime.bench import BenchRow, Timing, check_batches, measure, rss_mb

__all__ = ["BenchRow", "benchmark", "benchmark_file", "check_batches", "sgemm_peak"]


def sgemm_peak(size: int = 2048, min_seconds: float = 1.0) -> float:
    """This machine's float32 matrix-multiply rate in GFLOP/s: ``torch.mm`` of two
    ``size x size`` matrices on all of torch's threads, the best of repeated timings."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator)
    b = torch.rand(size, size, generator=generator)
    best = float("inf")
    for _ in range(2):
        torch.mm(a, b)  # warm-up
    started = time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def benchmark(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    macs: int,
    *,
    batches: tuple[int, ...] = (1, 32),
    engines: tuple[str, ...] = ("eager_nchw", "eager_channels_last", "onnxruntime"),
    min_seconds: float = 1.0,
    seed: int = 0,
    peak_gflops: float | None = None,
    calibration: list[np.ndarray] | None = None,
    preprocess: Mapping[str, Any] | None = None,
) -> list[BenchRow]:
    """Time each engine at each batch size; eager NCHW is the baseline of every ratio, and
    ``peak_gflops`` (e.g. :func:`sgemm_peak`, measured in the same run) that of each
    ``peak_fraction``.

    Args:
        calibration: preprocessed proxy batches for the int8 engines (None: noise, which
            times them correctly but does not make their outputs meaningful).
        preprocess: the model's preprocessing record, for the int8 engines' self-check.

    Raises:
        ConfigError: an unknown engine, or a batch size below 1 (before anything is built).
        ModelCheckError: an int8 engine whose kernels do not compute its model here.
    """
    check_engines(engines)
    check_batches(batches)
    built: dict[str, Engine] = {}
    memory: dict[str, float] = {}
    for name in dict.fromkeys(("eager_nchw", *engines)):
        before = rss_mb()
        built[name] = make_engine(
            name, model, input_shape, calibration=calibration, preprocess=preprocess
        )
        built[name](torch.rand(1, *input_shape))
        memory[name] = rss_mb() - before
    return measure(
        built, memory, _torch_inputs(input_shape, seed), macs, baseline="eager_nchw",
        report=engines, timing=Timing(batches, min_seconds, peak_gflops),
    )  # fmt: skip


def benchmark_file(
    file: OnnxFile,
    macs: int,
    *,
    runtimes: tuple[str, ...] = ("onnxruntime",),
    batches: tuple[int, ...] = (1, 32),
    min_seconds: float = 1.0,
    seed: int = 0,
    peak_gflops: float | None = None,
) -> list[BenchRow]:
    """Time an exported ONNX file in each runtime (each verified by the file's self-check
    first); the first runtime is the baseline of every ratio.

    Raises:
        ModelCheckError: a runtime that does not compute the file on this machine.
    """
    check_batches(batches)
    built: dict[str, Engine] = {}
    memory: dict[str, float] = {}
    for name in runtimes:
        before = rss_mb()
        built[name] = from_runner(checked_runner(file, name)[0])
        memory[name] = rss_mb() - before
    return measure(
        built, memory, _torch_inputs(file.input_shape, seed), macs, baseline=runtimes[0],
        report=runtimes, timing=Timing(batches, min_seconds, peak_gflops),
    )  # fmt: skip


def _torch_inputs(input_shape: tuple[int, int, int], seed: int) -> Callable[[int], torch.Tensor]:
    """Seeded uniform batches of ``input_shape``, as the engines take them."""
    generator = torch.Generator().manual_seed(seed)
    return lambda batch: torch.rand(batch, *input_shape, generator=generator)
