"""Top-1 / top-5 of a runtime network over labelled image files, and the paired comparison of
two networks on the same images, without torch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from squeezenet.arch.preprocess import Preprocess
from squeezenet.runtime.images import CorruptImageError, normalize, pixels_of
from squeezenet.runtime.metrics import AccuracyTally, Comparison, EvalResult, PairTally

Network = Callable[[np.ndarray], np.ndarray]
Samples = Sequence[tuple[Path, int]]


def batches(
    samples: Samples,
    preprocess: Preprocess,
    batch_size: int,
    *,
    skip_bad: bool = False,
    skipped: list[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(inputs, labels)``: float32 model inputs and int64 labels. With ``skip_bad``
    unreadable images are left out and counted in ``skipped[0]``."""
    for start in range(0, len(samples), batch_size):
        pixels, labels = [], []
        for path, label in samples[start : start + batch_size]:
            try:
                pixels.append(pixels_of(path, preprocess))
            except CorruptImageError:
                if not skip_bad:
                    raise
                if skipped is not None:
                    skipped[0] += 1
                continue
            labels.append(label)
        if pixels:
            yield normalize(np.stack(pixels), preprocess), np.asarray(labels, dtype=np.int64)


def evaluate(
    network: Network,
    samples: Samples,
    preprocess: Preprocess,
    *,
    batch_size: int = 64,
    skip_bad: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Top-1 / top-5 and mean cross-entropy of ``network`` on the labelled ``samples``."""
    tally, skipped = AccuracyTally(), [0]
    for x, y in batches(samples, preprocess, batch_size, skip_bad=skip_bad, skipped=skipped):
        tally.add(network(x), y)
        if on_batch is not None:
            on_batch(len(y))
    return tally.result(skipped[0])


def compare(
    candidate: Network,
    teacher: Network,
    samples: Samples,
    preprocess: Preprocess,
    *,
    batch_size: int = 64,
    skip_bad: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> Comparison:
    """Both networks on the same batches (``preprocess``: the teacher's), compared."""
    tally = PairTally()
    for x, y in batches(samples, preprocess, batch_size, skip_bad=skip_bad):
        tally.add(candidate(x), teacher(x), y)
        if on_batch is not None:
            on_batch(len(y))
    return tally.result()
