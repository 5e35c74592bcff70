"""Trainings that survive a kill: a run folder that :func:`fit` checkpoints, resumed where the
last checkpoint left it on the next attempt, with the seconds of earlier attempts carried over.

A sweep trial or a DSD phase is tens of minutes to hours on a CPU. Without this, a killed run
(a session's end, Ctrl-C, a lost node) starts again from step 0. With it, a rerun of the same
command loses at most the steps since the last checkpoint (an epoch's end, or every
``checkpoint_every`` steps) and, since :func:`fit` resumes exactly, ends with the same weights
as an uninterrupted run (on the same thread count; bf16 kernels can round differently on
another).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from squeezenet.atomic import atomic_write_json
from squeezenet.train.loop import FitEvent
from squeezenet.train.run_folder import CHECKPOINT, ELAPSED_JSON, STATE_JSON


@dataclass
class Attempt:
    """One attempt at a resumable training in ``run_dir``."""

    run_dir: Path
    resumed_step: int | None  # optimiser steps done at the checkpoint found (None: none there)
    carried: float  # seconds of the earlier attempts, up to their last checkpoint
    started: float  # time.perf_counter() at the start of this attempt

    @property
    def resume(self) -> bool:
        """A checkpoint is there: pass ``resume=True`` to :func:`fit`."""
        return self.resumed_step is not None

    @property
    def seconds(self) -> float:
        """Seconds of all attempts so far (the steps redone after a kill counted once)."""
        return self.carried + time.perf_counter() - self.started

    def watch(
        self, callback: Callable[[FitEvent], None] | None, checkpoint_every: int
    ) -> Callable[[FitEvent], None]:
        """``callback`` (may be None) that also records the seconds whenever :func:`fit` writes
        a checkpoint, so that the next attempt carries them."""

        def on_event(event: FitEvent) -> None:
            at_step = (
                event.kind == "step" and checkpoint_every and event.step % checkpoint_every == 0
            )
            if event.kind == "epoch" or at_step:
                atomic_write_json(self.run_dir / ELAPSED_JSON, {"seconds": round(self.seconds, 2)})
            if callback is not None:
                callback(event)

        return on_event


def begin(run_dir: str | Path) -> Attempt:
    """Start (or continue) the training in ``run_dir``: resume when a checkpoint is there."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    carried, step = 0.0, None
    if (folder / CHECKPOINT).is_file():
        carried = float(_read(folder / ELAPSED_JSON).get("seconds", 0.0))
        step = int(_read(folder / STATE_JSON).get("global_step", 0))
    return Attempt(folder, step, carried, time.perf_counter())


def discard(run_dir: str | Path) -> None:
    """Remove a finished training's run folder (its checkpoint is no longer needed)."""
    shutil.rmtree(run_dir, ignore_errors=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return document if isinstance(document, dict) else {}
