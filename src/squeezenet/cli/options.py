"""Options and arguments that several commands share, declared once (same flag, same help).

Every command that writes a file or folder names it ``-o/--output`` (:func:`output_option`);
``--out``, the old spelling, is rewritten by :mod:`squeezenet.cli.renamed` for one release.
"""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any

import typer

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
Seed = Annotated[int, typer.Option(help="Seed for everything random.")]
DATA_HELP = "fashion-mnist | cifar10 | synthetic | CSV | folder."  # what a dataset spec may be
DataSpec = Annotated[str, typer.Option(help=DATA_HELP)]
DataDir = Annotated[str | None, typer.Option(help="Folder holding the named dataset.")]
Download = Annotated[bool, typer.Option("--download", help="Download a missing named dataset.")]
Device = Annotated[
    str | None, typer.Option(help="cpu | cuda | cuda:N (default: cuda if there is one).")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Model config field KEY=VALUE (repeatable), e.g. squeeze_ratio=0.5."
    ),
]
# The inference engines by name (squeezenet.deploy.engines.ENGINES, which imports torch, so the
# names are repeated here for --help; a test keeps the two equal).
ENGINE_NAMES = (
    "torch | onnxruntime | onnxruntime-int8 | openvino | openvino-int8 | openvino-bf16 | "
    "eager_nchw | eager_channels_last | compile | numpy | onnxruntime-graph"
)
# torch where PyTorch is installed (the full install), else numpy (the light install): the
# runtime engines numpy and onnxruntime-graph need no torch.
HAS_TORCH = importlib.util.find_spec("torch") is not None
DEFAULT_ENGINE = "torch" if HAS_TORCH else "numpy"
Engine = Annotated[
    str,
    typer.Option(
        help=f"{ENGINE_NAMES} (the int8 engines need --calib; default: torch where PyTorch is "
        "installed, else numpy).",
        show_default=False,
    ),
]
# The built-in quantizers by name (squeezenet.compress.quantizers, which imports torch; a test
# keeps the two equal). A registered quantizer is chosen by its name as well.
QUANTIZER_NAMES = "kmeans | ecsq | trellis"
Bf16 = Annotated[
    bool | None,
    typer.Option(
        "--bf16/--no-bf16",
        help="bfloat16 autocast (default: the recipe's, where the device has bfloat16 units).",
        show_default=False,
    ),
]
BatchSize = Annotated[int | None, typer.Option(help="Images per SGD step (the global batch).")]
Calib = Annotated[
    str | None,
    typer.Option(
        help="Proxy images (training split) that calibrate the int8 engines' activation ranges; "
        "never the evaluation images."
    ),
]  # export --int8, predict and bench
# Options of the training experiments (sweep, dsd).
TrainImages = Annotated[int, typer.Option(help="Seeded training subset (0: all).")]
TestImages = Annotated[int, typer.Option(help="Seeded test subset (0: all).")]
Recipe = Annotated[str, typer.Option("--recipe", help="small | caffe | finetune.")]
WarmupEpochs = Annotated[
    float | None, typer.Option(help="Linear warm-up epochs (default: the recipe's).")
]
ModelFile = Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")]
ModelOrName = Annotated[str, typer.Argument(help="Weights file, .sqz, or a registry name.")]
SqzFile = Annotated[str, typer.Argument(help="A .sqz file, or a shipped model's name.")]


def output_option(what: str) -> Any:
    """The ``-o/--output`` option of a command that writes ``what`` (its help text)."""
    return typer.Option("--output", "-o", help=what)
