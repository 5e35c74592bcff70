"""The CLI's spellings of a compression: ``--bits`` and ``--policy`` strings -> config values.

How ``--bits`` and a policy file's widths interact is specified in docs/POLICY.md: an explicit
``--bits`` wins; without it the policy file's widths apply; without either, 8 bits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from squeezenet.compress.config import BIT_PRESETS, BitsRules, CompressConfig
from squeezenet.errors import ConfigError, MissingFileError
from squeezenet.formats.model import MAX_BITS, check_bits
from squeezenet.formats.policy import PrunePolicy, parse_prune_policy, read_policy

DEFAULT_BITS = 8  # without --bits and without widths in the policy file


def parse_bits(spec: str | int) -> int | BitsRules:
    """``--bits``: ``"6"``; a preset (``"mixed"``); ``"PATTERN=BITS,..."`` (first match wins,
    patterns as in :func:`~squeezenet.compress.weight_sharing.quantize_`); or a JSON file
    ``{pattern: bits}``.

    Raises:
        ConfigError: the spec is none of these or a width is outside 1..16.
    """
    if isinstance(spec, int):
        return check_bits(spec, "--bits")
    text = spec.strip()
    if text in BIT_PRESETS:
        return BIT_PRESETS[text]
    if text.isdigit():
        return check_bits(int(text), "--bits")
    if "=" in text:
        return _bits_pairs(text, spec)
    path = Path(text)
    if path.is_file():
        return _bits_file(path)
    raise ConfigError(
        f"--bits: expected a width 1..{MAX_BITS}, {' or '.join(BIT_PRESETS)}, PATTERN=BITS "
        f"pairs or a JSON file, got {spec!r}"
    )


def _bits_pairs(text: str, spec: str) -> BitsRules:
    rules = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        pattern, _, width = item.partition("=")
        if not pattern.strip() or not width.strip().isdigit():
            raise ConfigError(f"--bits: expected PATTERN=BITS pairs, got {item!r} in {spec!r}")
        rules.append((pattern.strip(), check_bits(int(width), f"--bits {pattern.strip()}")))
    return tuple(rules)


def _bits_file(path: Path) -> BitsRules:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--bits {path}: not a JSON object of pattern: bits ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"--bits {path}: expected a JSON object of pattern: bits")
    return tuple((str(p), check_bits(b, f"--bits {path} {p!r}")) for p, b in data.items())


def parse_policy(spec: str) -> PrunePolicy | None:
    """``--policy``: ``none`` (keep existing zeros), ``paper``, a sparsity, ``std:Q``, inline
    JSON, or a policy file (docs/POLICY.md; a plain prune-policy JSON object also works).

    Raises:
        MissingFileError: ``spec`` is none of the keywords and names no file.
        ConfigError: the policy is malformed.
        PolicyFileError: the file is not a policy file this package reads.
    """
    text = spec.strip()
    if text == "none":
        return None
    if _is_inline_policy(text):
        return parse_prune_policy(text)
    policy = read_policy(_policy_path(spec))
    return parse_prune_policy(dict(policy.prune)) if policy.prune else None


def policy_bits(spec: str) -> BitsRules | None:
    """The bit widths a ``--policy`` file carries (None: ``spec`` is a keyword, a number or
    inline JSON rather than a file, names no file, or the file sets no widths)."""
    text = spec.strip()
    if text == "none" or _is_inline_policy(text) or not Path(text).is_file():
        return None
    return read_policy(text).bits


def resolve_bits(bits: str | None, policy: str) -> int | BitsRules:
    """The widths a compression uses (docs/POLICY.md section 6): an explicit ``--bits`` wins, else
    the ``--policy`` file's ``bits``, else :data:`DEFAULT_BITS`.

    Raises:
        ConfigError: ``bits`` does not parse (see :func:`parse_bits`).
        PolicyFileError: the policy file is damaged (only read when ``bits`` is None).
    """
    if bits is not None:
        return parse_bits(bits)
    planned = policy_bits(policy)
    return planned if planned is not None else DEFAULT_BITS


def _policy_path(spec: str) -> Path:
    path = Path(spec.strip())
    if not path.is_file():
        raise MissingFileError(
            f"--policy {spec!r}: no such policy file; expected none, paper, a sparsity in 0..1, "
            "std:Q, inline JSON or a JSON file"
        )
    return path


def _is_inline_policy(text: str) -> bool:
    """``paper``, ``std:Q``, inline JSON or a number: a ``--policy`` that names no file."""
    return text == "paper" or text.startswith(("std:", "{")) or _is_number(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def compress_config(*, policy: str, bits: str | None, **options: Any) -> CompressConfig:
    """The config ``compress`` runs: ``--policy`` and ``--bits`` parsed from their spellings
    (:func:`parse_policy`, :func:`resolve_bits`), every other option as given, checked by
    :class:`CompressConfig` (its messages name the field).

    Raises:
        ConfigError: a spelling or an option value the config rejects.
        MissingFileError: a policy or bits file that does not exist.
    """
    return CompressConfig(policy=parse_policy(policy), bits=resolve_bits(bits, policy), **options)
