"""`squeezenet dsd`: dense -> sparse -> re-dense training beside an equal-epoch dense baseline."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, err, out
from squeezenet.cli.arguments import resolve_device, user_paths
from squeezenet.cli.common import parse_sets, result_meta, train_config
from squeezenet.cli.options import (
    BatchSize,
    Bf16,
    DataDir,
    DataSpec,
    Device,
    Json,
    ModelOrName,
    Quiet,
    Recipe,
    Seed,
    Sets,
    TestImages,
    TrainImages,
    WarmupEpochs,
    output_option,
)
from squeezenet.cli.progress import FitProgress, progress_bar


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

    train = train_config(
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
                fit_callback=fit_bar, meta=result_meta(),
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
