"""`squeezenet sensitivity`, `dsd`, `sweep` and `report`: the paper's experiments."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.arguments import given, resolve_device, user_paths
from squeezenet.cli.common import FitProgress, parse_seeds, parse_sets, progress_bar
from squeezenet.cli.options import (
    BatchSize,
    Bf16,
    DataDir,
    DataSpec,
    Device,
    Json,
    ModelFile,
    ModelOrName,
    Quiet,
    Seed,
    Sets,
    output_option,
)

# Options of the training experiments (sweep, dsd), declared once.
TrainImages = Annotated[int, typer.Option(help="Seeded training subset (0: all).")]
TestImages = Annotated[int, typer.Option(help="Seeded test subset (0: all).")]
Recipe = Annotated[str, typer.Option("--recipe", help="small | caffe | finetune.")]
WarmupEpochs = Annotated[
    float | None, typer.Option(help="Linear warm-up epochs (default: the recipe's).")
]


def _floats(text: str, option: str) -> tuple[float, ...]:
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"{option} expects comma-separated numbers or none, got {text!r}")


def _ints(text: str, option: str) -> tuple[int, ...]:
    values = _floats(text, option)
    if any(v != int(v) for v in values):
        fail(f"{option} expects comma-separated integers or none, got {text!r}")
    return tuple(int(v) for v in values)


def _meta() -> dict[str, Any]:
    """Where a result comes from: this command line and this machine."""
    from squeezenet.experiments.provenance import command_line, machine

    return {"command": command_line(sys.argv), "machine": machine()}


def _train_config(recipe_name: str, device: str, bf16: bool | None, **options: Any) -> Any:
    """The recipe with the options the user gave (not None) replacing its fields; bf16 as
    ``--bf16/--no-bf16`` says, else the recipe's where ``device`` has bfloat16 units."""
    from squeezenet.train.config import recipe, resolve_bf16

    return resolve_bf16(recipe(recipe_name, **given(**options)), device, bf16)


@app.command("sensitivity")
def sensitivity_cmd(
    model: ModelFile,
    data: Annotated[str, typer.Option(help="Evaluation images: CSV manifest, folder, dataset.")],
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option(help="train | test (named datasets).")] = "test",
    sparsities: Annotated[
        str, typer.Option(help="Sparsities to prune each layer to, or none.")
    ] = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
    bits: Annotated[str, typer.Option(help="Bit widths to quantize each layer to, or none.")] = (
        "8,6,5,4,3"
    ),
    layers: Annotated[
        str, typer.Option(help="Layer patterns (conv1, fire2.squeeze, *.expand3x3, ...).")
    ] = "*",
    output: Annotated[
        str, output_option("Folder for sensitivity.json/.csv/.png (and policy.json).")
    ] = "sensitivity",
    plan: Annotated[
        bool, typer.Option("--plan", help="Also choose per-layer sparsity and bits (policy.json).")
    ] = False,
    max_drop: Annotated[float, typer.Option(help="--plan: top-1 loss allowed, in points.")] = 1.0,
    verify: Annotated[
        bool,
        typer.Option(help="--plan: compress + evaluate each candidate until the loss fits."),
    ] = True,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 50,
    calib: Annotated[
        str | None,
        typer.Option(help="Sweep and plan on these images; --data then only reports the plan."),
    ] = None,
    calib_images: Annotated[
        int, typer.Option(min=0, help="A seeded subset of that many --calib images (0: all).")
    ] = 0,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Per-layer sensitivity: prune / quantize each layer alone, evaluate, restore (Fig. 6a).

    A rerun with the same model, data and settings reuses the stored sweep (e.g. to plan with
    another --max-drop)."""
    from squeezenet.experiments.sensitivity import SensitivityConfig
    from squeezenet.experiments.sensitivity_run import SensitivityJob, run_sensitivity

    config = SensitivityConfig(
        sparsities=_floats(sparsities, "--sparsities"),
        bits=_ints(bits, "--bits"),
        layers=layers,
        batch_size=batch_size,
    )
    job = SensitivityJob(
        model, data, output, config, split, data_dir, plan, max_drop, verify, calib, calib_images
    )
    with user_paths(reads=[model, data, calib], writes=[output]), progress_bar(quiet) as progress:
        outcome = run_sensitivity(job, meta=_meta(), callback=_SensitivityBar(progress))
    if as_json:
        emit_json(outcome.to_dict())
        return
    _print_sensitivity(outcome, model)


class _SensitivityBar:
    """Shows :func:`run_sensitivity`'s events: one progress task per stage, notes as lines."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: Any) -> None:
        if event.stage == "reuse":
            self.progress.console.print(event.info, highlight=False)
            return
        if event.stage not in self.tasks:
            name = "sensitivity" if event.stage == "sweep" else event.stage
            self.tasks[event.stage] = self.progress.add_task(name, total=None, info="")
        task = self.tasks[event.stage]
        self.progress.update(task, total=event.total, completed=event.done, info=event.info)


def _print_sensitivity(outcome: Any, model: str) -> None:
    result, folder, planned = outcome.result, outcome.folder, outcome.plan
    table = Table(
        title=f"top-1 after pruning / quantizing one layer (baseline "
        f"{result.baseline['top1']:.3f}, {result.images} images)"
    )
    table.add_column("layer")
    for value in result.config.sparsities:
        table.add_column(f"{value:.0%}", justify="right")
    for value in result.config.bits:
        table.add_column(f"{value}b", justify="right")
    for layer in result.layers:
        cells = [f"{p.top1:.3f}" for p in result.curve(layer["name"], "prune")]
        cells += [f"{p.top1:.3f}" for p in result.curve(layer["name"], "bits")]
        table.add_row(layer["name"], *cells)
    out.print(table)
    evaluated = sum(p.changed for p in result.probes)
    out.print(
        f"wrote {folder}/sensitivity.json, .csv, .png in {result.seconds:.0f} s "
        f"({evaluated} of {len(result.probes)} probes changed the weights)",
        highlight=False,
    )
    if planned is None:
        return
    found, max_drop = planned.measured, outcome.max_drop
    what = (
        f"measured top-1 {found['top1']:.3f} (loss {found['drop']:.2f} of {max_drop} points), "
        f"{found['file_bytes']:,} bytes"
        if found
        else f"predicted top-1 loss {planned.predicted_drop:.2f} of {max_drop} points"
    )
    out.print(
        f"plan: {what}; wrote {outcome.policy} (use: squeezenet compress {model} "
        f"-o planned.sqz --policy {outcome.policy})",
        highlight=False,
    )
    if outcome.report is not None:
        r = outcome.report
        out.print(
            f"report on {r['data']} (chosen on {r['chosen_on']}): top-1 {r['top1']:.3f} against "
            f"{r['baseline_top1']:.3f} ({r['drop_points']:+.2f} points lost) on {r['images']} "
            f"images, {r['file_bytes']:,} bytes",
            highlight=False,
        )


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


@app.command("sweep")
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
    train = _train_config(
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
            return run_sweep(trials, output, runner=runner, callback=on_trial, meta=_meta())
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
                trials, output, config, data_dir=data_dir, callback=on_trial, meta=_meta()
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


@app.command("dsd")
def dsd_cmd(
    model: ModelOrName,
    data: DataSpec,
    output: Annotated[str, output_option("Run folder (dsd.json, a folder per phase).")],
    sparsity: Annotated[
        str, typer.Option(help="Sparse phase pruning: a sparsity, paper, std:Q or JSON policy.")
    ] = "0.5",
    dense_epochs: Annotated[int, typer.Option(help="Phase 1 epochs (0 for a weights file).")] = 2,
    sparse_epochs: Annotated[int, typer.Option(help="Phase 2 epochs (with masks).")] = 1,
    redense_epochs: Annotated[int, typer.Option(help="Phase 3 epochs (masks removed).")] = 1,
    redense_lr_scale: Annotated[float, typer.Option(help="Phase 3 LR as a fraction.")] = 0.1,
    baseline: Annotated[
        bool, typer.Option(help="Also train the equal-epoch dense baseline.")
    ] = True,
    train_images: TrainImages = 0,
    test_images: TestImages = 0,
    recipe_name: Recipe = "small",
    batch_size: BatchSize = None,
    lr: Annotated[
        float | None, typer.Option(help="Base learning rate of phases 1-2 (default: the recipe's).")
    ] = None,
    warmup_epochs: WarmupEpochs = None,
    seed: Seed = 0,
    bf16: Bf16 = None,
    set_: Sets = None,
    data_dir: DataDir = None,
    device: Device = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Dense -> sparse -> re-dense training, against a dense baseline of equal epochs."""
    from squeezenet.experiments.dsd import DSDConfig

    train = _train_config(
        recipe_name, resolve_device(device), bf16, batch_size=batch_size, lr=lr,
        warmup_epochs=warmup_epochs, seed=seed,
    )  # fmt: skip
    config = DSDConfig(
        model=model,
        data=data,
        policy=sparsity,
        dense_epochs=dense_epochs,
        sparse_epochs=sparse_epochs,
        redense_epochs=redense_epochs,
        train=train,
        redense_lr_scale=redense_lr_scale,
        baseline=baseline,
        train_images=train_images,
        test_images=test_images,
        overrides=tuple(sorted(parse_sets(set_ or []).items())),
    )
    document = _run_dsd(
        config, output, data_dir=data_dir, device=resolve_device(device), quiet=quiet
    )
    if as_json:
        emit_json(document)
        return
    _print_dsd(document, f"DSD: {model} on {data}, --sparsity {sparsity}")


def _run_dsd(
    config: Any, output: str, *, data_dir: str | None, device: str, quiet: bool
) -> dict[str, Any]:
    """:func:`run_dsd` with a bar per run and per phase; Ctrl-C says what is kept."""
    from squeezenet.experiments.dsd import phases, run_dsd

    progress = progress_bar(quiet)
    outer = progress.add_task("dsd", total=len(phases(config)), info="")
    done = [0]

    def on_phase(event: Any) -> None:
        if event.kind == "start":
            progress.update(outer, info=event.phase)
            return
        done[0] += 1
        progress.update(outer, completed=done[0])
        m = event.metrics
        progress.console.print(
            f"{event.phase}: top-1 {m['top1']:.4f}, sparsity {m['sparsity']:.3f}"
            + (" (stored)" if event.kind == "skip" else f", {m['seconds']:.0f} s"),
            highlight=False,
        )

    def fit_bar(phase: str) -> Any:
        return FitProgress(quiet, description=phase, epoch_lines=False, progress=progress)

    try:
        with user_paths(writes=[output]), progress:
            return run_dsd(
                config, output, data_dir=data_dir, device=device, callback=on_phase,
                fit_callback=fit_bar, meta=_meta(),
            )  # fmt: skip
    except KeyboardInterrupt:
        err.print(f"interrupted: finished phases are stored in {output}; rerun to continue")
        raise typer.Exit(130) from None


def _print_dsd(document: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    for column in ("phase", "epochs", "LR", "sparsity", "top-1", "top-5"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for phase, m in document["phases"].items():
        table.add_row(
            phase, str(m["epochs"]), f"{m['lr']:g}", f"{m['sparsity']:.3f}", f"{m['top1']:.4f}",
            f"{m['top5']:.4f}",
        )  # fmt: skip
    out.print(table)
    summary = document["summary"]
    if "gain_points" in summary:
        out.print(
            f"DSD top-1 {summary['dsd_top1']:.4f} vs dense baseline {summary['baseline_top1']:.4f} "
            f"after {summary['total_epochs']} epochs each: {summary['gain_points']:+.2f} points",
            highlight=False,
        )


@app.command("report")
def report_cmd(
    folders: Annotated[
        list[str], typer.Argument(help="Result folders: sweeps, sensitivity, dsd, sizes.")
    ],
    results: Annotated[
        str,
        typer.Option("--output", "-o", help="Markdown file whose report sections are replaced."),
    ] = "docs/RESULTS.md",
    figures: Annotated[str, typer.Option(help="Folder for the PNG figures.")] = "docs/figures",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sections as JSON (still writes).")
    ] = False,
) -> None:
    """Regenerate the experiment sections and figures of RESULTS.md from result folders."""
    from squeezenet.experiments.report import write_report

    with user_paths(reads=folders, writes=[results, figures]):
        written = write_report(folders, Path(results), Path(figures))
    if as_json:
        emit_json(written.to_dict())
        return
    for name in written.sections:
        out.print(f"updated section {name}", highlight=False)
    out.print(f"wrote {written.document} and figures in {written.figures}", highlight=False)
