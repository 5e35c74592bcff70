"""`squeezenet export`, `predict` and `bench`: deployment and inference speed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.arguments import load_model_arg, load_model_file, user_paths
from squeezenet.cli.options import (
    ENGINE_NAMES,
    Engine,
    Json,
    ModelFile,
    ModelOrName,
    output_option,
)

if TYPE_CHECKING:
    from squeezenet.deploy.bench import BenchRow

Format = Annotated[str, typer.Option("--format", "-f", help="onnx | torchscript.")]
ExportOut = Annotated[str, output_option("File to write (.onnx, .pt).")]
InputSize = Annotated[int | None, typer.Option(min=1, help="Square input size for the check.")]
Images = Annotated[list[str], typer.Argument(help="Image files.")]
Top = Annotated[int, typer.Option(min=1, help="Classes to show per image.")]
Batches = Annotated[str, typer.Option(help="Comma-separated batch sizes.")]
BenchEngines = Annotated[str, typer.Option(help=f"Comma-separated engines: {ENGINE_NAMES}.")]
Seconds = Annotated[float, typer.Option(help="Minimum timed seconds per measurement.")]
Calib = Annotated[
    str | None,
    typer.Option(
        help="Proxy images (training split) that calibrate the int8 engines' activation ranges; "
        "never the evaluation images."
    ),
]


@app.command("export")
def export_cmd(
    model: ModelOrName,
    output: ExportOut,
    fmt: Format = "onnx",
    input_size: InputSize = None,
    compact: Annotated[
        bool, typer.Option("--compact", help="ONNX from a .sqz: codebook indices + Gather.")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="int8 ONNX (QDQ, per-channel), calibrated on --calib.")
    ] = False,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Export to ONNX or TorchScript; outputs are checked against PyTorch (max |diff| <= 1e-4;
    --compact: <= 1e-5 against the .sqz decode; --int8: top-1 agreement >= 0.5)."""
    from squeezenet.deploy.export import FORMATS, export_model

    if fmt not in FORMATS:
        fail(f"--format must be {' or '.join(FORMATS)}, got {fmt!r}")
    if (compact or int8) and fmt != "onnx":
        fail("--compact and --int8 write ONNX: use --format onnx")
    if compact and int8:
        fail("choose one of --compact and --int8")
    if compact:
        _export_compact(model, output, as_json)
        return
    if int8:
        _export_int8(model, output, calib, as_json)
        return
    with user_paths(reads=[model], writes=[output]):
        network, shape, name, _ = load_model_arg(model)
        if input_size is not None:
            shape = (shape[0], input_size, input_size)
        report = export_model(network, output, fmt, shape)
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "format": fmt,
                "model": name,
                "bytes": report.bytes,
                "input_shape": list(report.input_shape),
                "max_abs_diff": report.max_abs_diff,
                "tolerance": report.tolerance,
            }
        )
        return
    out.print(
        f"wrote {report.path} ({report.bytes:,} bytes, {fmt}); parity on a "
        f"{tuple(report.input_shape)} batch: max |diff| {report.max_abs_diff:.2e} "
        f"(<= {report.tolerance:g})",
        highlight=False,
    )


def _export_compact(model: str, output: str, as_json: bool) -> None:
    from squeezenet.deploy.compact import export_compact

    if not model.endswith(".sqz"):
        fail(f"--compact exports a .sqz file (its codebooks), got {model!r}")
    with user_paths(reads=[model], writes=[output]):
        report = export_compact(model, output)
    if as_json:
        emit_json(report.to_dict())
        return
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in report.max_abs_diff.items())
    out.print(
        f"wrote {report.path} ({report.bytes:,} bytes; dense export {report.dense_bytes:,}); "
        f"max |diff| against the .sqz decode: {diffs}",
        highlight=False,
    )


def _export_int8(model: str, output: str, calib: str | None, as_json: bool) -> None:
    from squeezenet.deploy.int8 import export_int8
    from squeezenet.jobs.calibration import calibration_batches, model_preprocess

    if calib is None:
        fail("--int8 needs --calib DATA: proxy images for the activation ranges (not eval images)")
    with user_paths(reads=[model, calib], writes=[output]):
        network, _, name, preprocess = load_model_arg(model)
        batches = calibration_batches(calib, model_preprocess(name, preprocess))
        report = export_int8(network, output, batches)
    if as_json:
        emit_json({**report, "model": name, "calib": calib})
        return
    out.print(
        f"wrote {report['path']} ({report['bytes']:,} bytes, int8 QDQ); top-1 agreement with "
        f"float32 on {report['images']} calibration images: {report['agreement']:.3f} "
        f"(>= {report['threshold']})",
        highlight=False,
    )


@app.command("predict")
def predict_cmd(
    model: ModelFile,
    images: Images,
    engine: Engine = "torch",
    top: Top = 5,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Classify images with the model's own preprocessing; prints class names and probabilities."""
    from squeezenet.deploy.engines import check_engines
    from squeezenet.deploy.predict import predict
    from squeezenet.jobs.calibration import calibration_batches, model_preprocess

    check_engines([engine], "--engine")
    with user_paths(reads=[model, *images, calib]):
        loaded = load_model_file(model, "predict")
        calibration = None
        if calib is not None:
            pre = model_preprocess(loaded.model_name, loaded.preprocess)
            calibration = calibration_batches(calib, pre)
        results = predict(loaded, images, engine=engine, top=top, calibration=calibration)
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
    model: ModelOrName,
    batch: Batches = "1,32",
    engines: BenchEngines = "eager_nchw,eager_channels_last,onnxruntime",
    seconds: Seconds = 2.0,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Inference speed per engine and batch size, in one run: ms/image, images/s, GFLOP/s and
    its fraction of this machine's float32 sgemm peak (measured first, in the same run)."""
    import torch

    from squeezenet.deploy.bench import benchmark, check_batches, sgemm_peak
    from squeezenet.deploy.engines import check_engines
    from squeezenet.jobs.calibration import calibration_batches, model_preprocess
    from squeezenet.models.summary import summarize

    batches = check_batches(_integers(batch, "--batch"), "--batch")
    names = check_engines(filter(None, (e.strip() for e in engines.split(","))), "--engines")
    with user_paths(reads=[model]):
        network, shape, name, preprocess = load_model_arg(model)
    macs = summarize(network, shape).macs
    peak = sgemm_peak()
    calibration = None
    if calib is not None:
        with user_paths(reads=[calib]):
            calibration = calibration_batches(calib, model_preprocess(name, preprocess))
    rows = benchmark(
        network, shape, macs, batches=batches, engines=names, min_seconds=seconds,
        peak_gflops=peak, calibration=calibration,
    )  # fmt: skip
    threads = torch.get_num_threads()
    if as_json:
        document = {"model": name, "input_shape": list(shape), "macs": macs, "threads": threads}
        document["sgemm_peak_gflops"] = peak
        emit_json({**document, "rows": [r.to_dict() for r in rows]})
    else:
        title = (
            f"{name} {shape}: inference on {threads} threads; float32 sgemm peak "
            f"{peak:.0f} GFLOP/s (torch.mm 2048x2048, this run)"
        )
        out.print(_bench_table(title, rows))


def _integers(text: str, option: str) -> tuple[int, ...]:
    """``"1,32"`` -> ``(1, 32)``; anything else fails naming ``option``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        fail(f"{option} takes comma-separated integers, got {text!r}")


def _bench_table(title: str, rows: list[BenchRow]) -> Table:
    table = Table(title=title)
    columns = (
        "engine", "batch", "ms/image", "images/s", "GFLOP/s", "of peak", "vs eager NCHW",
        "max |diff|", "memory MiB",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "engine" else "right")
    for r in rows:
        table.add_row(
            r.engine,
            str(r.batch),
            f"{r.ms_per_image:.2f}",
            f"{r.images_per_s:,.1f}",
            f"{r.gflops:.1f}",
            f"{100 * r.peak_fraction:.0f} %",
            f"{r.speedup:.2f}x",
            f"{r.max_abs_diff:.1e}",
            f"{r.memory_mb:.0f}",
        )
    return table


@app.command("serve-demo")
def serve_demo_cmd(
    file: Annotated[
        str | None, typer.Argument(help="The .sqz to serve (default: squeezenet1_0-dc).")
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the browser demo: the page decodes the .sqz and classifies images in JavaScript."""
    from squeezenet.deploy.serve import DemoFiles, make_server, shipped_model

    model = file or str(shipped_model())
    with user_paths(reads=[model]):
        server = make_server(DemoFiles(Path(model)), host, port)
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    out.print(f"http://{bound_host}:{bound_port}/", highlight=False)
    err.print(f"serving {model}; Ctrl-C stops", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
