"""`squeezenet sensitivity`: per-layer pruning and bit-width sensitivity (Fig. 6a), and a plan."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, fail, out
from squeezenet.cli.arguments import user_paths
from squeezenet.cli.common import result_meta
from squeezenet.cli.options import DataDir, Json, ModelFile, Quiet, output_option
from squeezenet.cli.progress import progress_bar


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
    from squeezenet.experiments.sensitivity_result import SensitivityConfig
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
        outcome = run_sensitivity(job, meta=result_meta(), callback=_SensitivityBar(progress))
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
