"""`squeezenet compress`: Deep Compression of a model file into a .sqz, with its report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from squeezenet.cli.app import emit_json, err, out
from squeezenet.cli.arguments import resolve_device, user_paths
from squeezenet.cli.options import QUANTIZER_NAMES, Json, ModelFile, Quiet, Seed, output_option
from squeezenet.cli.progress import progress_bar

if TYPE_CHECKING:
    from squeezenet.compress.config import CompressConfig
    from squeezenet.workflows.compress_report import CompressReport

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
        help=f"{QUANTIZER_NAMES}, or any registered one: with a rate, ecsq (levels per layer) "
        "| trellis (dependent quantization on a grid, .sqz version 3); ecsq without a rate is "
        "kmeans."
    ),
]
BiasDtype = Annotated[
    str,
    typer.Option(
        "--bias",
        help="Bias dtype: float32 | float16 (version 3) | grid (the trellis with --calib: each "
        "bias on a uniform grid, entropy-coded; version 4).",
    ),
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
        "(one scale per layer) | hessian (trellis: error feedback through each layer's input "
        "covariance, GPTQ-style) | sequential (trellis: hessian layer by layer on the inputs "
        "the quantized layers before give, each refitted to the uncompressed output, GPTAQ-"
        "style; slower). Default: activation for the trellis, layer for ECSQ."
    ),
]


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
