"""The `squeezenet` command line: one Typer app; each command parses options and calls the library.

Results go to stdout (with ``--json``: exactly one JSON document); errors, logs and progress go to
stderr. A user error prints one line ``error: ...`` and exits with status 2.
"""

import functools
from collections.abc import Callable
from typing import Any

from squeezenet.cli.app import app, main
from squeezenet.cli.arguments import require_torch
from squeezenet.cli.commands import COMMANDS, NEEDS_TORCH


def _torch_first(name: str, command: Callable[..., None]) -> Callable[..., None]:
    """``command``, which fails in one line naming the pip command when torch is missing."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        require_torch(f"squeezenet {name}")
        command(*args, **kwargs)

    return run


for _name, _command in COMMANDS:
    app.command(_name)(_torch_first(_name, _command) if _name in NEEDS_TORCH else _command)

__all__ = ["app", "main"]
