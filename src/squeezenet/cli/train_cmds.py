"""`squeezenet train` and `squeezenet eval`."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.common import FitProgress, parse_sets


def _init_distributed() -> tuple[int, str]:
    """Join the torchrun process group when WORLD_SIZE > 1; returns (rank, device)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, "cuda" if torch.cuda.is_available() else "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return dist.get_rank(), f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return dist.get_rank(), "cpu"


@app.command("train")
def train_cmd(
    model: Annotated[str | None, typer.Argument(help="Registry name or weights file.")] = None,
    data: Annotated[
        str | None, typer.Option(help="fashion-mnist | cifar10 | synthetic | CSV | folder.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Run folder: checkpoints, metrics, weights."),
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue the run in this folder exactly.")
    ] = None,
    recipe_name: Annotated[
        str, typer.Option("--recipe", help="caffe | small | finetune.")
    ] = "small",
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch size.")] = None,
    accumulate: Annotated[
        int | None, typer.Option(help="Micro-batches per step (iter_size).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate.")] = None,
    schedule: Annotated[str | None, typer.Option(help="poly | cosine | step | constant.")] = None,
    warmup_epochs: Annotated[float | None, typer.Option(help="Linear warm-up epochs.")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Weight decay.")] = None,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast.")] = False,
    channels_last: Annotated[bool, typer.Option(help="NHWC layout (faster on CPU).")] = True,
    seed: Annotated[int | None, typer.Option(help="Seed for init, order, augmentation.")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after N steps (probes, tests).")
    ] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Model config KEY=VALUE.")] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download a missing dataset.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: what is there).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final metrics as JSON.")
    ] = False,
) -> None:
    """Train a model (or resume a run); writes RUN/model.safetensors with its metadata."""
    from squeezenet.jobs.train_run import RunSpec, read_run_spec, run_training
    from squeezenet.train.config import recipe

    rank, default_device = _init_distributed()
    if resume:
        spec = read_run_spec(resume)
        if max_steps is not None:
            spec = RunSpec.from_dict(
                {**spec.to_dict(), "train": {**spec.train.to_dict(), "max_steps": max_steps}}
            )
        run_dir: str | None = resume
    else:
        if model is None or data is None:
            fail("train needs a MODEL and --data (or --resume RUN_DIR)")
        given = {
            "epochs": epochs,
            "batch_size": batch_size,
            "accumulate": accumulate,
            "lr": lr,
            "schedule": schedule,
            "warmup_epochs": warmup_epochs,
            "weight_decay": weight_decay,
            "seed": seed,
            "max_steps": max_steps,
            "checkpoint_every": checkpoint_every,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        config = recipe(recipe_name, bf16=bf16, channels_last=channels_last, **changes)
        spec = RunSpec(model, data, config, data_dir, parse_sets(set_ or []), download)
        run_dir = out_dir
    outcome = run_training(
        spec,
        run_dir,
        resume=bool(resume),
        device=device or default_device,
        callback=FitProgress(quiet or rank != 0),
    )
    if rank != 0:
        return
    final = outcome.result.history[-1] if outcome.result.history else {}
    document = {
        **final,
        "steps": outcome.result.steps,
        "collapsed": outcome.result.collapsed,
        "weights": str(outcome.weights) if outcome.weights else None,
    }
    if as_json:
        emit_json(document)
        return
    table = Table(title=f"{outcome.model_name} on {spec.data}")
    for column in ("epoch", "train loss", "top-1", "top-5", "img/s"):
        table.add_column(column, justify="right")
    for record in outcome.result.history:
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
    model: Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")],
    data: Annotated[str, typer.Option(help="CSV manifest, image folder, or a named dataset.")],
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
    split: Annotated[str, typer.Option(help="train | test (named datasets).")] = "test",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"top1", "top5", "n"}.')] = False,
) -> None:
    """Top-1 / top-5 of a model on a dataset, with the model's own preprocessing."""
    from rich.progress import Progress

    from squeezenet.data.registry import load_dataset
    from squeezenet.jobs.load import load_any
    from squeezenet.train.evaluate import evaluate

    loaded = load_any(model)
    if loaded.preprocess is None:
        fail(f"{model} has no preprocessing record; re-save it with save_weights(preprocess=...)")
    dataset = load_dataset(data, split, data_dir=data_dir)
    with Progress(console=err, disable=quiet, transient=True) as progress:
        task = progress.add_task("eval", total=len(dataset))
        result = evaluate(
            loaded.model,
            dataset,
            loaded.preprocess,
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
