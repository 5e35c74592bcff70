"""The `squeezenet` command line: one Typer app; each command parses options and calls the library.

Results go to stdout (with ``--json``: exactly one JSON document); errors, logs and progress go to
stderr. A user error prints one line ``error: ...`` and exits with status 2.
"""

from squeezenet.cli import (  # noqa: F401  (importing registers the commands)
    compress_cmds,
    deploy_cmds,
    experiments_cmds,
    models_cmds,
    pipeline_cmds,
    train_cmds,
)
from squeezenet.cli.app import app, main

__all__ = ["app", "main"]
