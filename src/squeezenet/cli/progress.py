"""The progress UIs every long command shares: the rich bar on stderr and fit's bar.

Progress goes to stderr (:data:`squeezenet.cli.app.err`), so that stdout holds only results.
"""

from __future__ import annotations

import time
from typing import Any

from squeezenet.cli.app import err


def progress_bar(quiet: bool = False) -> Any:
    """The rich progress bar every command uses (stderr; ``info`` field for live numbers)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )


class FitProgress:
    """A rich progress bar on stderr fed by fit's callback (rank 0 only).

    Args:
        quiet: show nothing.
        description: the bar's label.
        epoch_lines: print a line with the loss and accuracy after every epoch.
        progress: draw into this (started) :func:`progress_bar` instead of an own one.
    """

    def __init__(
        self,
        quiet: bool = False,
        *,
        description: str = "train",
        epoch_lines: bool = True,
        progress: Any = None,
    ) -> None:
        self.owned = progress is None  # a shared Progress (e.g. a sweep's) is started by its owner
        self.progress = progress if progress is not None else progress_bar(quiet)
        self.description = description
        self.epoch_lines = epoch_lines
        self.task: Any = None
        self.images = 0.0
        self.started = 0.0

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            if self.owned:
                self.progress.start()
            self.started = time.perf_counter()
            self.task = self.progress.add_task(
                self.description, total=event.total_steps, completed=event.step, info=""
            )
        elif event.kind == "step":
            self.images += event.batch_size
            rate = self.images / max(time.perf_counter() - self.started, 1e-9)
            info = (
                f"epoch {event.epoch + 1} loss {event.loss:.4f} lr {event.lr:.4g} {rate:,.0f} img/s"
            )
            self.progress.update(self.task, completed=event.step, info=info)
        elif event.kind == "epoch" and self.epoch_lines:
            m = event.metrics
            acc = f" top1 {m['top1']:.4f} top5 {m['top5']:.4f}" if "top1" in m else ""
            self.progress.console.print(
                f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}{acc} "
                f"({m['images_per_s']:,.0f} img/s)",
                highlight=False,
            )
        elif event.kind == "warning":
            self.progress.console.print(f"[yellow]warning:[/] {event.message}")
        elif event.kind == "end":
            if self.owned:
                self.progress.stop()
            else:
                self.progress.remove_task(self.task)
