"""One module per command: each parses its options, calls one library function and prints.

:data:`COMMANDS` lists them in the order of ``squeezenet --help``; :mod:`squeezenet.cli`
registers them on the app.
"""

from __future__ import annotations

from collections.abc import Callable

from squeezenet.cli.commands.bench import bench_cmd
from squeezenet.cli.commands.compress import compress_cmd
from squeezenet.cli.commands.decompress import decompress_cmd
from squeezenet.cli.commands.dsd import dsd_cmd
from squeezenet.cli.commands.eval import eval_cmd
from squeezenet.cli.commands.export import export_cmd
from squeezenet.cli.commands.import_caffe_dc import import_caffe_dc_cmd
from squeezenet.cli.commands.inspect import inspect_cmd
from squeezenet.cli.commands.models import models_cmd
from squeezenet.cli.commands.pipeline import pipeline_cmd
from squeezenet.cli.commands.predict import predict_cmd
from squeezenet.cli.commands.report import report_cmd
from squeezenet.cli.commands.sensitivity import sensitivity_cmd
from squeezenet.cli.commands.serve_demo import serve_demo_cmd
from squeezenet.cli.commands.summary import summary_cmd
from squeezenet.cli.commands.sweep import sweep_cmd
from squeezenet.cli.commands.train import train_cmd

# (name, function), in the order of --help: compression, deployment, the paper's experiments,
# the models, the main job, training and evaluation.
COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("import-caffe-dc", import_caffe_dc_cmd),
    ("compress", compress_cmd),
    ("inspect", inspect_cmd),
    ("decompress", decompress_cmd),
    ("export", export_cmd),
    ("predict", predict_cmd),
    ("bench", bench_cmd),
    ("serve-demo", serve_demo_cmd),
    ("sensitivity", sensitivity_cmd),
    ("sweep", sweep_cmd),
    ("dsd", dsd_cmd),
    ("report", report_cmd),
    ("models", models_cmd),
    ("summary", summary_cmd),
    ("pipeline", pipeline_cmd),
    ("train", train_cmd),
    ("eval", eval_cmd),
)

# The commands that need PyTorch (the `torch` extra); the others run in the light install.
NEEDS_TORCH = frozenset(
    {"compress", "export", "sensitivity", "sweep", "dsd", "report", "models", "summary",
     "pipeline", "train"}
)  # fmt: skip

__all__ = ["COMMANDS", "NEEDS_TORCH"]
