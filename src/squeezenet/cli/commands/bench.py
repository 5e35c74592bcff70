"""`squeezenet bench`: inference speed per engine and batch size, against the sgemm peak."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import emit_json, err, fail, out
from squeezenet.cli.arguments import exported_runtime, load_model_arg, require_torch, user_paths
from squeezenet.cli.options import ENGINE_NAMES, HAS_TORCH, Calib, Json, ModelOrName

if TYPE_CHECKING:
    from squeezenet.runtime.bench import BenchRow

Batches = Annotated[str, typer.Option(help="Comma-separated batch sizes.")]
BenchEngines = Annotated[
    str | None,
    typer.Option(
        help=f"Comma-separated engines: {ENGINE_NAMES} (default: eager_nchw, "
        "eager_channels_last, onnxruntime; an .onnx file: onnxruntime, or openvino; without "
        "torch: numpy, and onnxruntime-graph where ONNX Runtime is installed)."
    ),
]
Seconds = Annotated[float, typer.Option(help="Minimum timed seconds per measurement.")]


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
    exported .onnx runs as it is (--engines onnxruntime,openvino), after its self-check. The
    runtime engines alone (numpy, onnxruntime-graph; the default without torch) run without
    torch, against numpy's sgemm peak."""
    from squeezenet.runtime.bench import check_batches

    batches = check_batches(_integers(batch, "--batch"), "--batch")
    names = _engine_names(engines, model)
    if names is not None and not model.endswith(".onnx"):
        rows, document = _bench_runtime(model, names, batches, seconds, calib)
    else:
        require_torch("bench of a torch engine")
        import torch

        from squeezenet.deploy.bench import sgemm_peak

        bench = _bench_file if model.endswith(".onnx") else _bench_model
        peak = sgemm_peak()  # first, so every row's peak_fraction has it
        rows, document = bench(model, BenchAsk(engines, calib, batches, seconds, peak))
        document = {**document, "threads": torch.get_num_threads(), "sgemm_peak_gflops": peak}
        document["peak_measured_by"] = "torch.mm 2048x2048"
    threads = document["threads"]
    if as_json:
        emit_json({**document, "rows": [r.to_dict() for r in rows]})
        return
    title = (
        f"{document['model']} {tuple(document['input_shape'])}: inference on {threads} threads; "
        f"float32 sgemm peak {document['sgemm_peak_gflops']:.0f} GFLOP/s "
        f"({document['peak_measured_by']}, this run); baseline {document['baseline']}"
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
    from squeezenet.deploy.engines import check_engines
    from squeezenet.deploy.int8_calibration import calibration_batches, model_preprocess
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


def _engine_names(engines: str | None, model: str) -> tuple[str, ...] | None:
    """The runtime engines asked for (all of them runtime engines; without --engines and
    without torch: numpy, plus onnxruntime-graph where ONNX Runtime is installed), else None."""
    import importlib.util

    from squeezenet.runtime.classifier import RUNTIME_ENGINES

    if engines is None:
        if HAS_TORCH or model.endswith(".onnx"):
            return None
        has_ort = importlib.util.find_spec("onnxruntime") is not None
        return ("numpy", "onnxruntime-graph") if has_ort else ("numpy",)
    names = tuple(filter(None, (e.strip() for e in engines.split(","))))
    return names if names and all(n in RUNTIME_ENGINES for n in names) else None


def _bench_runtime(
    model: str, names: tuple[str, ...], batches: tuple[int, ...], seconds: float, calib: str | None
) -> tuple[list[BenchRow], dict[str, Any]]:
    """``bench`` of the runtime engines, torch-free; numpy's sgemm is the peak."""
    from squeezenet.runtime.bench import Timing, bench_document, benchmark_runtime, numpy_sgemm_peak
    from squeezenet.runtime.model_file import read_model

    if calib is not None:
        fail("--calib calibrates the int8 engines; the runtime engines run float32: drop it")
    peak = numpy_sgemm_peak()  # first, so every row's peak_fraction has it
    with user_paths(reads=[model]):
        file = read_model(model)
    rows = benchmark_runtime(file, names, Timing(batches, seconds, peak))
    return rows, bench_document(file, baseline=names[0], peak=peak)


def _integers(text: str, option: str) -> tuple[int, ...]:
    """``"1,32"`` -> ``(1, 32)``; anything else fails naming ``option``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        fail(f"{option} takes comma-separated integers, got {text!r}")


def _bench_table(title: str, rows: list[BenchRow]) -> Table:
    table = Table(title=title)
    columns = (
        "engine", "batch", "ms/image", "images/s", "GFLOP/s", "of peak", "vs baseline",
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
