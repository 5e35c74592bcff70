"""Training and evaluation: fit, evaluate, recipes, LR schedules, checkpoints, the run-folder
layout (:mod:`squeezenet.train.run_folder`), torchrun setup."""

from squeezenet.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from squeezenet.train.config import RECIPES, TrainConfig, recipe
from squeezenet.train.distributed import init_distributed
from squeezenet.train.evaluate import EvalResult, evaluate
from squeezenet.train.loop import FitEvent, FitResult, fit
from squeezenet.train.schedule import learning_rate

__all__ = [
    "RECIPES",
    "CheckpointError",
    "EvalResult",
    "FitEvent",
    "FitResult",
    "TrainConfig",
    "evaluate",
    "fit",
    "init_distributed",
    "learning_rate",
    "load_checkpoint",
    "recipe",
    "save_checkpoint",
]
