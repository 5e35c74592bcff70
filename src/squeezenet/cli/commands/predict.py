"""`squeezenet predict`: classify image files with a model's own preprocessing."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import exported_runtime, load_model_file, user_paths
from squeezenet.cli.options import Calib, Engine, Json, ModelFile

Images = Annotated[list[str], typer.Argument(help="Image files.")]
Top = Annotated[int, typer.Option(min=1, help="Classes to show per image.")]


def predict_cmd(
    model: ModelFile,
    images: Images,
    engine: Engine = "torch",
    top: Top = 5,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Classify images with the model's own preprocessing; prints class names and probabilities."""
    from squeezenet.deploy.engines import check_engines
    from squeezenet.deploy.int8_calibration import calibration_batches, model_preprocess
    from squeezenet.deploy.predict import predict

    check_engines([engine], "--engine")
    exported = model.endswith(".onnx")
    runtime = exported_runtime(engine, calib) if exported else "onnxruntime"
    with user_paths(reads=[model, *images, calib]):
        loaded = load_model_file(model, "predict", runtime)
        engine = "torch" if exported else engine  # the loaded module runs the file's runtime
        calibration = None
        if calib is not None:
            pre = model_preprocess(loaded.model_name, loaded.preprocess)
            calibration = calibration_batches(calib, pre)
        results = predict(loaded, images, engine=engine, top=top, calibration=calibration)
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
