"""`squeezenet export`, `predict` and `bench`: deployment and inference speed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from torch import nn

from squeezenet.cli.app import app, emit_json, fail, out


def _load(model: str) -> tuple[nn.Module, tuple[int, int, int], str]:
    """A weights file / .sqz, or a registry name (random weights), with its input shape."""
    from squeezenet.jobs.load import is_model_file, load_any
    from squeezenet.models import create_model, get_spec

    if is_model_file(model):
        loaded = load_any(model)
        pre = loaded.preprocess
        channels = int(loaded.config.get("in_channels", 3))
        size = pre.crop if pre else get_spec(loaded.model_name).input_size
        return loaded.model, (channels, size, size), loaded.model_name
    spec = get_spec(model)
    return (
        create_model(model, seed=0).eval(),
        (spec.config.in_channels, spec.input_size, spec.input_size),
        model,
    )


@app.command("export")
def export_cmd(
    model: Annotated[str, typer.Argument(help="Weights file, .sqz, or a registry name.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx | torchscript.")] = "onnx",
    output: Annotated[str | None, typer.Option("--output", "-o", help="Output file.")] = None,
    input_size: Annotated[int | None, typer.Option(help="Square input size for the check.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Export to ONNX or TorchScript; outputs are checked against PyTorch (max |diff| <= 1e-4)."""
    from squeezenet.deploy.export import export_model

    if fmt not in ("onnx", "torchscript"):
        fail(f"--format must be onnx or torchscript, got {fmt!r}")
    if output is None:
        fail("export needs --output/-o, e.g. -o model.onnx")
    network, shape, name = _load(model)
    if input_size is not None:
        shape = (shape[0], input_size, input_size)
    report = export_model(network, output, fmt, shape)  # type: ignore[arg-type]
    document = {
        "path": str(report.path),
        "format": fmt,
        "model": name,
        "bytes": report.bytes,
        "input_shape": list(report.input_shape),
        "max_abs_diff": report.max_abs_diff,
        "tolerance": report.tolerance,
    }
    if as_json:
        emit_json(document)
        return
    out.print(
        f"wrote {report.path} ({report.bytes:,} bytes, {fmt}); parity on a "
        f"{tuple(report.input_shape)} batch: max |diff| {report.max_abs_diff:.2e} "
        f"(<= {report.tolerance:g})",
        highlight=False,
    )


@app.command("predict")
def predict_cmd(
    model: Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")],
    images: Annotated[list[str], typer.Argument(help="Image files.")],
    engine: Annotated[str, typer.Option(help="torch | onnxruntime.")] = "torch",
    top: Annotated[int, typer.Option(help="Classes to show per image.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Classify images with the model's own preprocessing; prints class names and probabilities."""
    from squeezenet.deploy.predict import predict
    from squeezenet.jobs.load import load_any

    if engine not in ("torch", "onnxruntime"):
        fail(f"--engine must be torch or onnxruntime, got {engine!r}")
    results = predict(load_any(model), list(images), engine=engine, top=top)
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for result in results:
        table = Table(title=result.image, show_header=True)
        table.add_column("class")
        table.add_column("index", justify="right")
        table.add_column("probability", justify="right")
        for index, name, p in zip(result.indices, result.names, result.probabilities, strict=True):
            table.add_row(name, str(index), f"{p:.4f}")
        out.print(table)


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Argument(help="Weights file, .sqz, or a registry name.")],
    batch: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,32",
    engines: Annotated[str, typer.Option(help="Comma-separated engines.")] = (
        "eager_nchw,eager_channels_last,onnxruntime"
    ),
    seconds: Annotated[float, typer.Option(help="Minimum timed seconds per measurement.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Inference speed per engine and batch size, in one run: ms/image, images/s, GFLOP/s."""
    import torch

    from squeezenet.deploy.bench import benchmark
    from squeezenet.deploy.engines import ENGINES
    from squeezenet.models.summary import summarize

    try:
        batches = tuple(int(b) for b in batch.split(","))
    except ValueError:
        fail(f"--batch takes comma-separated integers, got {batch!r}")
    names = tuple(e.strip() for e in engines.split(",") if e.strip())
    unknown = [e for e in names if e not in ENGINES]
    if unknown or not names or min(batches) < 1:
        fail(f"--engines takes some of {', '.join(ENGINES)} and --batch positive sizes")
    network, shape, name = _load(model)
    macs = summarize(network, shape).macs
    rows = benchmark(
        network,
        shape,
        macs,
        batches=batches,
        engines=names,
        min_seconds=seconds,
    )
    document = {
        "model": name,
        "input_shape": list(shape),
        "macs": macs,
        "threads": torch.get_num_threads(),
        "rows": [r.to_dict() for r in rows],
    }
    if as_json:
        emit_json(document)
        return
    table = Table(title=f"{name} {shape}: inference on {torch.get_num_threads()} threads")
    for column in (
        "engine",
        "batch",
        "ms/image",
        "images/s",
        "GFLOP/s",
        "vs eager NCHW",
        "max |diff|",
    ):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for r in rows:
        table.add_row(
            r.engine,
            str(r.batch),
            f"{r.ms_per_image:.2f}",
            f"{r.images_per_s:,.1f}",
            f"{r.gflops:.1f}",
            f"{r.speedup:.2f}x",
            f"{r.max_abs_diff:.1e}",
        )
    out.print(table)
