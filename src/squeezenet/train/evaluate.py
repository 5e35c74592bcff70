"""Evaluation: loss, top-1 and top-5 of a model over a dataset, with the model's preprocessing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data.datasets import ArrayDataset, CorruptImageError, FileListDataset
from squeezenet.data.transforms import BatchPipeline, eval_transform
from squeezenet.runtime.metrics import EvalResult

__all__ = ["EvalResult", "eval_batches", "evaluate", "teacher_labelled"]


class _SkipBad(Dataset[Any]):
    """Wraps a file dataset: unreadable images become None instead of an error."""

    def __init__(self, data: FileListDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.data[index]
        except CorruptImageError:
            return None


def _collate_skipping(batch: list[Any]) -> tuple[torch.Tensor, torch.Tensor, int]:
    good = [item for item in batch if item is not None]
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), len(batch)
    x = torch.stack([item[0] for item in good])
    y = torch.tensor([item[1] for item in good])
    return x, y, len(batch) - len(good)


def eval_batches(
    data: Dataset[tuple[object, int]],
    preprocess: Preprocess,
    batch_size: int,
    *,
    workers: int = 0,
    device: str | torch.device = "cpu",
    skip_bad: bool = False,
    skipped: list[int] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, labels)`` batches: in-memory data is normalised batch-wise, file data
    goes through the per-image eval transform. With ``skip_bad``, unreadable files are left
    out and counted in ``skipped[0]``."""
    if isinstance(data, ArrayDataset):
        images, labels = data.tensors()
        pipeline = BatchPipeline(preprocess, train=False)
        for start in range(0, len(data), batch_size):
            x = images[start : start + batch_size].to(device)
            yield pipeline(x), labels[start : start + batch_size].to(device)
        return
    if isinstance(data, FileListDataset) and data.transform is None:
        data = FileListDataset(data.samples, data.classes, eval_transform(preprocess), data.mode)
    if skip_bad and isinstance(data, FileListDataset):
        loader = DataLoader(
            _SkipBad(data),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            collate_fn=_collate_skipping,
        )
        for x, y, bad in loader:
            if skipped is not None:
                skipped[0] += bad
            if len(y):
                yield x.to(device), y.to(device)
        return
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers)
    for x, y in loader:
        yield x.to(device), y.to(device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset[tuple[object, int]],
    preprocess: Preprocess,
    *,
    batch_size: int = 128,
    channels_last: bool = True,
    device: str | torch.device = "cpu",
    on_batch: Callable[[int], None] | None = None,
    skip_bad: bool = False,
) -> EvalResult:
    """Top-1/top-5 and mean cross-entropy of ``model`` on ``data``; the model is left in the
    train/eval mode it was in. ``on_batch(n_images)`` reports progress."""
    was_training = model.training
    model.eval()
    total_loss, correct1, correct5, seen = 0.0, 0, 0, 0
    skipped = [0]
    batches = eval_batches(
        data, preprocess, batch_size, device=device, skip_bad=skip_bad, skipped=skipped
    )
    try:
        for x, y in batches:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x)
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            correct1 += int((top[:, 0] == y).sum())
            correct5 += int((top == y[:, None]).any(dim=1).sum())
            seen += len(y)
            if on_batch:
                on_batch(len(y))
    finally:
        model.train(was_training)
    n = max(seen, 1)
    return EvalResult(total_loss / n, correct1 / n, correct5 / n, seen, skipped[0])


@torch.no_grad()
def teacher_labelled(
    model: nn.Module,
    data: ArrayDataset | FileListDataset,
    preprocess: Preprocess,
    class_names: list[str],
    *,
    batch_size: int = 50,
) -> ArrayDataset | FileListDataset:
    """``data`` with every image labelled by ``model``'s own top-1 class (names: the model's).

    Scored against these labels, a compressed copy's top-1 is its top-1 agreement with
    ``model`` and its loss a cross-entropy to it: what proxy images without the model's label
    space (CIFAR-10 for an ImageNet model) can measure (docs/RESULTS.md, "Which images chose,
    which measured").
    """
    model.eval()
    predicted = torch.cat(
        [model(x).argmax(1) for x, _ in eval_batches(data, preprocess, batch_size)]
    )
    labels = predicted.numpy().astype("int64")
    if isinstance(data, ArrayDataset):
        return ArrayDataset(data.images, labels, class_names, data.transform)
    samples = [(path, int(label)) for (path, _), label in zip(data.samples, labels, strict=True)]
    return FileListDataset(samples, class_names, data.transform, data.mode)
