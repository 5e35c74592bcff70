"""Inference speed of one model across engines and batch sizes, measured in one run, against
this machine's float32 matrix-multiply peak measured in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from squeezenet.deploy.engines import Engine, check_engines, from_runner, make_engine
from squeezenet.deploy.onnx_file import OnnxFile, checked_runner
from squeezenet.errors import ConfigError


@dataclass(frozen=True)
class BenchRow:
    """One engine at one batch size."""

    engine: str
    batch: int
    ms_per_image: float
    images_per_s: float
    gflops: float  # 2 x MACs x images/s / 1e9
    max_abs_diff: float  # against the baseline (eager NCHW; an .onnx file: its first runtime)
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


def _rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _time(run: Callable[[torch.Tensor], np.ndarray], x: torch.Tensor, min_seconds: float) -> float:
    for _ in range(3):
        run(x)  # warm-up (and compilation)
    calls, started = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds and calls >= 5:
            return elapsed / calls


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
        before = _rss_mb()
        built[name] = make_engine(
            name, model, input_shape, calibration=calibration, preprocess=preprocess
        )
        built[name](torch.rand(1, *input_shape))
        memory[name] = _rss_mb() - before
    return measure(
        built, memory, input_shape, macs, baseline="eager_nchw", report=engines,
        batches=batches, min_seconds=min_seconds, seed=seed, peak_gflops=peak_gflops,
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
        before = _rss_mb()
        built[name] = from_runner(checked_runner(file, name)[0])
        memory[name] = _rss_mb() - before
    return measure(
        built, memory, file.input_shape, macs, baseline=runtimes[0], report=runtimes,
        batches=batches, min_seconds=min_seconds, seed=seed, peak_gflops=peak_gflops,
    )  # fmt: skip


def measure(
    built: Mapping[str, Engine],
    memory: Mapping[str, float],
    input_shape: tuple[int, int, int],
    macs: int,
    *,
    baseline: str,
    report: Sequence[str],
    batches: tuple[int, ...],
    min_seconds: float,
    seed: int,
    peak_gflops: float | None,
) -> list[BenchRow]:
    """Time the ``built`` engines on the same random batches, ``baseline`` first; rows for
    the engines in ``report``, with speed and max |diff| against ``baseline``."""
    rows: list[BenchRow] = []
    generator = torch.Generator().manual_seed(seed)
    order = list(dict.fromkeys((baseline, *report)))
    for batch in batches:
        x = torch.rand(batch, *input_shape, generator=generator)
        reference = built[baseline](x)
        base_rate = 0.0
        for name in order:
            seconds = _time(built[name], x, min_seconds)
            rate = batch / seconds
            if name == baseline:
                base_rate = rate
            diff = float(np.abs(built[name](x) - reference).max())
            if name in report:
                gflops = 2 * macs * rate / 1e9
                fraction = gflops / peak_gflops if peak_gflops else float("nan")
                row = (name, batch, 1000 * seconds / batch, rate, gflops, diff, rate / base_rate)
                rows.append(BenchRow(*row, fraction, memory[name]))
    return rows
