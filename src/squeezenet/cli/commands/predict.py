"""`squeezenet predict`: classify image files with a model's own preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import exported_runtime, load_model_file, runtime_engine, user_paths
from squeezenet.cli.options import DEFAULT_ENGINE, Calib, Engine, Json
from squeezenet.errors import ConfigError

Arguments = Annotated[
    list[str],
    typer.Argument(
        help="[MODEL] IMAGE...: a model file (.sqz, .safetensors, .onnx) or a shipped model's "
        "name, then image files; without a model, the shipped squeezenet1_0-dc.",
        show_default=False,
    ),
]
Top = Annotated[int, typer.Option(min=1, help="Classes to show per image.")]
MODEL_ARGUMENT_SUFFIXES = (".sqz", ".safetensors", ".onnx")


def split_model(arguments: list[str]) -> tuple[str, list[str]]:
    """``[MODEL] IMAGE...`` -> (the model, the images): the first argument is the model when it
    is a shipped model's name or has a model file's suffix, else the shipped model is.

    Raises:
        ConfigError: no image, or a registry name (no trained weights) as the model.
    """
    from squeezenet.arch.registry import list_models
    from squeezenet.runtime.model_file import DEFAULT_MODEL, PRETRAINED

    first = arguments[0] if arguments else ""
    if first in list_models():
        raise ConfigError(
            f"predict needs a model file (.safetensors, .sqz or an exported .onnx) or a shipped "
            f"model ({', '.join(PRETRAINED)}), got {first!r}, which names a registry model "
            f"without trained weights (write ./{first} for a file of that name)"
        )
    if first in PRETRAINED or Path(first).suffix.lower() in MODEL_ARGUMENT_SUFFIXES:
        model, images = first, arguments[1:]
    else:
        model, images = DEFAULT_MODEL, arguments
    if not images:
        raise ConfigError(f"no images to classify: squeezenet predict [MODEL] IMAGE... ({model})")
    return model, images


def predict_cmd(
    arguments: Arguments,
    engine: Engine = DEFAULT_ENGINE,
    top: Top = 5,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Classify images with the model's own preprocessing; prints class names and probabilities."""
    model, images = split_model(arguments)
    with user_paths(reads=[model, *images, calib]):
        if runtime_engine(engine, model, calib):
            from squeezenet.runtime.classifier import Classifier

            results: list[Any] = Classifier.load(model, engine).predict(images, top=top)
        else:
            results = _predict_torch(model, images, engine, top, calib)
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for result in results:
        table = Table(title=result.image, show_header=True)
        table.add_column("class")
        table.add_column("index", justify="right")
        table.add_column("probability", justify="right")
        for index, name, p in zip(result.indices, result.names, result.probabilities, strict=True):
            table.add_row(name, str(index), f"{p:.4f}")
        out.print(table)


def _predict_torch(
    model: str, images: list[str], engine: str, top: int, calib: str | None
) -> list[Any]:
    from squeezenet.deploy.engines import check_engines
    from squeezenet.deploy.int8_calibration import calibration_batches, model_preprocess
    from squeezenet.deploy.predict import predict

    check_engines([engine], "--engine")
    exported = model.endswith(".onnx")
    runtime = exported_runtime(engine, calib) if exported else "onnxruntime"
    loaded = load_model_file(model, "predict", runtime)
    engine = "torch" if exported else engine  # the loaded module runs the file's runtime
    calibration = None
    if calib is not None:
        pre = model_preprocess(loaded.model_name, loaded.preprocess)
        calibration = calibration_batches(calib, pre)
    return predict(loaded, images, engine=engine, top=top, calibration=calibration)
