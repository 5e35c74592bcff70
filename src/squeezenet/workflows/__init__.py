"""File-to-file workflows: compress a model file into a .sqz, a training run, building a model and
its data, loading any model file. Each combines the layers below it; experiments and the CLI sit
above.
"""

from squeezenet.workflows.build import BuildSpec, Built, build
from squeezenet.workflows.compress_file import CompressResult, compress_file, compress_model
from squeezenet.workflows.load import load_any, load_pretrained
from squeezenet.workflows.train_run import RunSpec, run_training

__all__ = [
    "BuildSpec",
    "Built",
    "CompressResult",
    "RunSpec",
    "build",
    "compress_file",
    "compress_model",
    "load_any",
    "load_pretrained",
    "run_training",
]
