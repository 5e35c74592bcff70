"""The `squeezenet` command line: one Typer app; each command parses options and calls the library.

Results go to stdout (with ``--json``: exactly one JSON document); errors, logs and progress go to
stderr. A user error prints one line ``error: ...`` and exits with status 2.
"""

from squeezenet.cli.app import app, main
from squeezenet.cli.commands import COMMANDS

for _name, _command in COMMANDS:
    app.command(_name)(_command)

__all__ = ["app", "main"]
