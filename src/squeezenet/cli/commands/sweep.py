"""`squeezenet sweep`: one training per design-space grid point, in this process or on Ray."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, err, fail, out
from squeezenet.cli.arguments import resolve_device, user_paths
from squeezenet.cli.common import parse_seeds, parse_sets, result_meta, train_config
from squeezenet.cli.options import (
    BatchSize,
    Bf16,
    DataDir,
    DataSpec,
    Device,
    Json,
    Quiet,
    Recipe,
    Sets,
    TestImages,
    TrainImages,
    WarmupEpochs,
    output_option,
)
from squeezenet.cli.progress import FitProgress, progress_bar

SweepEngine = Annotated[
    str, typer.Option(help="local (trials in this process, in order) | ray (Ray tasks).")
]
RayAddress = Annotated[
    str | None, typer.Option(help="Ray cluster address (default: a local Ray instance).")
]
CpusPerTrial = Annotated[float, typer.Option(help="Ray: CPUs each trial holds.")]
GpusPerTrial = Annotated[float, typer.Option(help="Ray: GPUs each trial holds.")]
SweepGrid = Annotated[
    list[str],
    typer.Option(help="FIELD=V1,V2,... of the model config (repeat for a product grid)."),
]
SweepSeeds = Annotated[
    str,
    typer.Option(
        "--seed",
        "--seeds",
        help="Seed, or seeds as 0,1,2: every grid point is trained once per seed.",
    ),
]
BaseLr = Annotated[float | None, typer.Option(help="Base learning rate (default: the recipe's).")]


def sweep_cmd(
    grid: SweepGrid,
    data: DataSpec,
    output: Annotated[str, output_option("Sweep folder (results.jsonl).")],
    model: Annotated[str, typer.Option(help="Registry model the grid varies.")] = (
        "squeezenet_small"
    ),
    epochs: Annotated[int, typer.Option(help="Epochs per trial (the budget).")] = 2,
    train_images: TrainImages = 0,
    test_images: TestImages = 0,
    recipe_name: Recipe = "small",
    batch_size: BatchSize = None,
    lr: BaseLr = None,
    warmup_epochs: WarmupEpochs = None,
    seeds: SweepSeeds = "0",
    bf16: Bf16 = None,
    set_: Sets = None,
    data_dir: DataDir = None,
    device: Device = None,
    engine: SweepEngine = "local",
    address: RayAddress = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = 0.0,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Design-space sweep: one training per grid point; a rerun skips finished points."""
    from squeezenet.experiments.sweep import parse_grid, trials_for

    ray_config = _ray_config(engine, address, cpus_per_trial, gpus_per_trial)
    train = train_config(
        recipe_name, resolve_device(device), bf16, epochs=epochs, batch_size=batch_size, lr=lr,
        warmup_epochs=warmup_epochs, checkpoint_every=0,
    )  # fmt: skip
    trials = trials_for(
        parse_grid(grid),
        model=model,
        data=data,
        train=train,
        fixed=parse_sets(set_ or []),
        train_images=train_images,
        test_images=test_images,
        seeds=parse_seeds(seeds),
    )
    records = (
        _run_sweep_ray(trials, output, ray_config, data_dir=data_dir, quiet=quiet)
        if ray_config is not None
        else _run_sweep(
            trials, output, data_dir=data_dir, device=resolve_device(device), quiet=quiet
        )
    )
    if as_json:
        emit_json(records)
        return
    _print_sweep(records, f"{model} sweep on {data}: {epochs} epochs per trial")


def _ray_config(engine: str, address: str | None, cpus: float, gpus: float) -> Any:
    """The Ray settings for ``--engine ray`` (None for local); Ray is imported before any work."""
    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, got {engine!r}")
    if engine == "local":
        return None
    from squeezenet.experiments.sweep_ray import RayConfig, import_ray

    import_ray()  # without Ray: one line and exit 2
    return RayConfig(address, cpus, gpus)


def _run_sweep(
    trials: list[Any], output: str, *, data_dir: str | None, device: str, quiet: bool
) -> list[dict[str, Any]]:
    """:func:`run_sweep` with a bar per sweep and per trial; Ctrl-C says what is kept."""
    from squeezenet.experiments.sweep import run_sweep, run_trial, trial_dir

    progress = progress_bar(quiet)
    outer = progress.add_task("sweep", total=len(trials), info="")
    finished = [0]

    def on_trial(event: Any) -> None:
        if event.kind == "start":
            progress.update(outer, info=f"{event.trial.label}")
            return
        finished[0] += 1
        progress.update(outer, completed=finished[0])
        if event.kind == "done":
            r = event.record
            progress.console.print(
                f"{event.trial.label}: top-1 {r['top1']:.4f}, {r['params']:,} params, "
                f"{r['seconds']:.0f} s",
                highlight=False,
            )

    def runner(trial: Any) -> dict[str, Any]:
        fit_bar = FitProgress(quiet, description="trial", epoch_lines=False, progress=progress)
        return run_trial(
            trial, data_dir=data_dir, device=device, callback=fit_bar,
            run_dir=trial_dir(output, trial),
        )  # fmt: skip

    try:
        with user_paths(writes=[output]), progress:
            return run_sweep(trials, output, runner=runner, callback=on_trial, meta=result_meta())
    except KeyboardInterrupt:
        err.print(
            f"interrupted: {finished[0]} of {len(trials)} trials are stored in {output}; "
            "rerun the same command to continue (the trial in flight from its checkpoint)",
            highlight=False,
        )
        raise typer.Exit(130) from None


def _run_sweep_ray(
    trials: list[Any], output: str, config: Any, *, data_dir: str | None, quiet: bool
) -> list[dict[str, Any]]:
    """The Ray engine, with trials done / running / failed on the progress bar."""
    from squeezenet.experiments.sweep_ray import run_sweep_ray

    progress = progress_bar(quiet)
    bar = progress.add_task("sweep", total=len(trials), info="")
    counts = {"done": 0, "running": 0, "failed": 0}

    def on_trial(event: Any) -> None:
        if event.kind == "start":
            counts["running"] += 1
        elif event.kind == "skip":
            counts["done"] += 1
        else:
            counts["running"] -= 1
            counts["done" if event.kind == "done" else "failed"] += 1
            if event.kind == "failed":
                progress.console.print(f"{event.trial.label}: failed: {event.record['error']}")
        info = ", ".join(f"{v} {k}" for k, v in counts.items())
        progress.update(bar, completed=counts["done"] + counts["failed"], info=info)

    try:
        with user_paths(writes=[output]), progress:
            records = run_sweep_ray(
                trials, output, config, data_dir=data_dir, callback=on_trial, meta=result_meta()
            )
    except KeyboardInterrupt:
        err.print(
            f"interrupted: {counts['done']} of {len(trials)} trials are stored in {output}; "
            "rerun the same command to continue",
            highlight=False,
        )
        raise typer.Exit(130) from None
    if counts["failed"]:
        err.print(f"{counts['failed']} trials failed (stored with their error); rerun to retry")
    return [r for r in records if not r.get("failed")]


def _print_sweep(records: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("point", "params", "MiB", "top-1", "top-5", "seconds"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for r in records:
        table.add_row(
            r["label"], f"{r['params']:,}", f"{r['size_bytes'] / 2**20:.2f}", f"{r['top1']:.4f}",
            f"{r['top5']:.4f}", f"{r['seconds']:.0f}",
        )  # fmt: skip
    out.print(table)
