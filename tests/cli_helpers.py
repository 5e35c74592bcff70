"""Run the `squeezenet` CLI in-process and capture its exit code, stdout and stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from squeezenet.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``squeezenet ARGV...`` -> (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err
