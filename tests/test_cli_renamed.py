"""The old option spellings (``--out``, ``--results``): rewritten where they stand as options,
never where they are the value of the option before them."""

from __future__ import annotations

import pytest
import typer

from cli_helpers import run
from squeezenet.cli import app
from squeezenet.cli.renamed import rewrite, value_options

WARNING = "warning: {} is now --output; the old spelling goes in the next release"


def _options_of(command: str) -> dict[str, int]:
    commands = getattr(typer.main.get_command(app), "commands", {})
    return value_options(commands[command]) if command in commands else {}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("compress w.st --out m.sqz", "compress w.st --output m.sqz"),
        ("compress w.st --out=m.sqz", "compress w.st --output=m.sqz"),
        ("compress w.st --json --out m.sqz", "compress w.st --json --output m.sqz"),
        ("compress w.st --policy paper --out m.sqz", "compress w.st --policy paper --output m.sqz"),
        ("report runs/a --results R.md", "report runs/a --output R.md"),
        ("no-such-command --out x", "no-such-command --output x"),
    ],
)
def test_an_old_spelling_in_option_place_is_rewritten_with_a_warning(
    line: str, expected: str
) -> None:
    args = line.split()
    rewritten, warnings = rewrite(args, _options_of)
    assert rewritten == expected.split()
    old = next(a.partition("=")[0] for a in args if a.partition("=")[0] in ("--out", "--results"))
    assert warnings == [WARNING.format(old)]


@pytest.mark.parametrize(
    "args",
    [
        ["compress", "m.safetensors", "--policy", "--out", "-o", "m.sqz"],  # the policy's value
        ["compress", "m.safetensors", "--policy=--out", "-o", "m.sqz"],
        ["compress", "m.safetensors", "-o", "--out"],  # a file named --out
        ["compress", "m.safetensors", "-qo", "--out"],  # bundled short options: -q -o --out
        ["summary", "squeezenet1_0", "--bypass", "--out"],
        ["report", "runs/a", "--figures", "--results", "-o", "R.md"],
        ["train", "--data", "x", "--", "--out"],  # after --, nothing is an option
        ["compress", "m.safetensors", "-o", "m.sqz"],
    ],
)
def test_an_old_spelling_that_is_a_value_stays_as_it_is(args: list[str]) -> None:
    assert rewrite(args, _options_of) == (args, [])


def test_an_option_value_spelled_out_reaches_the_command_unchanged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--bypass --out``: the command sees the value ``--out`` (and says it is no bypass),
    with no warning about a renamed option."""
    code, _, err = run(capsys, "summary", "squeezenet1_0", "--bypass", "--out")
    assert code == 2
    assert err == (
        "error: SqueezeNetConfig.bypass: expected one of none, simple, complex, got '--out'\n"
    )
