"""The `squeezenet` command line: one Typer app; each command parses options and calls the library.

Results go to stdout (with ``--json``: exactly one JSON document); errors, logs and progress go to
stderr. A user error prints one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

try:  # recent typer vendors click; older releases depend on it
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover
    from click import exceptions as click  # type: ignore[import-not-found,no-redef,unused-ignore]

app = typer.Typer(
    name="squeezenet",
    help="SqueezeNet end to end: models, Deep Compression, experiments, deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
if not out.is_terminal:  # piped output: wide enough that tables are never truncated
    out = Console(width=160)
err = Console(stderr=True, soft_wrap=True)  # errors stay on one line

# Library exceptions a user can cause; their messages already say what to do.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(2)


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command("models")
def models_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List the registered models with their parameter counts."""
    from squeezenet.models import get_spec, list_models
    from squeezenet.models.summary import registered_params

    rows: list[dict[str, str | int]] = [
        {
            "name": name,
            "params": registered_params(name),
            "input_size": get_spec(name).input_size,
            "description": get_spec(name).description,
        }
        for name in list_models()
    ]
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="Registered models")
    for column in ("name", "params", "input", "description"):
        table.add_column(column, justify="right" if column in ("params", "input") else "left")
    for row in rows:
        table.add_row(
            str(row["name"]), f"{row['params']:,}", str(row["input_size"]), str(row["description"])
        )
    out.print(table)


@app.command("summary")
def summary_cmd(
    name: Annotated[
        str, typer.Argument(help="A registered model (see `squeezenet models`).")
    ] = "squeezenet1_0",
    input_size: Annotated[
        int | None, typer.Option(help="Square input size in pixels (default: the model's).")
    ] = None,
    squeeze_ratio: Annotated[float | None, typer.Option(help="SR = s1x1 / e (Sec. 5.1).")] = None,
    pct_3x3: Annotated[
        float | None, typer.Option("--pct-3x3", help="Share of 3x3 expand filters.")
    ] = None,
    base_e: Annotated[int | None, typer.Option(help="Expand filters of fire2.")] = None,
    incr_e: Annotated[
        int | None, typer.Option(help="Expand filters added every FREQ modules.")
    ] = None,
    freq: Annotated[int | None, typer.Option(help="Fire modules per expand width.")] = None,
    bypass: Annotated[str | None, typer.Option(help="none | simple | complex (Sec. 6).")] = None,
    num_classes: Annotated[int | None, typer.Option(help="Number of classes.")] = None,
    in_channels: Annotated[int | None, typer.Option(help="Input channels.")] = None,
    final_conv_padding: Annotated[
        int | None, typer.Option(help="conv10 padding (1 = Caffe).")
    ] = None,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Sizes of the Fig. 3 design space.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Per-layer table in the layout of the paper's Table 1: shapes, filters, params, MACs."""
    from squeezenet.models.summary import design_space, summarize_registered

    given = {
        "squeeze_ratio": squeeze_ratio,
        "pct_3x3": pct_3x3,
        "base_e": base_e,
        "incr_e": incr_e,
        "freq": freq,
        "bypass": bypass,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "final_conv_padding": final_conv_padding,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    if input_size is not None and input_size < 1:
        _fail(f"--input-size must be a positive number of pixels, got {input_size}")
    if sweep:
        from squeezenet.models import SqueezeNetConfig, resolve_config

        config = resolve_config(name, **overrides)
        if not isinstance(config, SqueezeNetConfig):
            _fail(f"--sweep needs a SqueezeNet model, not {name}")
        points = design_space(config)
        if as_json:
            _emit_json(
                [
                    {
                        "axis": p.axis,
                        "value": p.value,
                        "params": p.params,
                        "size_bytes": p.size_bytes,
                        "size_mib": round(p.size_mib, 3),
                        "paper_mb": p.paper_mb,
                    }
                    for p in points
                ]
            )
            return
        table = Table(title=f"Fig. 3 design space around {name} (32-bit sizes)")
        for column in ("sweep", "value", "squeeze_ratio", "pct_3x3", "params", "MiB", "paper MB"):
            table.add_column(column, justify="left" if column == "sweep" else "right")
        for p in points:
            table.add_row(
                p.axis,
                f"{p.value:g}",
                f"{p.config.squeeze_ratio:g}",
                f"{p.config.pct_3x3:g}",
                f"{p.params:,}",
                f"{p.size_mib:.2f}",
                f"{p.paper_mb:g}" if p.paper_mb else "—",
            )
        out.print(table)
        return
    summary = summarize_registered(name, input_size, **overrides)
    if as_json:
        _emit_json(summary.to_dict())
        return
    c, h, w = summary.input_shape
    table = Table(title=f"{name}: input {c}x{h}x{w}")
    for column in ("layer", "output (C x H x W)", "s1x1", "e1x1", "e3x3", "params", "MACs"):
        table.add_column(column, justify="left" if column == "layer" else "right")

    def opt(v: int | None) -> str:
        return "" if v is None else str(v)

    for layer in summary.layers:
        table.add_row(
            layer.name,
            " x ".join(map(str, layer.out_shape)),
            opt(layer.s1x1),
            opt(layer.e1x1),
            opt(layer.e3x3),
            f"{layer.params:,}",
            f"{layer.macs:,}",
        )
    table.add_section()
    table.add_row("total", "", "", "", "", f"{summary.params:,}", f"{summary.macs:,}")
    out.print(table)
    out.print(
        f"parameters {summary.params:,} | MACs {summary.macs / 1e6:,.1f} M | "
        f"size at 32 bits {summary.size_bytes:,} bytes ({summary.size_bytes / 2**20:.2f} MiB)",
        highlight=False,
    )


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs -> dict, values parsed as JSON where possible."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            _fail(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result


class _FitProgress:
    """A rich progress bar on stderr fed by fit's callback (rank 0 only)."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        self.task: Any = None
        self.images = 0.0
        self.started = 0.0

    def __call__(self, event: Any) -> None:
        import time

        if event.kind == "start":
            self.progress.start()
            self.started = time.perf_counter()
            self.task = self.progress.add_task(
                "train", total=event.total_steps, completed=event.step, info=""
            )
        elif event.kind == "step":
            self.images += event.batch_size
            rate = self.images / max(time.perf_counter() - self.started, 1e-9)
            info = (
                f"epoch {event.epoch + 1} loss {event.loss:.4f} lr {event.lr:.4g} {rate:,.0f} img/s"
            )
            self.progress.update(self.task, completed=event.step, info=info)
        elif event.kind == "epoch":
            m = event.metrics
            acc = f" top1 {m['top1']:.4f} top5 {m['top5']:.4f}" if "top1" in m else ""
            self.progress.console.print(
                f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}{acc} "
                f"({m['images_per_s']:,.0f} img/s)",
                highlight=False,
            )
        elif event.kind == "warning":
            self.progress.console.print(f"[yellow]warning:[/] {event.message}")
        elif event.kind == "end":
            self.progress.stop()


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
        str | None, typer.Option("--out", "-o", help="Run folder (checkpoints, metrics, weights).")
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
    from squeezenet.train.config import recipe
    from squeezenet.train.run import RunSpec, read_run_spec, run_training

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
            _fail("train needs a MODEL and --data (or --resume RUN_DIR)")
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
        spec = RunSpec(model, data, config, data_dir, _parse_sets(set_ or []), download)
        run_dir = out_dir
    outcome = run_training(
        spec,
        run_dir,
        resume=bool(resume),
        device=device or default_device,
        callback=_FitProgress(quiet or rank != 0),
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
        _emit_json(document)
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
    from squeezenet.formats.weights import load_model
    from squeezenet.train.evaluate import evaluate

    loaded = load_model(model)
    if loaded.preprocess is None:
        _fail(f"{model} has no preprocessing record; re-save it with save_weights(preprocess=...)")
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
        _emit_json(result.to_dict())
        return
    skipped = f" ({result.skipped} unreadable images skipped)" if result.skipped else ""
    out.print(
        f"top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  on {result.n} images{skipped}",
        highlight=False,
    )


@app.command("import-caffe-dc")
def import_caffe_dc_cmd(
    file: Annotated[str, typer.Argument(help="The published compressed_SqueezeNet.net.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Weights file to write.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Convert the published Caffe Deep Compression SqueezeNet into a weights file."""
    from squeezenet.compress.pipeline import import_caffe_dc

    report = import_caffe_dc(file, output)
    if as_json:
        _emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name} {report.config}, {report.layers} layers, "
        f"{report.stored:,} of {report.weights:,} weights non-zero, {report.params:,} parameters, "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )


def _distiller(data: str, seed: int) -> Any:
    """The ``--distill DATA`` hook: the shared centroids fitted to the uncompressed model's
    outputs on the unlabeled training split of DATA (squeezenet.compress.distill)."""
    import torch

    from squeezenet.compress.distill import DistillConfig, distiller
    from squeezenet.data.datasets import ArrayDataset
    from squeezenet.data.registry import load_dataset

    proxy = load_dataset(data, "train")  # the training split: never the evaluation images
    if not isinstance(proxy, ArrayDataset):
        _fail(f"--distill needs an in-memory image set such as a CIFAR-10 .npz, got {data}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return distiller(proxy, DistillConfig(seed=seed, device=device))


@app.command("compress")
def compress_cmd(
    model: Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")],
    output: Annotated[str, typer.Option("--output", "-o", help=".sqz file to write.")],
    policy: Annotated[
        str, typer.Option(help="Pruning: none (keep zeros) | paper | SPARSITY | std:Q | FILE.")
    ] = "none",
    bits: Annotated[
        str, typer.Option(help="Codebook bits: N | mixed | PATTERN=BITS,... | FILE.")
    ] = "8",
    codec: Annotated[str, typer.Option(help="auto | huffman | raw (per stream).")] = "auto",
    codebook: Annotated[str, typer.Option(help="Codebook dtype: float32 | float16.")] = "float32",
    init: Annotated[str, typer.Option(help="k-means init: linear | density | random.")] = "linear",
    gap_bits: Annotated[
        int | None, typer.Option(help="Relative-position width (default: best per layer).")
    ] = None,
    distill: Annotated[
        str | None, typer.Option(help="Fine-tune centroids on these unlabeled proxy images.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for k-means init and distillation.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Deep Compression: prune, share weights (k-means), entropy-code, write a .sqz file."""
    from squeezenet.compress.pipeline import CompressConfig, compress_file, parse_bits, parse_policy

    config = CompressConfig(
        policy=parse_policy(policy),
        bits=parse_bits(bits),
        init=init,  # type: ignore[arg-type]  # validated by CompressConfig
        codec=codec,  # type: ignore[arg-type]
        codebook_dtype=codebook,  # type: ignore[arg-type]
        gap_bits=gap_bits,
        seed=seed,
    )
    hook = _distiller(distill, seed) if distill is not None else None
    report = compress_file(model, output, config, distill=hook).report
    if as_json:
        _emit_json(report.to_dict())
        return
    document = report.to_dict()
    table = Table(title=f"{report.model_name}: --policy {report.policy} --bits {report.bits}")
    for column in ("stage", "bytes", "x dense", "x AlexNet", "counted as"):
        table.add_column(column, justify="left" if column in ("stage", "counted as") else "right")
    for stage in document["stages"]:
        table.add_row(
            stage["stage"],
            f"{stage['bytes']:,}",
            f"{stage['ratio_dense']:.1f}",
            f"{stage['ratio_alexnet']:.0f}",
            stage["note"],
        )
    out.print(table)
    layers = Table(title="layers")
    for column in ("layer", "shape", "density", "bits", "clusters", "rmse"):
        layers.add_column(column, justify="left" if column == "layer" else "right")
    for row in report.layers:
        layers.add_row(
            row.name,
            "x".join(map(str, row.shape)),
            f"{row.density:.3f}",
            str(row.bits),
            str(row.clusters),
            f"{row.rmse:.2e}",
        )
    out.print(layers)
    out.print(
        f"wrote {report.output}: {report.file_bytes:,} bytes ({report.file_bytes / 2**20:.3f} "
        f"MiB), {document['ratio_dense']:.1f}x smaller than dense 32-bit, "
        f"{document['ratio_alexnet']:.0f}x smaller than AlexNet",
        highlight=False,
    )


@app.command("inspect")
def inspect_cmd(
    file: Annotated[str, typer.Argument(help="A .sqz file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Where the bytes of a .sqz file go: per layer and in total, beside the entropy bounds."""
    from pathlib import Path

    from squeezenet.formats.sqz import inspect_sqz

    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f".sqz file not found: {path}")
    info = inspect_sqz(path.read_bytes())
    if as_json:
        _emit_json(info)
        return
    table = Table(title=f"{path.name}: {info['total_bytes']:,} bytes")
    columns = ("layer", "shape", "density", "bits", "codebook", "codes", "entropy", "positions")
    for column in (*columns, "entropy ", "bias"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in info["layers"]:
        table.add_row(
            layer["name"],
            "x".join(map(str, layer["shape"])),
            f"{layer['density']:.3f}",
            str(layer["bits"]),
            f"{layer['codebook_bytes']:,}",
            f"{layer['codes_bytes']:,} {layer['codes_codec']}",
            f"{layer['codes_entropy_bytes']:,.0f}",
            f"{layer['positions_bytes']:,} {layer['positions_codec']}",
            f"{layer['positions_entropy_bytes']:,.0f}",
            f"{layer['bias_bytes']:,}",
        )
    t = info["totals"]
    table.add_section()
    table.add_row(
        "total",
        f"{t['weights']:,}",
        f"{t['stored_weights'] / max(t['weights'], 1):.3f}",
        "",
        f"{t['codebook_bytes']:,}",
        f"{t['codes_bytes']:,}",
        f"{t['codes_entropy_bytes']:,.0f}",
        f"{t['positions_bytes']:,}",
        f"{t['positions_entropy_bytes']:,.0f}",
        f"{t['bias_bytes']:,}",
    )
    out.print(table)
    out.print(
        f"header {info['header_bytes']:,} + layers {t['record_bytes']:,} + dense tensors "
        f"{info['dense_bytes']:,} + CRC {info['crc_bytes']} = {info['total_bytes']:,} bytes "
        "(entropy columns: the empirical entropy bound of each stream, in bytes)",
        highlight=False,
    )


@app.command("decompress")
def decompress_cmd(
    file: Annotated[str, typer.Argument(help="A .sqz file.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Weights file to write.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Decode a .sqz file into a dense weights file (the decoded weights, bit for bit)."""
    from squeezenet.compress.pipeline import decompress_sqz

    report = decompress_sqz(file, output)
    if as_json:
        _emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name}, {report.params:,} parameters "
        f"({report.stored:,} of {report.weights:,} weights non-zero), "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns user errors into one line + exit 2."""
    try:
        result = app(args=argv, prog_name="squeezenet", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "squeezenet"
        if not exc.format_message():  # bare `squeezenet`: help was already shown
            sys.exit(2)
        err.print(
            f"[bold red]error:[/] {exc.format_message()} (see '{command} --help')", highlight=False
        )
        sys.exit(2)
    except click.ClickException as exc:
        err.print(f"[bold red]error:[/] {exc.format_message()}", highlight=False)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", highlight=False)
        sys.exit(130)
    except USER_ERRORS as exc:
        if os.environ.get("SQUEEZENET_DEBUG"):
            raise
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)
