"""`squeezenet pipeline`: train, prune, quantize, write and verify a .sqz, print the table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.common import FitProgress, parse_sets

if TYPE_CHECKING:
    from squeezenet.compress.prune import PrunePolicy
    from squeezenet.experiments import PipelineEvent, PipelineReport


class _PipelineProgress:
    """Stage headers, a training bar per stage and a transient bar per evaluation, on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.fit: FitProgress | None = None
        self.eval: Any = None
        self.eval_task: Any = None

    def __call__(self, event: PipelineEvent) -> None:
        if self.quiet:
            return
        head = f"[bold cyan]\\[{event.index}/4] {event.stage}[/]"
        if event.kind == "stage":
            err.print(f"{head} {event.message}", highlight=False)
            self.fit = FitProgress(description=f"{event.stage}", epoch_lines=False)
        elif event.kind == "fit" and self.fit is not None and event.fit is not None:
            self.fit(event.fit)
        elif event.kind == "eval":
            self._eval(event)
        elif event.kind in ("done", "skip"):
            record = event.record
            before = record.get("top1_before")
            parts = [f"top-1 {100 * record['top1']:.2f} %"]
            if before is not None:
                parts.append(f"({100 * before:.2f} % before retraining)")
            if "file_bytes" in record:
                parts.append(f"{record['file_bytes']:,} bytes")
            if event.kind == "skip":
                err.print(f"{head} {event.message}; {' '.join(parts)}", highlight=False)
            else:
                parts.append(f"in {record['seconds']:.0f} s")
                err.print(f"{head} done: {' '.join(parts)}", highlight=False)

    def _eval(self, event: PipelineEvent) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if event.done == 0:
            self.eval = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                transient=True,
            )
            self.eval.start()
            self.eval_task = self.eval.add_task(event.message, total=event.total)
        elif self.eval is not None:
            self.eval.update(self.eval_task, completed=event.done)
            if event.done >= event.total:
                self.eval.stop()
                self.eval = None


def _epochs(spec: str) -> dict[str, float]:
    """``--epochs D[,P[,Q]]`` -> the stage budgets it sets."""
    names = ("dense_epochs", "prune_epochs", "quantize_epochs")
    parts = [p.strip() for p in spec.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        fail(f"--epochs expects up to three numbers DENSE[,PRUNE[,QUANTIZE]], got {spec!r}")
    if not 1 <= len(values) <= 3 or min(values) <= 0:
        fail(f"--epochs expects up to three numbers > 0, DENSE[,PRUNE[,QUANTIZE]], got {spec!r}")
    return dict(zip(names, values, strict=False))


def _policy(policy: str | None, sparsity: float | None) -> PrunePolicy | None:
    """None keeps the pipeline's default policy."""
    from squeezenet.compress.prune import PrunePolicy
    from squeezenet.jobs.specs import parse_policy

    if policy is not None and sparsity is not None:
        fail("give --policy or --sparsity, not both")
    if sparsity is not None:
        return PrunePolicy.uniform(sparsity)
    if policy is None:
        return None
    return parse_policy(policy) or PrunePolicy.uniform(0.0)  # "none": retrain without pruning


def _table(report: PipelineReport) -> Table:
    from squeezenet.jobs.sizes import ALEXNET_DENSE_BYTES

    config = report.config
    table = Table(title=f"{config.model} on {config.data}: train -> prune -> quantize -> .sqz")
    for column in ("stage", "top-1", "before retraining", "size", "vs dense", "vs AlexNet"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    table.add_column("size counts", style="dim")
    table.add_column("time", justify="right")
    for row in report.rows:
        before = f"{100 * row.top1_before:.2f} %" if row.top1_before is not None else ""
        table.add_row(
            row.label,
            f"{100 * row.top1:.2f} %",
            before,
            f"{row.bytes:,} B",
            f"{report.dense_bytes / row.bytes:.1f}x",
            f"{ALEXNET_DENSE_BYTES / row.bytes:,.0f}x",
            row.size_note,
            "earlier" if row.skipped else f"{row.seconds:.0f} s",
        )
    return table


@app.command("pipeline")
def pipeline_cmd(
    data: Annotated[
        str, typer.Option(help="fashion-mnist | cifar10 | synthetic | CSV | folder.")
    ] = "fashion-mnist",
    data_dir: Annotated[str | None, typer.Option(help="Folder holding the named dataset.")] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download a missing dataset.")
    ] = False,
    model: Annotated[str, typer.Option(help="Registry name.")] = "squeezenet_small",
    out_dir: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Output folder [default: runs/pipeline(-quick)]."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="~1 minute: 4,000 training / 1,000 test images.")
    ] = False,
    epochs: Annotated[
        str | None, typer.Option(help="Training epochs DENSE[,PRUNE[,QUANTIZE]], fractional ok.")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="Pruning: paper | SPARSITY | std:Q | JSON | FILE [default: built in]."),
    ] = None,
    sparsity: Annotated[
        float | None, typer.Option(help="Prune every layer to this sparsity.")
    ] = None,
    bits: Annotated[str, typer.Option(help="Codebook bits: N | mixed | PATTERN=BITS,...")] = "6",
    train_images: Annotated[
        int | None, typer.Option(help="Train on a subset of this many images (0: all).")
    ] = None,
    test_images: Annotated[
        int | None, typer.Option(help="Evaluate on a subset of this many images (0: all).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per SGD step.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for init, subsets, order, augmentation.")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Model config KEY=VALUE.")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Start over instead of resuming the folder.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="cpu | cuda (default: what is there).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The main job: train SqueezeNet, prune + retrain, quantize + fine-tune, write and verify a
    .sqz file, and print accuracy and size after each stage. Rerun to resume."""
    import torch

    from squeezenet.experiments import (
        DecodeMismatchError,
        PipelineConfig,
        PipelineResumeError,
        run_pipeline,
    )
    from squeezenet.jobs.specs import parse_bits

    changes: dict[str, Any] = {"data": data, "data_dir": data_dir, "download": download}
    changes.update(model=model, bits=parse_bits(bits), seed=seed, overrides=parse_sets(set_ or []))
    chosen = _policy(policy, sparsity)
    if chosen is not None:
        changes["policy"] = chosen
    if epochs is not None:
        changes.update(_epochs(epochs))
    given = {"train_images": train_images, "test_images": test_images, "batch_size": batch_size}
    changes.update({k: v for k, v in given.items() if v is not None})
    config = PipelineConfig.quick(**changes) if quick else PipelineConfig(**changes)
    folder = out_dir or ("runs/pipeline-quick" if quick else "runs/pipeline")
    try:
        report = run_pipeline(
            config,
            folder,
            callback=_PipelineProgress(quiet),
            resume=not restart,
            device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
        )
    except PipelineResumeError as exc:
        fail(f"{exc} (--restart starts over)")
    except DecodeMismatchError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(_table(report))
    drop = report.top1_drop_points
    out.print(
        f"decoded {report.sqz.name} reproduces the fine-tuned model: max |logit difference| "
        f"{report.check_max_abs_diff:.3g} on {report.check_images} test images\n"
        f"{report.sqz}: {report.file_bytes:,} bytes, 1/{report.dense_bytes / report.file_bytes:.1f}"
        f" of the dense 32-bit model; top-1 {'-' if drop >= 0 else '+'}{abs(drop):.2f} points "
        f"vs dense\nreport: {report.out_dir / 'report.json'}"
        + (f"  plot: {report.plot}" if report.plot else "")
        + f"  ({report.seconds:.0f} s)",
        highlight=False,
    )
