"""`squeezenet export`, `predict` and `bench`: deployment and inference speed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, fail, out
from squeezenet.cli.arguments import (
    exported_runtime,
    load_model_arg,
    load_model_arg_info,
    load_model_file,
    user_paths,
)
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
BenchEngines = Annotated[
    str | None,
    typer.Option(
        help=f"Comma-separated engines: {ENGINE_NAMES} (default: eager_nchw, "
        "eager_channels_last, onnxruntime; an .onnx file: onnxruntime, or openvino)."
    ),
]
Seconds = Annotated[float, typer.Option(help="Minimum timed seconds per measurement.")]
Calib = Annotated[
    str | None,
    typer.Option(
        help="Proxy images (training split) that calibrate the int8 engines' activation ranges; "
        "never the evaluation images."
    ),
]

Int8Format = Annotated[
    str,
    typer.Option(
        "--int8-format",
        help="Integer types of --int8 (docs/RESULTS.md): u8s7 (7-bit weights, exact on every "
        "x86 CPU, fast), u8u8 (uint8 weights: exact everywhere, slower, 0.003 nats closer), u8s8 "
        "(exact only with VNNI/AMX), s8s8.",
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
    int8_format: Int8Format = "u8s7",
    as_json: Json = False,
) -> None:
    """Export to ONNX or TorchScript; outputs are checked against PyTorch (max |diff| <= 1e-4;
    --compact: <= 1e-5 against the .sqz decode; --int8: top-1 agreement >= 0.5). An ONNX file
    carries the model's metadata and a self-check that eval, predict and bench repeat where
    they run it (docs/ONNX.md)."""
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
        _export_int8(model, output, calib, int8_format, as_json)
        return
    with user_paths(reads=[model], writes=[output]):
        network, shape, name, _, info = load_model_arg_info(model)
        if input_size is not None:
            shape = (shape[0], input_size, input_size)
        report = export_model(network, output, fmt, shape, info=info)
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


def _export_int8(
    model: str, output: str, calib: str | None, int8_format: str, as_json: bool
) -> None:
    from squeezenet.deploy.calibration import calibration_batches, model_preprocess
    from squeezenet.deploy.int8 import Int8Config, export_int8

    if calib is None:
        fail("--int8 needs --calib DATA: proxy images for the activation ranges (not eval images)")
    config = Int8Config(format=int8_format)  # type: ignore[arg-type]
    with user_paths(reads=[model, calib], writes=[output]):
        network, _, name, preprocess, info = load_model_arg_info(model)
        batches = calibration_batches(calib, model_preprocess(name, preprocess))
        report = export_int8(network, output, batches, info=info, config=config)
    if as_json:
        emit_json({**report, "model": name, "calib": calib})
        return
    out.print(
        f"wrote {report['path']} ({report['bytes']:,} bytes, int8 QDQ, {int8_format}); top-1 "
        f"agreement with float32 on {report['images']} calibration images: "
        f"{report['agreement']:.3f} (>= {report['threshold']}); self-check on this CPU: KL "
        f"{report['check']['kl_exact']:.1e} from the file's arithmetic "
        f"(<= {report['check']['tolerance']:g})",
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
    from squeezenet.deploy.calibration import calibration_batches, model_preprocess
    from squeezenet.deploy.engines import check_engines
    from squeezenet.deploy.predict import predict

    check_engines([engine], "--engine")
    exported = model.endswith(".onnx")
    runtime = exported_runtime(engine, calib) if exported else "onnxruntime"
    with user_paths(reads=[model, *images, calib]):
        loaded = load_model_file(model, "predict", runtime)
        engine = "torch" if exported else engine  # the loaded module runs the file's runtime
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
    engines: BenchEngines = None,
    seconds: Seconds = 2.0,
    calib: Calib = None,
    as_json: Json = False,
) -> None:
    """Inference speed per engine and batch size, in one run: ms/image, images/s, GFLOP/s and
    its fraction of this machine's float32 sgemm peak (measured first, in the same run). An
    exported .onnx runs as it is (--engines onnxruntime,openvino), after its self-check."""
    import torch

    from squeezenet.deploy.bench import check_batches, sgemm_peak

    batches = check_batches(_integers(batch, "--batch"), "--batch")
    bench = _bench_file if model.endswith(".onnx") else _bench_model
    peak = sgemm_peak()  # first, so every row's peak_fraction has it
    rows, document = bench(model, BenchAsk(engines, calib, batches, seconds, peak))
    threads = torch.get_num_threads()
    document = {**document, "threads": threads, "sgemm_peak_gflops": peak}
    if as_json:
        emit_json({**document, "rows": [r.to_dict() for r in rows]})
        return
    title = (
        f"{document['model']} {tuple(document['input_shape'])}: inference on {threads} threads; "
        f"float32 sgemm peak {document['sgemm_peak_gflops']:.0f} GFLOP/s (torch.mm 2048x2048, "
        f"this run); baseline {document['baseline']}"
    )
    if "calibration" in document:
        title += f"; int8 calibrated on {document['calibration']}"
    out.print(_bench_table(title, rows))


@dataclasses.dataclass(frozen=True)
class BenchAsk:
    """What a bench command asked for, with the sgemm peak measured before anything else."""

    engines: str | None
    calib: str | None
    batches: tuple[int, ...]
    seconds: float
    peak: float


NOISE = "uniform noise (timing only: the int8 outputs mean nothing; pass --calib DATA)"


def _bench_model(model: str, asked: BenchAsk) -> tuple[list[BenchRow], dict[str, Any]]:
    from squeezenet.deploy.bench import benchmark
    from squeezenet.deploy.calibration import calibration_batches, model_preprocess
    from squeezenet.deploy.engines import check_engines
    from squeezenet.models.summary import summarize

    spelled = asked.engines or "eager_nchw,eager_channels_last,onnxruntime"
    names = check_engines(filter(None, (e.strip() for e in spelled.split(","))), "--engines")
    calib = asked.calib
    with user_paths(reads=[model, calib]):
        network, shape, name, preprocess = load_model_arg(model)
        pre = model_preprocess(name, preprocess)
        calibration = calibration_batches(calib, pre) if calib is not None else None
    document: dict[str, Any] = {"model": name, "input_shape": list(shape)}
    document["macs"] = macs = summarize(network, shape).macs
    document["baseline"] = "eager_nchw"
    if any(n.endswith("-int8") for n in names):
        document["calibration"] = calib or NOISE
        if calib is None:
            err.print(f"note: the int8 engines are calibrated on {NOISE}", highlight=False)
    rows = benchmark(
        network, shape, macs, batches=asked.batches, engines=names, min_seconds=asked.seconds,
        calibration=calibration, preprocess=pre.to_dict(), peak_gflops=asked.peak,
    )  # fmt: skip
    return rows, document


def _bench_file(model: str, asked: BenchAsk) -> tuple[list[BenchRow], dict[str, Any]]:
    from squeezenet.deploy.bench import benchmark_file
    from squeezenet.deploy.onnx_file import read_onnx
    from squeezenet.models import create_model
    from squeezenet.models.summary import summarize

    spelled = asked.engines or "onnxruntime"
    runtimes = tuple(filter(None, (e.strip() for e in spelled.split(","))))
    for runtime in runtimes or ("",):
        exported_runtime(runtime, asked.calib)
    with user_paths(reads=[model]):
        file = read_onnx(model)
    macs = summarize(create_model(file.model_name, **file.config), file.input_shape).macs
    rows = benchmark_file(
        file, macs, runtimes=runtimes, batches=asked.batches, min_seconds=asked.seconds,
        peak_gflops=asked.peak,
    )  # fmt: skip
    document: dict[str, Any] = {"model": str(file.path), "input_shape": list(file.input_shape)}
    document.update(macs=macs, baseline=runtimes[0], precision=file.check.precision)
    return rows, document


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
