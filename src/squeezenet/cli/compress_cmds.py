"""`squeezenet import-caffe-dc`, `compress`, `inspect` and `decompress`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from squeezenet.cli.app import app, emit_json, err, out
from squeezenet.cli.arguments import resolve_device, user_paths
from squeezenet.cli.common import progress_bar
from squeezenet.cli.options import Json, ModelFile, Quiet, Seed, SqzFile, output_option

if TYPE_CHECKING:
    from squeezenet.compress.config import CompressConfig
    from squeezenet.workflows.compress_report import CompressReport

WeightsOut = Annotated[str, output_option("Weights file to write.")]
SqzOut = Annotated[str, output_option(".sqz file to write.")]
Policy = Annotated[
    str, typer.Option(help="Pruning: none (keep zeros) | paper | SPARSITY | std:Q | FILE.")
]
Bits = Annotated[
    str | None,
    typer.Option(
        help="Codebook bits: N | mixed | PATTERN=BITS,... | FILE (default: a planned "
        "--policy file's bits, else 8)."
    ),
]
Codec = Annotated[str, typer.Option(help="auto | huffman | rans | raw (per stream).")]
Codebook = Annotated[str, typer.Option(help="Codebook dtype: float32 | float16.")]
Init = Annotated[str, typer.Option(help="k-means init: linear | density | random.")]
GapBits = Annotated[
    int | None, typer.Option(help="Relative-position width (default: best per layer).")
]
Distill = Annotated[
    str | None, typer.Option(help="Fine-tune centroids on these unlabeled proxy images.")
]
DistillImages = Annotated[
    int | None,
    typer.Option(
        help="Proxy images seen by --distill (the budget; default 40,000, trellis files 4,096)."
    ),
]
RateLambda = Annotated[
    float | None,
    typer.Option(help="Entropy-constrained quantization: squared error + LAMBDA x bits per layer."),
]
TargetBytes = Annotated[
    int | None,
    typer.Option(
        help="Entropy-constrained quantization to at most this many bytes (within 1 %); if only "
        "a file that wrecks the model fits, an error naming the smallest one that does not."
    ),
]
Quantizer = Annotated[
    str,
    typer.Option(
        help="ecsq | kmeans | trellis (and any registered: squeezenet.compress.quantizers); "
        "ecsq without a rate is kmeans, trellis needs one."
    ),
]
BiasDtype = Annotated[
    str, typer.Option("--bias", help="Bias dtype: float32 | float16 (version 3).")
]
Calib = Annotated[
    str | None,
    typer.Option(
        help="Proxy images (their training split) that weigh the weight errors for "
        "--rate-lambda / --target-bytes and, with the trellis, refit each layer's step and "
        "bias; never the evaluation images."
    ),
]
Weighting = Annotated[
    str | None,
    typer.Option(
        help="How --calib weighs errors: activation (trellis: per input channel) | layer "
        "(one scale per layer). Default: activation for the trellis, layer for ECSQ."
    ),
]


@app.command("import-caffe-dc")
def import_caffe_dc_cmd(
    file: Annotated[str, typer.Argument(help="The published compressed_SqueezeNet.net.")],
    output: WeightsOut,
    as_json: Json = False,
) -> None:
    """Convert the published Caffe Deep Compression SqueezeNet into a weights file."""
    from squeezenet.workflows.compress_file import import_caffe_dc

    with user_paths(reads=[file], writes=[output]):
        report = import_caffe_dc(file, output)
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name} {report.config}, {report.layers} layers, "
        f"{report.stored:,} of {report.weights:,} weights non-zero, {report.params:,} parameters, "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )


@app.command("compress")
def compress_cmd(
    model: ModelFile,
    output: SqzOut,
    policy: Policy = "none",
    bits: Bits = None,
    codec: Codec = "auto",
    codebook: Codebook = "float32",
    init: Init = "linear",
    gap_bits: GapBits = None,
    distill: Distill = None,
    distill_images: DistillImages = None,
    rate_lambda: RateLambda = None,
    target_bytes: TargetBytes = None,
    quantizer: Quantizer = "ecsq",
    bias: BiasDtype = "float32",
    calib: Calib = None,
    weighting: Weighting = None,
    seed: Seed = 0,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Deep Compression: prune, share weights (k-means or ECSQ), entropy-code, write a .sqz."""
    from squeezenet.compress.spellings import compress_config

    with user_paths(reads=[model, policy, bits, distill], writes=[output]):
        config = compress_config(
            policy=policy,
            bits=bits,
            init=init,
            codec=codec,
            codebook_dtype=codebook,
            gap_bits=gap_bits,
            seed=seed,
            rate_lambda=rate_lambda,
            target_bytes=target_bytes,
            quantizer=quantizer,
            bias_dtype=bias,
            weighting=weighting,
        )
        report = _compress(model, output, config, (distill, distill_images, calib), quiet)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_compress(report)


def _compress(
    model: str,
    output: str,
    config: CompressConfig,
    proxies: tuple[str | None, int | None, str | None],
    quiet: bool,
) -> CompressReport:
    """compress_file, with a progress bar for ``--distill`` (without it: seconds, no bar).

    ``proxies``: the ``--distill`` data and its image budget, and the ``--calib`` data."""
    from squeezenet.workflows.compress_file import compress_file

    distill, distill_images, calib = proxies
    if distill is None:
        return compress_file(model, output, config, calib=calib).report
    progress = progress_bar(quiet)
    task = progress.add_task("distill", total=None, info="")

    def report(event: Any) -> None:
        info = f"loss {event.loss:.4f} lr x{event.lr:.2f}"
        progress.update(task, completed=event.step, total=event.steps, info=info)

    with progress:
        return compress_file(
            model,
            output,
            config,
            calib=calib,
            distill_data=distill,
            distill_images=distill_images,
            device=resolve_device(None),
            on_distill=report,
        ).report


def _print_compress(report: CompressReport) -> None:
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
def inspect_cmd(file: SqzFile, as_json: Json = False) -> None:
    """Where the bytes of a .sqz file go: per layer and in total, beside the entropy bounds."""
    from pathlib import Path

    from squeezenet.errors import MissingFileError
    from squeezenet.formats.sqz import inspect_sqz

    path = Path(file)
    if not path.exists():
        raise MissingFileError(f".sqz file not found: {path}")
    with user_paths(reads=[path]):
        info = inspect_sqz(path.read_bytes())
    if as_json:
        emit_json(info)
        return
    out.print(_inspect_table(path.name, info))
    t = info["totals"]
    out.print(
        f"header {info['header_bytes']:,} + layers {t['record_bytes']:,} + dense tensors "
        f"{info['dense_bytes']:,} + CRC {info['crc_bytes']} = {info['total_bytes']:,} bytes "
        "(entropy columns: the empirical entropy bound of each stream, in bytes)",
        highlight=False,
    )


def _inspect_table(name: str, info: dict[str, Any]) -> Table:
    table = Table(title=f"{name}: {info['total_bytes']:,} bytes")
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
    return table


@app.command("decompress")
def decompress_cmd(
    file: SqzFile,
    output: WeightsOut,
    as_json: Json = False,
) -> None:
    """Decode a .sqz file into a dense weights file (the decoded weights, bit for bit)."""
    from squeezenet.workflows.compress_file import decompress_sqz

    with user_paths(reads=[file], writes=[output]):
        report = decompress_sqz(file, output)
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name}, {report.params:,} parameters "
        f"({report.stored:,} of {report.weights:,} weights non-zero), "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )
