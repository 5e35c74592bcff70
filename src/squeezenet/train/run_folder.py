"""The run-folder layout, named once: the files a training run keeps in its folder.

A run folder is what ``squeezenet train -o RUN`` writes, and what a sweep trial
(``OUT/inflight/KEY``), a DSD phase and a pipeline stage train in. :func:`squeezenet.train.fit`
writes the config, checkpoint and metrics; :mod:`squeezenet.workflows.train_run` adds the spec
and the final weights. Everything that reads or writes one of these files takes its name from here.
"""

from __future__ import annotations

RUN_JSON = "run.json"  # the whole run spec (model, data, recipe): all that --resume needs
CONFIG_JSON = "config.json"  # train config, model config and preprocessing, as fit started
CHECKPOINT = "checkpoint.safetensors"  # model, optimiser and training state in one atomic file
STATE_JSON = "state.json"  # a human-readable copy of the checkpoint's state; resume reads the file
METRICS_JSONL = "metrics.jsonl"  # one JSON record per epoch: loss, top-1, top-5, images/s
METRICS_CSV = "metrics.csv"  # the same rows as CSV, for spreadsheets
WEIGHTS = "model.safetensors"  # the final weights with the metadata that rebuilds the model
# Runs that survive a kill (squeezenet.experiments.resumable): seconds of the attempts so far.
ELAPSED_JSON = "elapsed.json"

__all__ = [
    "CHECKPOINT",
    "CONFIG_JSON",
    "ELAPSED_JSON",
    "METRICS_CSV",
    "METRICS_JSONL",
    "RUN_JSON",
    "STATE_JSON",
    "WEIGHTS",
]
