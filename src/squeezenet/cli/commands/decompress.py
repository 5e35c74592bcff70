"""`squeezenet decompress`: a .sqz -> a dense weights file (the decoded weights, bit for bit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import require_torch, user_paths
from squeezenet.cli.options import Json, SqzFile, output_option
from squeezenet.errors import MissingFileError

WeightsOut = Annotated[str, output_option("Weights file to write.")]


def dense_weights_file(cm: Any, source: str, output: str, command: str) -> Any:
    """A decoded model as a weights file: a SqueezeNet without torch, any other model with it."""
    from squeezenet.arch.config import SqueezeNetConfig
    from squeezenet.arch.registry import resolve_config
    from squeezenet.runtime.model_file import write_weights

    if isinstance(resolve_config(cm.model_name, **cm.config), SqueezeNetConfig):
        return write_weights(cm, source, output)
    require_torch(f"squeezenet {command} of a {cm.model_name}")
    from squeezenet.workflows.compress_file import write_dense

    return write_dense(cm, source, output)


def decompress_cmd(
    file: SqzFile,
    output: WeightsOut,
    as_json: Json = False,
) -> None:
    """Decode a .sqz file into a dense weights file (the decoded weights, bit for bit)."""
    from squeezenet.formats.sqz import read_sqz
    from squeezenet.runtime.model_file import PRETRAINED, model_path

    source = str(model_path(file)) if file in PRETRAINED else file
    with user_paths(reads=[source], writes=[output]):
        if not Path(source).is_file():
            raise MissingFileError(f".sqz file not found: {source}")
        report = dense_weights_file(read_sqz(source), source, output, "decompress")
    if as_json:
        emit_json(report.to_dict())
        return
    out.print(
        f"wrote {report.output}: {report.model_name}, {report.params:,} parameters "
        f"({report.stored:,} of {report.weights:,} weights non-zero), "
        f"{report.output_bytes:,} bytes",
        highlight=False,
    )
