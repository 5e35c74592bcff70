"""`squeezenet pipeline`: train, prune, quantize, write and verify a .sqz, print the table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, err, fail, out
from squeezenet.cli.arguments import given, resolve_device, user_paths
from squeezenet.cli.common import parse_sets
from squeezenet.cli.options import (
    BatchSize,
    DataDir,
    DataSpec,
    Device,
    Download,
    Quiet,
    Seed,
    Sets,
    output_option,
)
from squeezenet.cli.progress import FitProgress

if TYPE_CHECKING:
    from squeezenet.experiments import PipelineEvent, PipelineReport
    from squeezenet.formats.policy import PrunePolicy

ModelName = Annotated[str, typer.Option(help="Registry name.")]
Folder = Annotated[
    str | None, output_option("Output folder (default: runs/pipeline or runs/pipeline-quick).")
]
Quick = Annotated[
    bool, typer.Option("--quick", help="~1 minute: 4,000 training / 1,000 test images.")
]
Epochs = Annotated[
    str | None, typer.Option(help="Training epochs DENSE[,PRUNE[,QUANTIZE]], fractional ok.")
]
Policy = Annotated[
    str | None,
    typer.Option(help="Pruning: paper | SPARSITY | std:Q | JSON | FILE (default: built in)."),
]
Sparsity = Annotated[float | None, typer.Option(help="Prune every layer to this sparsity.")]
Bits = Annotated[str, typer.Option(help="Codebook bits: N | mixed | PATTERN=BITS,...")]
TrainImages = Annotated[
    int | None, typer.Option(help="Train on a subset of this many images (0: all).")
]
TestImages = Annotated[
    int | None, typer.Option(help="Evaluate on a subset of this many images (0: all).")
]
Restart = Annotated[
    bool, typer.Option("--restart", help="Start over instead of resuming the folder.")
]


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
    from squeezenet.compress.spellings import parse_policy
    from squeezenet.formats.policy import PrunePolicy

    if policy is not None and sparsity is not None:
        fail("give --policy or --sparsity, not both")
    if sparsity is not None:
        return PrunePolicy.uniform(sparsity)
    if policy is None:
        return None
    return parse_policy(policy) or PrunePolicy.uniform(0.0)  # "none": retrain without pruning


def _table(report: PipelineReport) -> Table:
    from squeezenet.compress.sizes import ALEXNET_DENSE_BYTES

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


def pipeline_cmd(
    data: DataSpec = "fashion-mnist",
    data_dir: DataDir = None,
    download: Download = False,
    model: ModelName = "squeezenet_small",
    output: Folder = None,
    quick: Quick = False,
    epochs: Epochs = None,
    policy: Policy = None,
    sparsity: Sparsity = None,
    bits: Bits = "6",
    train_images: TrainImages = None,
    test_images: TestImages = None,
    batch_size: BatchSize = None,
    seed: Seed = 0,
    set_: Sets = None,
    restart: Restart = False,
    device: Device = None,
    quiet: Quiet = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """The main job: train SqueezeNet, prune + retrain, quantize + fine-tune, write and verify a
    .sqz file, and print accuracy and size after each stage. Rerun to resume."""
    from squeezenet.compress.spellings import parse_bits
    from squeezenet.experiments import PipelineConfig, PipelineResumeError, run_pipeline

    changes: dict[str, Any] = {"data": data, "data_dir": data_dir, "download": download}
    changes.update(model=model, bits=parse_bits(bits), seed=seed, overrides=parse_sets(set_ or []))
    changes.update(_epochs(epochs) if epochs is not None else {})
    changes.update(
        given(
            policy=_policy(policy, sparsity),
            train_images=train_images,
            test_images=test_images,
            batch_size=batch_size,
        )
    )
    config = PipelineConfig.quick(**changes) if quick else PipelineConfig(**changes)
    folder = output or ("runs/pipeline-quick" if quick else "runs/pipeline")
    with user_paths(reads=[data, policy], writes=[folder]):
        try:
            report = run_pipeline(
                config,
                folder,
                callback=_PipelineProgress(quiet),
                resume=not restart,
                device=resolve_device(device),
            )
        except PipelineResumeError as exc:
            fail(f"{exc} (--restart starts over)")
    if as_json:
        emit_json(report.to_dict())
        return
    _print_report(report)


def _print_report(report: PipelineReport) -> None:
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
