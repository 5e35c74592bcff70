"""`squeezenet sensitivity`, `dsd`, `sweep` and `report`: the paper's experiments."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.common import FitProgress, parse_sets, progress_bar
from squeezenet.io.atomic import atomic_write_bytes, atomic_write_json


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


@app.command("sensitivity")
def sensitivity_cmd(
    model: Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")],
    data: Annotated[str, typer.Option(help="Evaluation images: CSV manifest, folder, dataset.")],
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
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
        str, typer.Option("--output", "-o", help="Folder for sensitivity.json/.csv/.png.")
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Per-layer sensitivity: prune / quantize each layer alone, evaluate, restore (Fig. 6a).

    A rerun with the same model, data and settings reuses the stored sweep (e.g. to plan with
    another --max-drop)."""
    from squeezenet.data.registry import load_dataset
    from squeezenet.experiments.plan import calibrate_plan, plan_from_sensitivity, plan_measure
    from squeezenet.experiments.provenance import command_line, machine
    from squeezenet.experiments.sensitivity import (
        SensitivityConfig,
        SensitivityResult,
        plot_sensitivity,
        sensitivity,
    )
    from squeezenet.jobs.load import load_any

    config = SensitivityConfig(
        sparsities=_floats(sparsities, "--sparsities"),
        bits=_ints(bits, "--bits"),
        layers=layers,
        batch_size=batch_size,
    )
    folder = Path(output)
    stored = folder / "sensitivity.json"
    source = {"model": str(Path(model).resolve()), "data": data, "split": split}
    result = None
    loaded, dataset = None, None  # kept for planning when the sweep runs now
    if stored.is_file():
        previous = SensitivityResult.from_dict(json.loads(stored.read_text()))
        if previous.config == config and previous.meta.get("source") == source:
            result = previous
            err.print(f"reusing {stored} (same model, data and settings)", highlight=False)
    if result is None:
        loaded = load_any(model)
        if loaded.preprocess is None:
            fail(f"{model} has no preprocessing record; re-save it with save_weights(preprocess=)")
        dataset = load_dataset(data, split, data_dir=data_dir)
        with progress_bar(quiet) as progress:
            task = progress.add_task("sensitivity", total=None, info="loading images")

            def report(event: Any) -> None:
                p = event.probe
                info = f"{p.layer} {p.kind} {p.value:g}: top-1 {p.top1:.3f}"
                progress.update(task, total=event.total, completed=event.done, info=info)

            result = sensitivity(loaded.model, dataset, loaded.preprocess, config, callback=report)
        meta = {
            "source": source,
            "model_name": loaded.model_name,
            "command": command_line(),
            "machine": machine(),
        }
        result = dataclasses.replace(result, meta=meta)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(stored, result.to_dict())
        atomic_write_bytes(folder / "sensitivity.csv", result.to_csv().encode())
        plot_sensitivity(result, folder / "sensitivity.png")
    document: dict[str, Any] = {
        "output": str(folder),
        "images": result.images,
        "baseline": result.baseline,
        "seconds": result.seconds,
        "probes": len(result.probes),
        "evaluated": sum(p.changed for p in result.probes),
    }
    planned = None
    if plan:
        if verify:
            measure = plan_measure(
                loaded or load_any(model),
                dataset if dataset is not None else load_dataset(data, split, data_dir=data_dir),
                batch_size=batch_size,
            )
            with progress_bar(quiet) as progress:
                task = progress.add_task("plan", total=None, info="compress + evaluate")

                def counted(candidate: Any) -> tuple[float, int]:
                    top1, size = measure(candidate)
                    progress.update(task, advance=1, info=f"top-1 {top1:.3f}, {size:,} B")
                    return top1, size

                planned = calibrate_plan(result, max_drop, counted)
        else:
            planned = plan_from_sensitivity(result, max_drop)
        atomic_write_json(folder / "policy.json", planned.to_policy())
        document["plan"] = {
            "policy": str(folder / "policy.json"),
            "max_drop_points": max_drop,
            "predicted_drop_points": round(planned.predicted_drop, 3),
            "estimated_bytes": planned.estimated_bytes,
            "measured": planned.measured,
            "rounds": list(planned.rounds),
        }
    if as_json:
        document["layers"] = _layer_summary(result)
        emit_json(document)
        return
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
    out.print(
        f"wrote {folder}/sensitivity.json, .csv, .png in {result.seconds:.0f} s "
        f"({document['evaluated']} of {document['probes']} probes changed the weights)",
        highlight=False,
    )
    if planned is not None:
        found = planned.measured
        what = (
            f"measured top-1 {found['top1']:.3f} (loss {found['drop']:.2f} of {max_drop} points), "
            f"{found['file_bytes']:,} bytes"
            if found
            else f"predicted top-1 loss {planned.predicted_drop:.2f} of {max_drop} points"
        )
        out.print(
            f"plan: {what}; wrote {folder}/policy.json (use: squeezenet compress {model} "
            f"-o planned.sqz --policy {folder}/policy.json)",
            highlight=False,
        )


def _layer_summary(result: Any) -> list[dict[str, Any]]:
    rows = []
    for layer in result.layers:
        rows.append(
            {
                "layer": layer["name"],
                "prune": {f"{p.value:g}": p.top1 for p in result.curve(layer["name"], "prune")},
                "bits": {f"{p.value:g}": p.top1 for p in result.curve(layer["name"], "bits")},
            }
        )
    return rows


def _train_config(recipe_name: str, **given: Any) -> Any:
    from squeezenet.train.config import recipe

    return recipe(recipe_name, **{k: v for k, v in given.items() if v is not None})


def _device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


@app.command("sweep")
def sweep_cmd(
    grid: Annotated[
        list[str],
        typer.Option(help="FIELD=V1,V2,... of the model config (repeat for a product grid)."),
    ],
    data: Annotated[str, typer.Option(help="cifar10 | fashion-mnist | synthetic | npz ...")],
    output: Annotated[str, typer.Option("--output", "-o", help="Sweep folder (results.jsonl).")],
    model: Annotated[str, typer.Option(help="Registry model the grid varies.")] = (
        "squeezenet_small"
    ),
    epochs: Annotated[int, typer.Option(help="Epochs per trial (the budget).")] = 2,
    train_images: Annotated[
        int, typer.Option(help="Seeded training subset per trial (0: all).")
    ] = 0,
    test_images: Annotated[int, typer.Option(help="Seeded test subset (0: all).")] = 0,
    recipe_name: Annotated[str, typer.Option("--recipe", help="small | caffe | finetune.")] = (
        "small"
    ),
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate.")] = None,
    warmup_epochs: Annotated[float | None, typer.Option(help="Linear warm-up epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed shared by every trial.")] = 0,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Fixed model config KEY=VALUE.")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: what is there).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Design-space sweep: one training per grid point; a rerun skips finished points."""
    from squeezenet.experiments.provenance import command_line, machine
    from squeezenet.experiments.sweep import parse_grid, run_sweep, run_trial, trials_for

    train = _train_config(
        recipe_name,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup_epochs=warmup_epochs,
        seed=seed,
        checkpoint_every=0,
    )
    trials = trials_for(
        parse_grid(grid),
        model=model,
        data=data,
        train=train,
        fixed=parse_sets(set_ or []),
        train_images=train_images,
        test_images=test_images,
    )
    where = _device(device)
    meta = {"command": command_line(), "machine": machine()}
    progress = progress_bar(quiet)
    outer = progress.add_task("sweep", total=len(trials), info="")
    finished = [0]

    def on_trial(event: Any) -> None:
        if event.kind == "start":
            progress.update(outer, info=f"{event.trial.label}")
        else:
            finished[0] += 1
            progress.update(outer, completed=finished[0])
            if event.kind == "done":
                record = event.record
                progress.console.print(
                    f"{event.trial.label}: top-1 {record['top1']:.4f}, {record['params']:,} "
                    f"params, {record['seconds']:.0f} s",
                    highlight=False,
                )

    def runner(trial: Any) -> dict[str, Any]:
        fit_bar = FitProgress(quiet, description="trial", epoch_lines=False, progress=progress)
        return run_trial(trial, data_dir=data_dir, device=where, callback=fit_bar)

    try:
        with progress:
            records = run_sweep(trials, output, runner=runner, callback=on_trial, meta=meta)
    except KeyboardInterrupt:
        err.print(
            f"interrupted: {finished[0]} of {len(trials)} trials are stored in {output}; "
            "rerun the same command to continue",
            highlight=False,
        )
        raise typer.Exit(130) from None
    if as_json:
        emit_json(records)
        return
    table = Table(title=f"{model} sweep on {data}: {epochs} epochs per trial")
    for column in ("point", "params", "MiB", "top-1", "top-5", "seconds"):
        table.add_column(column, justify="left" if column == "point" else "right")
    for record in records:
        table.add_row(
            record["label"],
            f"{record['params']:,}",
            f"{record['size_bytes'] / 2**20:.2f}",
            f"{record['top1']:.4f}",
            f"{record['top5']:.4f}",
            f"{record['seconds']:.0f}",
        )
    out.print(table)


@app.command("dsd")
def dsd_cmd(
    model: Annotated[str, typer.Argument(help="Registry name (from scratch) or weights file.")],
    data: Annotated[str, typer.Option(help="cifar10 | fashion-mnist | synthetic | npz ...")],
    output: Annotated[str, typer.Option("--output", "-o", help="Run folder (one per phase).")],
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
    train_images: Annotated[int, typer.Option(help="Seeded training subset (0: all).")] = 0,
    test_images: Annotated[int, typer.Option(help="Seeded test subset (0: all).")] = 0,
    recipe_name: Annotated[str, typer.Option("--recipe", help="small | caffe | finetune.")] = (
        "small"
    ),
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (phases 1-2).")] = None,
    warmup_epochs: Annotated[
        float | None, typer.Option(help="Linear warm-up epochs (each phase).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Model config KEY=VALUE.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: what is there).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print dsd.json.")] = False,
) -> None:
    """Dense -> sparse -> re-dense training, against a dense baseline of equal epochs."""
    from squeezenet.experiments.dsd import PHASES, DSDConfig, run_dsd
    from squeezenet.experiments.provenance import command_line, machine

    config = DSDConfig(
        model=model,
        data=data,
        policy=sparsity,
        dense_epochs=dense_epochs,
        sparse_epochs=sparse_epochs,
        redense_epochs=redense_epochs,
        train=_train_config(
            recipe_name, batch_size=batch_size, lr=lr, warmup_epochs=warmup_epochs, seed=seed
        ),
        redense_lr_scale=redense_lr_scale,
        baseline=baseline,
        train_images=train_images,
        test_images=test_images,
        overrides=tuple(sorted(parse_sets(set_ or []).items())),
    )
    progress = progress_bar(quiet)
    phases = [p for p in PHASES if baseline or not p.startswith("baseline")]
    outer = progress.add_task("dsd", total=len(phases), info="")
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

    meta = {"command": command_line(), "machine": machine()}
    try:
        with progress:
            document = run_dsd(
                config,
                output,
                data_dir=data_dir,
                device=_device(device),
                callback=on_phase,
                fit_callback=fit_bar,
                meta=meta,
            )
    except KeyboardInterrupt:
        err.print(f"interrupted: finished phases are stored in {output}; rerun to continue")
        raise typer.Exit(130) from None
    if as_json:
        emit_json(document)
        return
    table = Table(title=f"DSD: {model} on {data}, --sparsity {sparsity}")
    for column in ("phase", "epochs", "LR", "sparsity", "top-1", "top-5"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for phase, m in document["phases"].items():
        table.add_row(
            phase,
            str(m["epochs"]),
            f"{m['lr']:g}",
            f"{m['sparsity']:.3f}",
            f"{m['top1']:.4f}",
            f"{m['top5']:.4f}",
        )
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
        str, typer.Option(help="Markdown file whose report sections are replaced.")
    ] = "docs/RESULTS.md",
    figures: Annotated[str, typer.Option(help="Folder for the PNG figures.")] = "docs/figures",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sections as JSON (still writes).")
    ] = False,
) -> None:
    """Regenerate the experiment sections and figures of RESULTS.md from result folders."""
    from squeezenet.experiments.report import (
        load_results,
        relative_link,
        render,
        update_markdown,
    )

    loaded = load_results(folders)
    document = Path(results)
    if not document.parent.is_dir():
        fail(f"--results {document}: folder {document.parent} does not exist")
    figure_dir = Path(figures)
    sections = render(loaded, figure_dir, relative_link(figure_dir, document))
    before = document.read_text() if document.is_file() else "# Results\n"
    atomic_write_bytes(document, update_markdown(before, sections).encode())
    if as_json:
        emit_json({"results": str(document), "figures": str(figure_dir), "sections": sections})
        return
    for name in sections:
        out.print(f"updated section {name}", highlight=False)
    out.print(f"wrote {document} and figures in {figure_dir}", highlight=False)
