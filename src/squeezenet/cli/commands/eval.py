"""`squeezenet eval`: top-1 / top-5 of a model on a dataset, or its paired comparison with a
teacher (``--against``), in any inference engine."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from squeezenet.cli.app import emit_json, err, fail, out
from squeezenet.cli.arguments import (
    exported_runtime,
    load_model_file,
    runtime_engine,
    user_paths,
)
from squeezenet.cli.options import DEFAULT_ENGINE, DataDir, Engine, ModelFile, Quiet

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
    engine: Engine = DEFAULT_ENGINE,
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

    if runtime_engine(engine, model, calib):
        ask = _RuntimeEval(model, data, batch_size, skip_bad, against, engine, quiet)
        with user_paths(reads=[model, data, against]):
            result = _eval_runtime(ask)
        (_print_result if against is None else _print_comparison)(result, as_json)
        return

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
            teacher = load_model_file(against, "eval")
            _check_same_preprocess(loaded, teacher)
            result = _compare(loaded, teacher, dataset, batch_size, quiet)
            _print_comparison(result, as_json)
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
    _print_result(result, as_json)


def _print_result(result: Any, as_json: bool) -> None:
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


def _check_same_preprocess(candidate: Any, teacher: Any) -> None:
    if teacher.preprocess != candidate.preprocess:
        fail(
            f"{candidate.path} and {teacher.path} preprocess images differently, so they cannot "
            "be compared image for image; compare a compressed file with the model it came from"
        )


def _compare(loaded: Any, teacher: Any, dataset: Any, batch_size: int, quiet: bool) -> Any:
    """``eval --against``: both models on the same batches, the teacher's preprocessing."""
    from rich.progress import Progress

    from squeezenet.train.compare import compare

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
    return result


def _print_comparison(result: Any, as_json: bool) -> None:
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


@dataclasses.dataclass(frozen=True)
class _RuntimeEval:
    """What ``eval`` asked of a runtime engine."""

    model: str
    data: str
    batch_size: int
    skip_bad: bool
    against: str | None
    engine: str
    quiet: bool


def _eval_runtime(ask: _RuntimeEval) -> Any:
    """``eval`` in a torch-free runtime engine, on a CSV manifest or an image folder: the
    accuracy, or with ``--against`` the comparison (the teacher runs in the same engine)."""
    from rich.progress import Progress

    from squeezenet.runtime import evaluate as runtime_eval
    from squeezenet.runtime.classifier import Classifier
    from squeezenet.runtime.image_lists import labelled_images

    candidate = Classifier.load(ask.model, ask.engine)
    samples, _ = labelled_images(ask.data)
    with Progress(console=err, disable=ask.quiet, transient=True) as progress:
        task = progress.add_task("eval", total=len(samples))
        options: dict[str, Any] = {
            "batch_size": ask.batch_size,
            "skip_bad": ask.skip_bad,
            "on_batch": lambda n: progress.advance(task, n),
        }
        if ask.against is None:
            return runtime_eval.evaluate(candidate.logits, samples, candidate.preprocess, **options)
        teacher = Classifier.load(ask.against, ask.engine)
        _check_same_preprocess(candidate.model, teacher.model)
        result = runtime_eval.compare(
            candidate.logits, teacher.logits, samples, teacher.preprocess, **options
        )
    return result
