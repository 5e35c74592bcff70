"""Run the `squeezenet` CLI in-process and capture its exit code, stdout and stderr; craft
hostile inputs for it."""

from __future__ import annotations

import struct
import zlib
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


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A 69-byte PNG whose header claims ``side`` x ``side`` RGB pixels (20,000: 1.2 GB decoded)
    over a one-row IDAT: a decompression bomb that never needs the memory it claims."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\0" * (1 + 3 * 20))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path
