"""`squeezenet inspect`: what each stream of a .sqz file costs, against its entropy bound."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import user_paths
from squeezenet.cli.options import Json, SqzFile


def inspect_cmd(file: SqzFile, as_json: Json = False) -> None:
    """Where the bytes of a .sqz file go: per layer and in total, beside the entropy bounds."""
    from pathlib import Path

    from squeezenet.errors import MissingFileError
    from squeezenet.formats.sqz_inspect import inspect_sqz
    from squeezenet.runtime.model_file import PRETRAINED, pretrained_path

    path = pretrained_path(file) if file in PRETRAINED else Path(file)
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
