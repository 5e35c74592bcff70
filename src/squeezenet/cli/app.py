"""The Typer app, its consoles and the error contract shared by every command.

Results go to stdout (with ``--json``: exactly one JSON document); errors, logs and progress go to
stderr. A user error prints one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from squeezenet.cli.renamed import rewrite, value_options
from squeezenet.errors import UserError

try:  # recent typer vendors click; older releases depend on it
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover
    from click import exceptions as click  # type: ignore[import-not-found,no-redef,unused-ignore]

app = typer.Typer(
    name="squeezenet",
    help="SqueezeNet end to end: models, Deep Compression, experiments, deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
if not out.is_terminal:  # piped output: wide enough that tables are never truncated
    out = Console(width=160)
err = Console(stderr=True, soft_wrap=True)  # errors stay on one line


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with status 2 (a user error)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def emit_json(document: Any) -> None:
    """Write ``document`` to stdout as the one JSON document of a ``--json`` command."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns user errors into one line + exit 2.

    Only :class:`squeezenet.errors.UserError` is a user error; any other exception is a bug and
    keeps its traceback (exit 1). ``SQUEEZENET_DEBUG=1`` shows the traceback of user errors too.
    """
    args, warnings = rewrite(list(sys.argv[1:] if argv is None else argv), _value_options)
    for warning in warnings:  # old option spellings (squeezenet.cli.renamed)
        err.print(warning)
    try:
        result = app(args=args, prog_name="squeezenet", standalone_mode=False)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "squeezenet"
        if not exc.format_message():  # bare `squeezenet`: help was already shown
            sys.exit(2)
        err.print(
            f"[bold red]error:[/] {escape(exc.format_message())} (see '{command} --help')",
            highlight=False,
        )
        sys.exit(2)
    except click.ClickException as exc:
        err.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted", highlight=False)
        sys.exit(130)
    except UserError as exc:
        if os.environ.get("SQUEEZENET_DEBUG"):
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


def _value_options(command: str) -> dict[str, int]:
    """The options of ``command`` that take values (none for an unknown command)."""
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    return value_options(commands[command]) if command in commands else {}
