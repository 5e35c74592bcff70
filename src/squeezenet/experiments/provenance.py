"""Where and how a result was produced: the command line and the machine, stored beside it."""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Sequence
from typing import Any

import torch


def command_line(argv: Sequence[str]) -> str:
    """``argv`` as a user would type it (``squeezenet ...`` for the console script).

    The entry point passes its own ``sys.argv``: library code never reads it.
    """
    words = list(argv)
    program = os.path.basename(words[0]) if words else "python"
    if program in ("squeezenet", "__main__.py"):
        words[0] = "squeezenet"
    elif program.endswith(".py"):
        words.insert(0, "python")
    return shlex.join(words)


def machine() -> dict[str, Any]:
    """The hardware and software a measurement ran on."""
    info: dict[str, Any] = {
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def describe_machine(info: dict[str, Any]) -> str:
    """One line, e.g. ``cpu (2 CPU cores, 2 torch threads), torch 2.14.1``."""
    where = info.get("device", "cpu")
    return (
        f"{where} ({info.get('cpu_count')} CPU cores, {info.get('torch_threads')} torch "
        f"threads), torch {info.get('torch')}"
    )
