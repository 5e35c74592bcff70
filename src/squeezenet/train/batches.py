"""The batch source of :func:`~squeezenet.train.loop.fit`: the local micro-batches of each global
step, the same on a resume and on any rank, because every random choice (data order,
augmentation) derives from ``(seed, step)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from squeezenet.arch.preprocess import Preprocess
from squeezenet.data.datasets import ArrayDataset, FileListDataset
from squeezenet.data.transforms import BatchPipeline, train_transform
from squeezenet.train.config import TrainConfig


def derive_seed(seed: int, *parts: int) -> int:
    """A seed for one random choice of the run, from the run's seed and where it is."""
    value = seed
    for part in parts:
        value = (value * 1_000_003 + part) % (2**63 - 1)
    return value


class BatchSource:
    """Yields the local micro-batches of one global step, identically on resume and any rank."""

    def __init__(
        self, data: Dataset[Any], preprocess: Preprocess, config: TrainConfig, device: torch.device
    ) -> None:
        self.data, self.config, self.device = data, config, device
        self.n = len(data)  # type: ignore[arg-type]
        self.in_memory = isinstance(data, ArrayDataset)
        if self.in_memory:
            assert isinstance(data, ArrayDataset)
            self.images, self.labels = data.tensors()
            self.pipeline = BatchPipeline(preprocess, train=True, augment=config.augment)
        elif isinstance(data, FileListDataset) and data.transform is None:
            self.data = FileListDataset(
                data.samples, data.classes, train_transform(preprocess), data.mode
            )

    def steps_per_epoch(self) -> int:
        return self.n // self.config.batch_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, 1, epoch))
        return torch.randperm(self.n, generator=generator)

    def global_indices(self, order: torch.Tensor, step_in_epoch: int) -> torch.Tensor:
        b = self.config.batch_size
        return order[step_in_epoch * b : (step_in_epoch + 1) * b]

    def micro_batches(
        self, indices: torch.Tensor, global_step: int, rank: int, world: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        local = indices.chunk(world)[rank]
        if self.in_memory:
            generator = torch.Generator().manual_seed(derive_seed(self.config.seed, 2, global_step))
            x = self.pipeline(self.images[indices], generator).chunk(world)[rank]  # (B/W, C, H, W)
            y = self.labels[local]
        else:
            loader = DataLoader(
                self.data,
                batch_size=len(local),
                sampler=local.tolist(),
                num_workers=self.config.workers,
            )
            x, y = next(iter(loader))
        for xm, ym in zip(
            x.chunk(self.config.accumulate), y.chunk(self.config.accumulate), strict=True
        ):
            xm = xm.to(self.device)
            if self.config.channels_last:
                xm = xm.contiguous(memory_format=torch.channels_last)
            yield xm, ym.to(self.device)
