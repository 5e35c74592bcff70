"""Experiments on top of the library: the train -> prune -> quantize -> .sqz pipeline, per-layer
sensitivity and plans, design-space sweeps, DSD and the RESULTS.md report.

Members are imported on first use (the pipeline's API is re-exported here).
"""

from typing import TYPE_CHECKING

from squeezenet._lazy import lazy_exports

if TYPE_CHECKING:
    from squeezenet.experiments.pipeline import (
        DecodeMismatchError,
        PipelineEvent,
        PipelineResumeError,
        run_pipeline,
    )
    from squeezenet.experiments.pipeline_config import DEFAULT_POLICY, STAGES, PipelineConfig
    from squeezenet.experiments.pipeline_report import PipelineReport, StageRow

_MEMBERS = {
    "DecodeMismatchError": "pipeline",
    "PipelineEvent": "pipeline",
    "PipelineResumeError": "pipeline",
    "run_pipeline": "pipeline",
    "DEFAULT_POLICY": "pipeline_config",
    "STAGES": "pipeline_config",
    "PipelineConfig": "pipeline_config",
    "PipelineReport": "pipeline_report",
    "StageRow": "pipeline_report",
}
__getattr__, __dir__ = lazy_exports(__name__, _MEMBERS)
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
