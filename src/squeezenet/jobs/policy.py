"""The policy file (docs/POLICY.md): per-layer pruning and bit widths as one JSON document.

``squeezenet sensitivity --plan`` writes it; ``squeezenet compress --policy FILE`` reads it. This
module is the only reader and writer. A plain prune-policy JSON object (no ``"format"`` key, as
:func:`squeezenet.compress.prune.parse_prune_policy` reads) is accepted too: it has no bits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezenet.compress.prune import parse_prune_policy
from squeezenet.compress.types import check_bits
from squeezenet.errors import FileFormatError, MissingFileError
from squeezenet.io.atomic import atomic_write_json

POLICY_FORMAT = "squeezenet-policy"  # the "format" field
POLICY_VERSION = 1  # the "version" field this package writes and reads
_FIELDS = ("format", "version", "prune", "bits")  # every other top-level key is extra


class PolicyFileError(FileFormatError):
    """A policy file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class PolicyFile:
    """A policy file's contents."""

    # A prune-policy document for parse_prune_policy ({"layers": {name: sparsity}} or
    # {pattern: sparsity}); None: keep the model's zeros as they are.
    prune: Mapping[str, Any] | None
    # (pattern, bits) rules in file order, first match wins; None: the file sets no widths.
    bits: tuple[tuple[str, int], ...] | None
    # Everything else the writer recorded (e.g. "plan": how the plan was made).
    extra: Mapping[str, Any] = field(default_factory=dict)


def policy_document(
    prune_layers: Mapping[str, float], bits: Mapping[str, int], **extra: Any
) -> dict[str, Any]:
    """The JSON document of a policy file: per-layer target sparsity and bit width.

    Args:
        prune_layers: layer name or pattern -> target sparsity in [0, 1] (rounded to 4 digits).
        bits: layer name or pattern -> codebook index width in 1..16.
        extra: further top-level fields (e.g. ``plan``); readers keep them in ``PolicyFile.extra``.

    Raises:
        ConfigError: a sparsity or width out of range.
    """
    reserved = sorted(set(extra) & set(_FIELDS))
    if reserved:
        raise ValueError(f"policy_document: {reserved} are policy fields, not extra ones")
    prune = {"layers": {name: round(float(s), 4) for name, s in prune_layers.items()}}
    parse_prune_policy(prune)  # the sparsities are in range
    for name, width in bits.items():
        check_bits(width, f"policy bits for {name!r}")
    return {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "prune": prune,
        "bits": dict(bits),
        **extra,
    }


def write_policy(path: str | Path, document: Mapping[str, Any]) -> Path:
    """Write a :func:`policy_document` atomically; returns the path."""
    path = Path(path)
    atomic_write_json(path, dict(document))
    return path


def read_policy(path: str | Path) -> PolicyFile:
    """Read a policy file, or a plain prune-policy JSON object (docs/POLICY.md).

    Raises:
        MissingFileError: no such file.
        PolicyFileError: not JSON, not an object, an unknown format or version, a prune policy
            that does not parse, or bad bits; the message is one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"policy file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"policy {path}: not a JSON document ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyFileError(f"policy {path}: expected a JSON object, got {type(data).__name__}")
    if "format" not in data:  # a plain prune policy: every key belongs to it
        return PolicyFile(prune=_prune(path, data, "the prune policy"), bits=None)
    _check_header(path, data)
    prune = data.get("prune")
    if prune is not None and not isinstance(prune, dict):
        raise PolicyFileError(f"policy {path}: 'prune' must be a JSON object", field="prune")
    extra = {k: v for k, v in data.items() if k not in _FIELDS}
    return PolicyFile(
        prune=_prune(path, prune, "prune") if prune else None,  # absent, null, {}: none
        bits=_bits(path, data.get("bits")),
        extra=extra,
    )


def _check_header(path: Path, data: Mapping[str, Any]) -> None:
    if data["format"] != POLICY_FORMAT:
        raise PolicyFileError(
            f"policy {path}: format {data['format']!r} is not {POLICY_FORMAT!r}; "
            "write it with `squeezenet sensitivity --plan`",
            field="format",
        )
    if "version" not in data:
        raise PolicyFileError(
            f"policy {path}: the 'version' field is missing (this package reads {POLICY_VERSION})",
            field="version",
        )
    version = data["version"]
    if type(version) is not int or version != POLICY_VERSION:  # not true, 1.0 or "1"
        raise PolicyFileError(
            f"policy {path}: policy version {version!r} is not supported (this package reads "
            f"{POLICY_VERSION}); upgrade squeezenet",
            field="version",
        )


def _prune(path: Path, prune: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    """``prune`` if :func:`parse_prune_policy` accepts it."""
    try:
        parse_prune_policy(prune)
    except ValueError as exc:
        raise PolicyFileError(f"policy {path}: {what}: {exc}", field="prune") from None
    return prune


def _bits(path: Path, bits: object) -> tuple[tuple[str, int], ...] | None:
    if bits is None:
        return None
    if not isinstance(bits, dict) or not bits:
        raise PolicyFileError(
            f"policy {path}: 'bits' must map layer patterns to widths", field="bits"
        )
    try:
        return tuple((str(p), check_bits(b, f"policy {path} bits {p!r}")) for p, b in bits.items())
    except ValueError as exc:
        raise PolicyFileError(str(exc), field="bits") from None
