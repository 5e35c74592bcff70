"""`squeezenet import-caffe-dc`: the published Caffe Deep Compression file -> a weights file."""

from __future__ import annotations

from typing import Annotated

import typer

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import user_paths
from squeezenet.cli.options import Json, output_option

WeightsOut = Annotated[str, output_option("Weights file to write.")]


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
