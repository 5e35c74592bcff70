"""Inference speed of one model across engines and batch sizes, measured in one run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from squeezenet.deploy.engines import check_engines, make_engine
from squeezenet.errors import ConfigError


@dataclass(frozen=True)
class BenchRow:
    """One engine at one batch size."""

    engine: str
    batch: int
    ms_per_image: float
    images_per_s: float
    gflops: float  # 2 x MACs x images/s / 1e9
    max_abs_diff: float  # against eager NCHW on the same batch
    speedup: float  # images/s over eager NCHW at this batch size

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
) -> list[BenchRow]:
    """Time each engine at each batch size; eager NCHW is the baseline of every ratio.

    Raises:
        ConfigError: an unknown engine, or a batch size below 1 (before anything is built).
    """
    check_engines(engines)
    check_batches(batches)
    built = {
        name: make_engine(name, model, input_shape)
        for name in dict.fromkeys(("eager_nchw", *engines))
    }
    rows: list[BenchRow] = []
    generator = torch.Generator().manual_seed(seed)
    for batch in batches:
        x = torch.rand(batch, *input_shape, generator=generator)
        reference = built["eager_nchw"](x)
        base_rate = 0.0
        for name in dict.fromkeys(("eager_nchw", *engines)):
            seconds = _time(built[name], x, min_seconds)
            rate = batch / seconds
            if name == "eager_nchw":
                base_rate = rate
            diff = float(np.abs(built[name](x) - reference).max())
            if name in engines:
                rows.append(
                    BenchRow(
                        name,
                        batch,
                        1000 * seconds / batch,
                        rate,
                        2 * macs * rate / 1e9,
                        diff,
                        rate / base_rate,
                    )
                )
    return rows
