"""Experiments on top of the library: the train -> prune -> quantize -> .sqz pipeline, per-layer
sensitivity and plans, design-space sweeps, DSD and the RESULTS.md report."""

from squeezenet.experiments.pipeline import (
    DecodeMismatchError,
    PipelineEvent,
    PipelineResumeError,
    run_pipeline,
)
from squeezenet.experiments.pipeline_config import DEFAULT_POLICY, STAGES, PipelineConfig
from squeezenet.experiments.pipeline_report import PipelineReport, StageRow

__all__ = [
    "DEFAULT_POLICY",
    "STAGES",
    "DecodeMismatchError",
    "PipelineConfig",
    "PipelineEvent",
    "PipelineReport",
    "PipelineResumeError",
    "StageRow",
    "run_pipeline",
]
