"""`squeezenet eval`: top-1 / top-5 of a model on a dataset, or its paired comparison with a
teacher (``--against``), in any inference engine."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from squeezenet.cli.app import emit_json, err, fail, out
from squeezenet.cli.arguments import exported_runtime, load_model_file, user_paths
from squeezenet.cli.options import DataDir, Engine, ModelFile, Quiet

Against = Annotated[
    str | None,
    typer.Option(
        help="A teacher model file: print the paired comparison (top-1 difference ± paired SE, "
        "agreement, KL) instead."
    ),
]


def eval_cmd(
    model: ModelFile,
    data: Annotated[str, typer.Option(help="CSV manifest, image folder, or a named dataset.")],
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="train | test (named datasets).")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch.")] = 64,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images.")] = False,
    against: Against = None,
    engine: Engine = "torch",
    calib: Annotated[
        str | None, typer.Option(help="Proxy images calibrating an int8 engine (not eval images).")
    ] = None,
    quiet: Quiet = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"top1", "top5", "n"}.')] = False,
) -> None:
    """Top-1 / top-5 of a model on a dataset, with the model's own preprocessing; with
    --against, the paired comparison with a teacher model on the same images; --engine runs
    the candidate in another inference engine."""
    from rich.progress import Progress

    from squeezenet.data.sources import load_dataset
    from squeezenet.train.evaluate import evaluate

    exported = model.endswith(".onnx")
    runtime = exported_runtime(engine, calib) if exported else "onnxruntime"
    with user_paths(reads=[model, data, against, calib]):
        loaded = load_model_file(model, "eval", runtime)
        if loaded.preprocess is None:
            fail(
                f"{model} has no preprocessing record; re-save it with save_weights(preprocess=...)"
            )
        preprocess = loaded.preprocess
        if not exported and (engine != "torch" or calib is not None):
            loaded = _with_engine(loaded, engine, calib, data, split)
        dataset = load_dataset(data, split, data_dir=data_dir)
        if against is not None:
            _compare(loaded, load_model_file(against, "eval"), dataset, batch_size, as_json, quiet)
            return
        with Progress(console=err, disable=quiet, transient=True) as progress:
            task = progress.add_task("eval", total=len(dataset))
            result = evaluate(
                loaded.model,
                dataset,
                preprocess,
                batch_size=batch_size,
                skip_bad=skip_bad,
                on_batch=lambda n: progress.advance(task, n),
            )
    if as_json:
        emit_json(result.to_dict())
        return
    skipped = f" ({result.skipped} unreadable images skipped)" if result.skipped else ""
    out.print(
        f"top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  on {result.n} images{skipped}",
        highlight=False,
    )


def _with_engine(loaded: Any, engine: str, calib: str | None, data: str, split: str) -> Any:
    """``loaded`` whose model runs in ``engine`` (the int8 ones calibrated on ``calib``; a
    warning when that is the evaluation data itself: ``data``'s ``split``)."""

    from squeezenet.deploy.engines import EngineModule, check_engines, make_engine
    from squeezenet.deploy.int8_calibration import engine_calibration

    check_engines([engine], "--engine")
    pre = loaded.preprocess
    batches, warnings = engine_calibration(engine, calib, pre, evaluated=(data, split))
    for warning in warnings:
        err.print(f"warning: {warning}")
    shape = (pre.channels, pre.crop, pre.crop)
    engine_run = make_engine(
        engine, loaded.model, shape, calibration=batches, preprocess=pre.to_dict()
    )
    module = EngineModule(engine_run)
    return dataclasses.replace(loaded, model=module)


def _compare(
    loaded: Any, teacher: Any, dataset: Any, batch_size: int, as_json: bool, quiet: bool
) -> None:
    """``eval --against``: both models on the same batches, the teacher's preprocessing."""
    from rich.progress import Progress

    from squeezenet.train.compare import compare

    if teacher.preprocess != loaded.preprocess:
        fail(
            f"{loaded.path} and {teacher.path} preprocess images differently, so they cannot be "
            "compared image for image; compare a compressed file with the model it came from"
        )
    with Progress(console=err, disable=quiet, transient=True) as progress:
        task = progress.add_task("compare", total=len(dataset))
        result = compare(
            loaded.model,
            teacher.model,
            dataset,
            teacher.preprocess,
            batch_size=batch_size,
            on_batch=lambda n: progress.advance(task, n),
        )
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(
        f"candidate top-1 {result.top1:.4f}  top-5 {result.top5:.4f}\n"
        f"teacher   top-1 {result.teacher_top1:.4f}  top-5 {result.teacher_top5:.4f}\n"
        f"top-1 difference {100 * result.top1_diff:+.1f} ± {100 * result.top1_diff_se:.1f} points "
        f"(paired SE; {result.only_candidate} images right only for the candidate, "
        f"{result.only_teacher} only for the teacher)\n"
        f"top-1 agreement {result.agreement:.4f}  mean KL(teacher || candidate) {result.kl:.4f}"
        f"  on {result.n} images",
        highlight=False,
    )
