"""`squeezenet report`: regenerate the experiment sections and figures of RESULTS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from squeezenet.cli.app import emit_json, out
from squeezenet.cli.arguments import user_paths


def report_cmd(
    folders: Annotated[
        list[str], typer.Argument(help="Result folders: sweeps, sensitivity, dsd, sizes.")
    ],
    results: Annotated[
        str,
        typer.Option("--output", "-o", help="Markdown file whose report sections are replaced."),
    ] = "docs/RESULTS.md",
    figures: Annotated[str, typer.Option(help="Folder for the PNG figures.")] = "docs/figures",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sections as JSON (still writes).")
    ] = False,
) -> None:
    """Regenerate the experiment sections and figures of RESULTS.md from result folders."""
    from squeezenet.experiments.report import write_report

    with user_paths(reads=folders, writes=[results, figures]):
        written = write_report(folders, Path(results), Path(figures))
    if as_json:
        emit_json(written.to_dict())
        return
    for name in written.sections:
        out.print(f"updated section {name}", highlight=False)
    out.print(f"wrote {written.document} and figures in {written.figures}", highlight=False)
