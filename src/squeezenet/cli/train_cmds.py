"""`squeezenet train` and `squeezenet eval`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.arguments import (
    exported_runtime,
    given,
    load_model_file,
    resolve_device,
    user_paths,
)
from squeezenet.cli.common import FitProgress, parse_sets
from squeezenet.cli.options import (
    DATA_HELP,
    BatchSize,
    Bf16,
    DataDir,
    Device,
    Download,
    Engine,
    Json,
    ModelFile,
    Quiet,
    Sets,
    output_option,
)

if TYPE_CHECKING:
    from squeezenet.workflows.train_run import RunOutcome, RunSpec

Model = Annotated[str | None, typer.Argument(help="Registry name or weights file.")]
Data = Annotated[str | None, typer.Option(help=DATA_HELP)]
RunDir = Annotated[str | None, output_option("Run folder: checkpoints, metrics, weights.")]
Resume = Annotated[str | None, typer.Option(help="Continue the run in this folder exactly.")]
Recipe = Annotated[
    str | None, typer.Option("--recipe", help="caffe | small | finetune (default: small).")
]
Epochs = Annotated[int | None, typer.Option(help="Epochs.")]
Accumulate = Annotated[int | None, typer.Option(help="Micro-batches per step (iter_size).")]
Lr = Annotated[float | None, typer.Option(help="Base learning rate.")]
Schedule = Annotated[str | None, typer.Option(help="poly | cosine | step | constant.")]
Warmup = Annotated[float | None, typer.Option(help="Linear warm-up epochs.")]
WeightDecay = Annotated[float | None, typer.Option(help="Weight decay.")]
ChannelsLast = Annotated[
    bool | None, typer.Option(help="NHWC layout (faster on CPU; default: on).", show_default=False)
]
TrainSeed = Annotated[int | None, typer.Option(help="Seed for init, order, augmentation.")]
MaxSteps = Annotated[int | None, typer.Option(help="Stop after N steps (probes, tests).")]
CheckpointEvery = Annotated[int | None, typer.Option(help="Checkpoint every N steps.")]


Against = Annotated[
    str | None,
    typer.Option(
        help="A teacher model file: print the paired comparison (top-1 difference ± paired SE, "
        "agreement, KL) instead."
    ),
]


@app.command("train")
def train_cmd(
    model: Model = None,
    data: Data = None,
    data_dir: DataDir = None,
    output: RunDir = None,
    resume: Resume = None,
    recipe_name: Recipe = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    accumulate: Accumulate = None,
    lr: Lr = None,
    schedule: Schedule = None,
    warmup_epochs: Warmup = None,
    weight_decay: WeightDecay = None,
    bf16: Bf16 = None,
    channels_last: ChannelsLast = None,
    seed: TrainSeed = None,
    max_steps: MaxSteps = None,
    checkpoint_every: CheckpointEvery = None,
    set_: Sets = None,
    download: Download = False,
    device: Device = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train a model (or resume a run); writes RUN/model.safetensors with its metadata."""
    from squeezenet.train.config import recipe, resolve_bf16
    from squeezenet.workflows.train_run import RunSpec

    changes = given(
        epochs=epochs,
        batch_size=batch_size,
        accumulate=accumulate,
        lr=lr,
        bf16=bf16,
        channels_last=channels_last,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        weight_decay=weight_decay,
        seed=seed,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
    )
    if resume:
        spec = _resumed(resume, changes, bool(model or data or set_ or output or recipe_name))
    elif model is None or data is None:
        fail("train needs a MODEL and --data (or --resume RUN_DIR)")
    else:
        changes.pop("bf16", None)
        config = recipe(recipe_name or "small", **changes)
        config = resolve_bf16(config, resolve_device(device), bf16)
        spec = RunSpec(model, data, config, data_dir, parse_sets(set_ or []), download)
    rank, outcome = _run(spec, resume or output, resumed=bool(resume), device=device, quiet=quiet)
    if rank == 0:
        _print_run(outcome, spec, as_json)


def _run(
    spec: RunSpec, run_dir: str | None, *, resumed: bool, device: str | None, quiet: bool
) -> tuple[int, RunOutcome]:
    """Run (or resume) ``spec`` on this process's rank; returns (rank, outcome)."""
    from squeezenet.train.distributed import init_distributed
    from squeezenet.workflows.train_run import run_training

    rank, default_device = init_distributed()  # torchrun: join the process group first
    with user_paths(reads=[spec.model, spec.data], writes=[run_dir]):
        outcome = run_training(
            spec,
            run_dir,
            resume=resumed,
            device=device or default_device,
            callback=FitProgress(quiet or rank != 0),
        )
    return rank, outcome


def _resumed(run_dir: str, changes: dict[str, object], new_setup: bool) -> RunSpec:
    """The spec of the run in ``run_dir``; only ``--max-steps`` may change it."""
    from squeezenet.workflows.train_run import RunSpec, read_run_spec

    if new_setup or set(changes) - {"max_steps"}:
        fail(
            "--resume continues a run in its folder exactly as it was started: drop MODEL, "
            "--data, --output, --set, --recipe and the recipe options (only --max-steps may "
            "change)"
        )
    with user_paths(reads=[run_dir]):
        spec = read_run_spec(run_dir)
    if "max_steps" not in changes:
        return spec
    train = {**spec.train.to_dict(), "max_steps": changes["max_steps"]}
    return RunSpec.from_dict({**spec.to_dict(), "train": train})


def _print_run(outcome: RunOutcome, spec: RunSpec, as_json: bool) -> None:
    result = outcome.result
    if as_json:
        final = result.history[-1] if result.history else {}
        weights = str(outcome.weights) if outcome.weights else None
        emit_json(
            {**final, "steps": result.steps, "collapsed": result.collapsed, "weights": weights}
        )
        return
    table = Table(title=f"{outcome.model_name} on {spec.data}")
    for column in ("epoch", "train loss", "top-1", "top-5", "img/s"):
        table.add_column(column, justify="right")
    for record in result.history:
        table.add_row(
            str(record["epoch"]),
            f"{record['train_loss']:.4f}",
            f"{record.get('top1', float('nan')):.4f}",
            f"{record.get('top5', float('nan')):.4f}",
            f"{record['images_per_s']:,.0f}",
        )
    out.print(table)
    if outcome.weights:
        out.print(f"weights: {outcome.weights}", highlight=False)


@app.command("eval")
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

    from squeezenet.data.registry import load_dataset
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
    import dataclasses

    from squeezenet.deploy.calibration import calibration_batches
    from squeezenet.deploy.engines import EngineModule, check_engines, make_engine

    check_engines([engine], "--engine")
    pre = loaded.preprocess
    if engine.endswith("-int8") and calib is None:
        fail(f"--engine {engine} needs --calib DATA (proxy images, not the evaluation images)")
    if calib is not None and not engine.endswith("-int8"):
        fail("--calib calibrates the int8 engines only: drop it, or use an -int8 engine")
    if calib is not None and _same_images(calib, data, split):
        err.print(
            "warning: --calib is the evaluation data, so the result is a bound, not an "
            "accuracy: calibrate on other images"
        )
    batches = calibration_batches(calib, pre) if calib is not None else None
    shape = (pre.channels, pre.crop, pre.crop)
    engine_run = make_engine(
        engine, loaded.model, shape, calibration=batches, preprocess=pre.to_dict()
    )
    module = EngineModule(engine_run)
    return dataclasses.replace(loaded, model=module)


def _same_images(calib: str, data: str, split: str) -> bool:
    """Whether calibration (the training split of ``calib``) reads the evaluated images: the
    same file or folder (which has no splits), or the same named dataset's training split."""
    if os.path.exists(data):
        return os.path.realpath(calib) == os.path.realpath(data)
    return calib == data and split == "train"


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
