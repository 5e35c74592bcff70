"""`squeezenet train`: train a model into a run folder, or resume one exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, fail, out
from squeezenet.cli.arguments import given, resolve_device, user_paths
from squeezenet.cli.common import parse_sets
from squeezenet.cli.options import (
    DATA_HELP,
    BatchSize,
    Bf16,
    DataDir,
    Device,
    Download,
    Json,
    Quiet,
    Sets,
    output_option,
)
from squeezenet.cli.progress import FitProgress

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
