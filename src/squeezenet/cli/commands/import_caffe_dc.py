"""`squeezenet import-caffe-dc`: the published Caffe Deep Compression file -> a weights file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import user_paths
from squeezenet.cli.commands.decompress import dense_weights_file
from squeezenet.cli.options import Json, output_option
from squeezenet.errors import MissingFileError

WeightsOut = Annotated[str, output_option("Weights file to write.")]


def import_caffe_dc_cmd(
    file: Annotated[str, typer.Argument(help="The published compressed_SqueezeNet.net.")],
    output: WeightsOut,
    as_json: Json = False,
) -> None:
    """Convert the published Caffe Deep Compression SqueezeNet into a weights file."""
    from squeezenet.formats.caffe_dc import read_caffe_dc

    with user_paths(reads=[file], writes=[output]):
        if not Path(file).is_file():
            raise MissingFileError(f"Caffe Deep Compression file not found: {file}")
        report = dense_weights_file(read_caffe_dc(file), file, output, "import-caffe-dc")
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name} {report.config}, {report.layers} layers, "
        f"{report.stored:,} of {report.weights:,} weights non-zero, {report.params:,} parameters, "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )
