"""`squeezenet import-caffe-dc`, `compress`, `inspect` and `decompress`."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.table import Table

from squeezenet.cli.app import app, emit_json, fail, out
from squeezenet.cli.common import progress_bar


@app.command("import-caffe-dc")
def import_caffe_dc_cmd(
    file: Annotated[str, typer.Argument(help="The published compressed_SqueezeNet.net.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Weights file to write.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Convert the published Caffe Deep Compression SqueezeNet into a weights file."""
    from squeezenet.jobs.compress_file import import_caffe_dc

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


def _distiller(data: str, seed: int, images: int, progress: Any) -> Any:
    """The ``--distill DATA`` hook: the shared centroids fitted to the uncompressed model's
    outputs on the unlabeled training split of DATA (squeezenet.compress.distill)."""
    import torch

    from squeezenet.compress.distill import KD_RECIPE, distiller
    from squeezenet.data.datasets import ArrayDataset
    from squeezenet.data.registry import load_dataset

    proxy = load_dataset(data, "train")  # the training split: never the evaluation images
    if not isinstance(proxy, ArrayDataset):
        fail(f"--distill needs an in-memory image set such as a CIFAR-10 .npz, got {data}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = dataclasses.replace(KD_RECIPE, images=images, seed=seed, device=device)
    task = progress.add_task("distill", total=config.steps, info="")

    def report(event: Any) -> None:
        info = f"loss {event.loss:.4f} lr x{event.lr:.2f}"
        progress.update(task, completed=event.step, info=info)

    return distiller(proxy, config, callback=report)


@app.command("compress")
def compress_cmd(
    model: Annotated[str, typer.Argument(help="Weights file (.safetensors) or .sqz.")],
    output: Annotated[str, typer.Option("--output", "-o", help=".sqz file to write.")],
    policy: Annotated[
        str, typer.Option(help="Pruning: none (keep zeros) | paper | SPARSITY | std:Q | FILE.")
    ] = "none",
    bits: Annotated[
        str | None,
        typer.Option(
            help="Codebook bits: N | mixed | PATTERN=BITS,... | FILE (default: a planned "
            "--policy file's bits, else 8)."
        ),
    ] = None,
    codec: Annotated[str, typer.Option(help="auto | huffman | rans | raw (per stream).")] = "auto",
    codebook: Annotated[str, typer.Option(help="Codebook dtype: float32 | float16.")] = "float32",
    init: Annotated[str, typer.Option(help="k-means init: linear | density | random.")] = "linear",
    gap_bits: Annotated[
        int | None, typer.Option(help="Relative-position width (default: best per layer).")
    ] = None,
    distill: Annotated[
        str | None, typer.Option(help="Fine-tune centroids on these unlabeled proxy images.")
    ] = None,
    distill_images: Annotated[
        int, typer.Option(help="Proxy images seen by --distill (the budget).")
    ] = 40_000,
    seed: Annotated[int, typer.Option(help="Seed for k-means init and distillation.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Deep Compression: prune, share weights (k-means), entropy-code, write a .sqz file."""
    from squeezenet.jobs.compress_config import CompressConfig
    from squeezenet.jobs.compress_file import compress_file
    from squeezenet.jobs.specs import parse_policy, resolve_bits

    config = CompressConfig(
        policy=parse_policy(policy),
        bits=resolve_bits(bits, policy),
        init=init,  # type: ignore[arg-type]  # validated by CompressConfig
        codec=codec,  # type: ignore[arg-type]
        codebook_dtype=codebook,  # type: ignore[arg-type]
        gap_bits=gap_bits,
        seed=seed,
    )
    if distill is None:  # seconds: no progress bar, stderr stays empty
        report = compress_file(model, output, config).report
    else:
        progress = progress_bar(quiet)
        hook = _distiller(distill, seed, distill_images, progress)
        with progress:
            report = compress_file(model, output, config, distill=hook).report
    if as_json:
        emit_json(report.to_dict())
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
        emit_json(info)
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
    from squeezenet.jobs.compress_file import decompress_sqz

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
