"""What several commands build from their options: ``--set`` and ``--seeds`` values, a training
recipe from the options given, and where a result comes from."""

from __future__ import annotations

import json
import sys
from typing import Any

from squeezenet.cli.app import fail
from squeezenet.cli.arguments import given

__all__ = ["parse_seeds", "parse_sets", "result_meta", "train_config"]


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs -> dict, values parsed as JSON where possible."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            result[key] = json.loads(raw)
        except json.JSONDecodeError:
            result[key] = raw
    return result


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0,1,2`` -> [0, 1, 2] (distinct non-negative integers, in order)."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        fail(f"--seeds expects integers like 0,1,2, got {text!r}")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        fail(f"--seeds expects distinct non-negative integers, got {text!r}")
    return seeds


def train_config(recipe_name: str, device: str, bf16: bool | None, **options: Any) -> Any:
    """The recipe with the options the user gave (not None) replacing its fields; bf16 as
    ``--bf16/--no-bf16`` says, else the recipe's where ``device`` has bfloat16 units."""
    from squeezenet.train.config import recipe, resolve_bf16

    return resolve_bf16(recipe(recipe_name, **given(**options)), device, bf16)


def result_meta() -> dict[str, Any]:
    """Where a result comes from: this command line and this machine."""
    from squeezenet.experiments.provenance import command_line, machine

    return {"command": command_line(sys.argv), "machine": machine()}
