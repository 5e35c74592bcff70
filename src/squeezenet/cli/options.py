"""Options that several commands share, declared once (same flag, same help everywhere).

Every command that writes a file or folder names it ``-o/--output``; ``--out``, the old spelling,
is rewritten by :func:`squeezenet.cli.app.main` for one release.
"""

from __future__ import annotations

from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
Seed = Annotated[int, typer.Option(help="Seed for everything random.")]
DataDir = Annotated[str | None, typer.Option(help="Folder holding the named dataset.")]
Device = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Model config field KEY=VALUE (repeatable), e.g. squeeze_ratio=0.5."
    ),
]
