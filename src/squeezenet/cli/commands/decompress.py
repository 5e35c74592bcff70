"""`squeezenet decompress`: a .sqz -> a dense weights file (the decoded weights, bit for bit)."""

from __future__ import annotations

from typing import Annotated

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import user_paths
from squeezenet.cli.options import Json, SqzFile, output_option

WeightsOut = Annotated[str, output_option("Weights file to write.")]


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
