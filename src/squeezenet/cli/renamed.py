"""Old option spellings, accepted for one release: rewritten to the new ones where they stand as
options, never where they are the value of the option before them (``--policy --out``).

:func:`squeezenet.cli.app.main` rewrites argv with :func:`rewrite` before Typer parses it; the
old spellings are hidden from ``--help``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# old -> new; --results: `report`
RENAMED_OPTIONS = {"--out": "--output", "--results": "--output"}


def value_options(command: Any) -> dict[str, int]:
    """The options of a click ``command`` that take values: each spelling -> how many.

    Flags (``--json``, ``--bf16/--no-bf16``) and counters take none, so they are left out;
    arguments are not options.
    """
    takes: dict[str, int] = {}
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") != "option":
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        for spelling in (*param.opts, *param.secondary_opts):
            takes[spelling] = max(int(param.nargs), 1)
    return takes


def rewrite(
    args: list[str], options_of: Callable[[str], Mapping[str, int]]
) -> tuple[list[str], list[str]]:
    """``args`` with each old spelling that stands as an option replaced by its new one.

    Args:
        args: the command line after the program name: ``COMMAND [ARGS]...``.
        options_of: a command's name -> its options that take values (:func:`value_options`);
            empty for an unknown command (then every old spelling in option place is rewritten).

    Returns:
        The rewritten args and one warning line per rewritten spelling. Values are recognised
        as click parses them: ``--opt VALUE``, ``--opt=VALUE``, ``-o VALUE``, ``-oVALUE`` and
        short flags bundled before ``-o``; nothing after ``--`` is an option.
    """
    if not any(arg.partition("=")[0] in RENAMED_OPTIONS for arg in args):
        return list(args), []  # the usual case: no need to look the command's options up
    result: list[str] = []
    warnings: list[str] = []
    takes: Mapping[str, int] = {}
    command: str | None = None
    values = 0  # args still to come that are values of the option before them
    for index, arg in enumerate(args):
        if values:
            values -= 1
        elif arg == "--":
            return result + args[index:], warnings
        elif not arg.startswith("-") or arg == "-":
            if command is None:  # the first word is the command; the group's only option is --help
                command = arg
                takes = options_of(arg)
        else:
            name, sep, value = arg.partition("=")
            if name in RENAMED_OPTIONS:
                new = RENAMED_OPTIONS[name]
                warnings.append(
                    f"warning: {name} is now {new}; the old spelling goes in the next release"
                )
                name, arg = new, f"{new}{sep}{value}"
            values = 0 if sep else _values_after(name, takes)
        result.append(arg)
    return result, warnings


def _values_after(option: str, takes: Mapping[str, int]) -> int:
    """How many of the next args are values of ``option`` (given without ``=``)."""
    if option.startswith("--"):
        return takes.get(option, 0)
    for at in range(1, len(option)):  # bundled short options: -qo FILE, -oFILE
        if f"-{option[at]}" in takes:
            return takes[f"-{option[at]}"] if at == len(option) - 1 else 0
    return 0
