"""`squeezenet models`: the registered models with their parameter counts."""

from __future__ import annotations

from rich.table import Table

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.options import Json


def models_cmd(as_json: Json = False) -> None:
    """List the registered models with their parameter counts."""
    from squeezenet.models import get_spec, list_models
    from squeezenet.models.summary import registered_params

    rows: list[dict[str, str | int]] = [
        {
            "name": name,
            "params": registered_params(name),
            "input_size": get_spec(name).input_size,
            "description": get_spec(name).description,
        }
        for name in list_models()
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Registered models")
    for column in ("name", "params", "input", "description"):
        table.add_column(column, justify="right" if column in ("params", "input") else "left")
    for row in rows:
        table.add_row(
            str(row["name"]), f"{row['params']:,}", str(row["input_size"]), str(row["description"])
        )
    out.print(table)
